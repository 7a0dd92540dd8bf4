//! DynamoDB adapters of the ports (aws-sdk-dynamodb + serde_dynamo) and the table definitions.

mod attr;
pub mod endpoints;
mod events;
mod heads;
pub mod item_size;
mod items;
mod jobs;
mod positions;
pub mod schema;
pub mod sdk;
mod snapshots;
mod stored;

pub use endpoints::Endpoints;
pub use events::DynamoEventStore;
pub use heads::HEAD_PREFIX;
pub use jobs::{DynamoJobStore, JOB_AGGREGATE_ID};
pub use positions::{DynamoScanPositions, POSITIONS_AGGREGATE_ID, POSITION_TYPE};
pub use sdk::SdkSettings;
pub use snapshots::DynamoSnapshotStore;
pub use stored::{fold_items, Item, ItemEvent};

pub(crate) use sdk::{is_condition_failed, store_error as backend};
