//! The peer: cqrs-es 0.5 with its DynamoDB repository dynamo-es 0.5, the real crates, on the
//! same engine. Its aggregate is the same INVENTORY_ITEM (same events, same fold) so the
//! figures differ only by how the stores read. Its tables follow dynamo-es's schema: events
//! keyed by `AggregateTypeAndId` + `AggregateIdSequence`, one snapshot item per aggregate.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, DomainEvent, EventStore};
use dynamo_es::DynamoEventRepository;
use serde::{Deserialize, Serialize};
use snapshot_core::domain::inventory_item::{
    InventoryItemEvent, ItemCreated, ItemDiscontinued, OrderQuantity, StockAdjusted, StockReceived,
};
use snapshot_core::domain::{Aggregate as _, InventoryItem};

use crate::seed::write_all;

/// The peer's event: the same payloads, serialised as cqrs-es does (externally tagged JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerEvent {
    ItemCreated(ItemCreated),
    StockReceived(StockReceived),
    StockReserved(OrderQuantity),
    ReservationReleased(OrderQuantity),
    StockShipped(OrderQuantity),
    StockAdjusted(StockAdjusted),
    ItemDiscontinued(ItemDiscontinued),
}

impl From<&InventoryItemEvent> for PeerEvent {
    fn from(e: &InventoryItemEvent) -> Self {
        use InventoryItemEvent as E;
        match e.clone() {
            E::ItemCreated(p) => Self::ItemCreated(p),
            E::StockReceived(p) => Self::StockReceived(p),
            E::StockReserved(p) => Self::StockReserved(p),
            E::ReservationReleased(p) => Self::ReservationReleased(p),
            E::StockShipped(p) => Self::StockShipped(p),
            E::StockAdjusted(p) => Self::StockAdjusted(p),
            E::ItemDiscontinued(p) => Self::ItemDiscontinued(p),
        }
    }
}

impl PeerEvent {
    fn into_domain(self) -> InventoryItemEvent {
        use InventoryItemEvent as E;
        match self {
            Self::ItemCreated(p) => E::ItemCreated(p),
            Self::StockReceived(p) => E::StockReceived(p),
            Self::StockReserved(p) => E::StockReserved(p),
            Self::ReservationReleased(p) => E::ReservationReleased(p),
            Self::StockShipped(p) => E::StockShipped(p),
            Self::StockAdjusted(p) => E::StockAdjusted(p),
            Self::ItemDiscontinued(p) => E::ItemDiscontinued(p),
        }
    }
}

