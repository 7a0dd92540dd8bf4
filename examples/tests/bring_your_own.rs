//! A third aggregate type from outside the core: commands (given/when/then), registration,
//! a snapshot through the in-memory stores and a load that uses it.

use snapshot_core::codec::SnapshotCodec;
use snapshot_core::domain::{AggregateRoot, DomainError};
use snapshot_core::memory::{InMemoryEventStore, InMemorySnapshotStore};
use snapshot_core::ports::{EventStore, PutOutcome, SnapshotStore};
use snapshot_core::registry::decode_state;
use snapshot_core::snapshot::SnapshotMetadata;
use snapshot_core::testing::{given, then_recorded, then_rejected};
use snapshot_core::{Aggregate, AggregateRepository, Registry};
use snapshot_examples::{AccountOpened, LoyaltyAccount, LoyaltyCommands, LoyaltyEvent, Points};

const ID: &str = "loyalty-1";

fn opened() -> LoyaltyEvent {
    LoyaltyEvent::LoyaltyAccountOpened(AccountOpened {
        customer_id: "c-7".into(),
    })
}

fn earned(points: i64) -> LoyaltyEvent {
    LoyaltyEvent::PointsEarned(Points { points })
}

#[test]
fn commands_record_events_and_enforce_their_rules() {
    let mut account = given::<LoyaltyAccount>(ID, &[]);
    account.open("c-7").unwrap();
    then_recorded(&account, &[opened()]);

    let mut account = given::<LoyaltyAccount>(ID, &[opened(), earned(30)]);
    account.redeem(10).unwrap();
    then_recorded(
        &account,
        &[LoyaltyEvent::PointsRedeemed(Points { points: 10 })],
    );
    assert_eq!(account.state().balance, 20);

    let mut account = given::<LoyaltyAccount>(ID, &[opened(), earned(30)]);
    let result = account.redeem(31);
    assert!(matches!(
        then_rejected(&account, result),
        DomainError::Exceeds {
            requested: 31,
            limit: 30,
            ..
        }
    ));
    let result = account.earn(0);
    assert!(matches!(
        then_rejected(&account, result),
        DomainError::InvalidValue {
            field: "points",
            ..
        }
    ));
    let mut missing = given::<LoyaltyAccount>(ID, &[]);
    let result = missing.earn(5);
    assert!(matches!(
        then_rejected(&missing, result),
        DomainError::NotFound { .. }
    ));
}

#[tokio::test]
async fn a_registered_aggregate_from_another_crate_is_snapshotted_and_loaded_back() {
    let registry = Registry::builtin().with::<LoyaltyAccount>();
    assert_eq!(
        registry.type_names(),
        ["INVENTORY_ITEM", "LOYALTY_ACCOUNT", "WAREHOUSE"]
    );
    let kind = registry.get(LoyaltyAccount::TYPE).expect("registered");
    assert_eq!(kind.schema_version(), 1);

    let repository = AggregateRepository::new(
        InMemoryEventStore::new(),
        InMemorySnapshotStore::new(),
        SnapshotCodec::default(),
    );
    let mut account = AggregateRoot::<LoyaltyAccount>::new(ID);
    account.open("c-7").unwrap();
    for points in 1..=20 {
        account.earn(points).unwrap();
    }
    account.redeem(50).unwrap();
    assert_eq!(repository.save(&mut account, None).await.unwrap(), 22);

    // The snapshot is built through the registry's type-erased kind, as the functions do.
    let (record, outcome) = repository
        .snapshot_now(kind.as_ref(), ID, SnapshotMetadata::default(), None)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Created);
    assert_eq!(record.header.aggregate_type, "LOYALTY_ACCOUNT");
    assert_eq!(record.header.version, 22);
    let stored = repository.snapshots().latest_header(ID).await.unwrap();
    assert_eq!(stored.map(|h| h.unwrap().version), Some(22));

    // Two more events, then a load: the snapshot plus the tail, not a full replay.
    account.earn(5).unwrap();
    account.redeem(3).unwrap();
    repository.save(&mut account, None).await.unwrap();
    let (loaded, report) = repository.load::<LoyaltyAccount>(ID).await.unwrap();
    assert_eq!(report.snapshot_version, Some(22));
    assert_eq!(report.events_replayed, 2);
    assert_eq!(loaded.version(), 24);
    assert_eq!(loaded.state(), account.state());
    assert_eq!(loaded.state().balance, 210 - 50 + 5 - 3);
    assert_eq!(loaded.state().lifetime_points, 215);

    // The stored events carry the external type's names and payloads.
    let events = repository.events().read(ID, 1, None).await.unwrap();
    assert_eq!(events.len(), 24);
    assert_eq!(events[0].event_type, "LoyaltyAccountOpened");
    assert_eq!(events[0].payload["customerId"], "c-7");

    // Type-erased load, as the admin API does for any registered type.
    let by_kind = repository.load_kind(kind.as_ref(), ID).await.unwrap();
    assert_eq!(by_kind.version, 24);
    assert_eq!(by_kind.report.snapshot_version, Some(22));
    let state = decode_state::<LoyaltyAccount>(ID, &by_kind.state_json).unwrap();
    assert_eq!(&state, account.state());
}
