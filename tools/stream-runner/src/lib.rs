//! Local event source mapping: reads the event table's DynamoDB Stream from DynamoDB Local
//! (aws-sdk-dynamodbstreams: shards, iterators, GetRecords), turns the records into
//! the event Lambda delivers and invokes the same handler the Lambda function runs, with
//! Lambda's partial-batch-failure and checkpoint semantics.

pub mod args;
pub mod checkpoint;
pub mod convert;
pub mod empty_maps;
pub mod machine;
pub mod runner;
pub mod settings;

pub use runner::{DrainReport, PollReport, RunnerError, StreamRunner};
pub use settings::{RunnerSettings, StartingPosition};