impl DomainEvent for PeerEvent {
    fn event_type(&self) -> String {
        use snapshot_core::DomainEvent as _;
        self.clone().into_domain().event_type().to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// The peer's aggregate: our state, folded by our `apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerItem(pub InventoryItem);

impl Default for PeerItem {
    fn default() -> Self {
        Self(InventoryItem::initial(""))
    }
}

impl Aggregate for PeerItem {
    const TYPE: &'static str = "INVENTORY_ITEM";
    type Command = ();
    type Event = PeerEvent;
    type Error = std::io::Error;
    type Services = ();

    async fn handle(
        &mut self,
        _command: Self::Command,
        _service: &Self::Services,
        _sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.0.apply(&event.into_domain());
    }
}

pub struct Peer {
    client: Client,
    pub events_table: String,
    pub snapshots_table: String,
}

impl Peer {
    pub async fn create(client: Client, suffix: &str) -> Result<Self> {
        let peer = Self {
            events_table: format!("bench_peer_events_{suffix}"),
            snapshots_table: format!("bench_peer_snapshots_{suffix}"),
            client,
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        peer.client
            .create_table()
            .table_name(&peer.events_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("AggregateTypeAndId", KeyType::Hash)?)
            .key_schema(key("AggregateIdSequence", KeyType::Range)?)
            .attribute_definitions(attribute("AggregateTypeAndId", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("AggregateIdSequence", ScalarAttributeType::N)?)
            .send()
            .await
            .context("peer event table")?;
        peer.client
            .create_table()
            .table_name(&peer.snapshots_table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("AggregateTypeAndId", KeyType::Hash)?)
            .attribute_definitions(attribute("AggregateTypeAndId", ScalarAttributeType::S)?)
            .send()
            .await
            .context("peer snapshot table")?;
        Ok(peer)
    }

    /// Writes the history in dynamo-es's item format, and its snapshot at `snapshot_at`.
    pub async fn seed(
        &self,
        id: &str,
        events: &[InventoryItemEvent],
        snapshot_at: usize,
    ) -> Result<()> {
        let key = format!("{}:{id}", PeerItem::TYPE);
        let items = events.iter().enumerate().map(|(i, e)| {
            let event = PeerEvent::from(e);
            HashMap::from([
                (
                    "AggregateTypeAndId".to_owned(),
                    AttributeValue::S(key.clone()),
                ),
                (
                    "AggregateIdSequence".to_owned(),
                    AttributeValue::N((i + 1).to_string()),
                ),
                (
                    "AggregateType".to_owned(),
                    AttributeValue::S(PeerItem::TYPE.to_owned()),
                ),
                ("AggregateId".to_owned(), AttributeValue::S(id.to_owned())),
                (
                    "EventVersion".to_owned(),
                    AttributeValue::S(event.event_version()),
                ),
                (
                    "EventType".to_owned(),
                    AttributeValue::S(event.event_type()),
                ),
                (
                    "Payload".to_owned(),
                    AttributeValue::B(Blob::new(serde_json::to_vec(&event).unwrap_or_default())),
                ),
                (
                    "Metadata".to_owned(),
                    AttributeValue::B(Blob::new(b"{}".to_vec())),
                ),
            ])
        });
        write_all(&self.client, &self.events_table, items.collect()).await?;
        let mut state = PeerItem(InventoryItem::initial(id));
        for e in &events[..snapshot_at] {
            state.apply(PeerEvent::from(e));
        }
        self.client
            .put_item()
            .table_name(&self.snapshots_table)
            .item("AggregateTypeAndId", AttributeValue::S(key))
            .item(
                "AggregateType",
                AttributeValue::S(PeerItem::TYPE.to_owned()),
            )
            .item("AggregateId", AttributeValue::S(id.to_owned()))
            .item(
                "CurrentSequence",
                AttributeValue::N(snapshot_at.to_string()),
            )
            .item(
                "CurrentSnapshot",
                AttributeValue::N((snapshot_at / 100).max(1).to_string()),
            )
            .item(
                "Payload",
                AttributeValue::B(Blob::new(serde_json::to_vec(&state)?)),
            )
            .send()
            .await
            .context("peer snapshot")?;
        Ok(())
    }

    fn repository(&self, client: &Client) -> DynamoEventRepository {
        DynamoEventRepository::new(client.clone())
            .with_tables(&self.events_table, &self.snapshots_table)
    }

    /// cqrs-es's own snapshot load: the snapshot item, then the events after it.
    pub async fn load_snapshot(&self, client: &Client, id: &str) -> Result<(InventoryItem, usize)> {
        let store: PersistedEventStore<_, PeerItem> =
            PersistedEventStore::new_snapshot_store(self.repository(client), 100);
        let context = store
            .load_aggregate(id)
            .await
            .map_err(|e| anyhow::anyhow!("peer snapshot load: {e}"))?;
        Ok((context.aggregate.0, context.current_sequence))
    }

    /// dynamo-es's paginated replay (`stream_events`, pages of 200 events), folded.
    pub async fn load_replay(&self, client: &Client, id: &str) -> Result<(InventoryItem, usize)> {
        let mut stream = self
            .repository(client)
            .stream_events::<PeerItem>(id)
            .await
            .map_err(|e| anyhow::anyhow!("peer replay: {e}"))?;
        let mut state = PeerItem(InventoryItem::initial(id));
        let mut sequence = 0;
        while let Some(envelope) = stream.next::<PeerItem>(&[]).await {
            let envelope = envelope.map_err(|e| anyhow::anyhow!("peer replay: {e}"))?;
            sequence = envelope.sequence;
            state.apply(envelope.payload);
        }
        Ok((state.0, sequence))
    }
}
