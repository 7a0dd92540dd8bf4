//! Bring your own aggregate: an application adds a third aggregate type in its own crate,
//! depending on `snapshot-core` alone.
//!
//! [`LoyaltyAccount`] is that aggregate. Its events are declared with
//! [`snapshot_core::domain_events!`], its commands use the public checks of
//! [`AggregateRoot`] (`require_new`, `positive`, `exceeds`, `record`, …), and it is registered
//! with `Registry::builtin().with::<LoyaltyAccount>()`. From then on the repository snapshots
//! and loads it like the built-in types (see `tests/bring_your_own.rs`); the functions handle
//! it once they are given that registry (`Snapshotter::with_registry`, `AppState::new`).

use serde::{Deserialize, Serialize};
use snapshot_core::domain::{Aggregate, AggregateRoot, DomainError};

/// `LoyaltyAccountOpened` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountOpened {
    /// The customer the account belongs to.
    pub customer_id: String,
}

/// `PointsEarned` / `PointsRedeemed` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Points {
    /// How many points (always above zero).
    pub points: i64,
}

snapshot_core::domain_events! {
    /// The events of a loyalty account, named as stored (`eventType`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum LoyaltyEvent {
        LoyaltyAccountOpened(AccountOpened),
        PointsEarned(Points),
        PointsRedeemed(Points),
    }
}

/// A customer's loyalty points: the state stored in its snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyAccount {
    /// The aggregate id.
    pub id: String,
    /// Empty until the account is opened.
    pub customer_id: String,
    /// Points that can be redeemed.
    pub balance: i64,
    /// Points earned over the account's life.
    pub lifetime_points: i64,
}

impl Aggregate for LoyaltyAccount {
    const TYPE: &'static str = "LOYALTY_ACCOUNT";
    const SCHEMA_VERSION: u32 = 1;
    type Event = LoyaltyEvent;

    fn initial(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            customer_id: String::new(),
            balance: 0,
            lifetime_points: 0,
        }
    }

    fn aggregate_id(&self) -> &str {
        &self.id
    }

    fn apply(&mut self, event: &LoyaltyEvent) {
        // Events are facts: applying never fails, and saturates rather than overflowing.
        match event {
            LoyaltyEvent::LoyaltyAccountOpened(e) => self.customer_id.clone_from(&e.customer_id),
            LoyaltyEvent::PointsEarned(e) => {
                self.balance = self.balance.saturating_add(e.points);
                self.lifetime_points = self.lifetime_points.saturating_add(e.points);
            }
            LoyaltyEvent::PointsRedeemed(e) => self.balance = self.balance.saturating_sub(e.points),
        }
    }
}

/// The commands: each checks its rules, then records one event.
pub trait LoyaltyCommands {
    /// Opens the account for `customer_id`.
    ///
    /// # Errors
    /// The account exists already, or the customer id is blank.
    fn open(&mut self, customer_id: &str) -> Result<(), DomainError>;

    /// Adds `points` to the balance.
    ///
    /// # Errors
    /// The account does not exist, or `points` is not above zero.
    fn earn(&mut self, points: i64) -> Result<(), DomainError>;

    /// Takes `points` from the balance.
    ///
    /// # Errors
    /// The account does not exist, `points` is not above zero, or exceeds the balance.
    fn redeem(&mut self, points: i64) -> Result<(), DomainError>;
}

impl LoyaltyCommands for AggregateRoot<LoyaltyAccount> {
    fn open(&mut self, customer_id: &str) -> Result<(), DomainError> {
        self.require_new()?;
        self.not_blank("customerId", customer_id)?;
        self.record(LoyaltyEvent::LoyaltyAccountOpened(AccountOpened {
            customer_id: customer_id.to_owned(),
        }));
        Ok(())
    }

    fn earn(&mut self, points: i64) -> Result<(), DomainError> {
        self.require_exists()?;
        self.positive("points", points)?;
        self.record(LoyaltyEvent::PointsEarned(Points { points }));
        Ok(())
    }

    fn redeem(&mut self, points: i64) -> Result<(), DomainError> {
        self.require_exists()?;
        self.positive("points", points)?;
        let balance = self.state().balance;
        if points > balance {
            return Err(self.exceeds("redeem", points, balance, "points in the balance"));
        }
        self.record(LoyaltyEvent::PointsRedeemed(Points { points }));
        Ok(())
    }
}
