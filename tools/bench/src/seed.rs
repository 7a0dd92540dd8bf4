//! Fast seeding of large histories: BatchWriteItem of 25 items, a few in flight, unprocessed
//! items retried. Seeding is not measured.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, StreamSpecification, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};

pub type Item = HashMap<String, AttributeValue>;

/// The product's event table (snapshot_dynamo::schema) with its stream turned off. Nothing in
/// the bench reads these streams (the snapshotter section builds its records itself), and
/// DynamoDB Local keeps every stream record it has written, even after the table is deleted,
/// and serves every later request more slowly the more it keeps: after 60,000 events written
/// to a table with a stream, a snapshotter batch took about ten times as long as on a fresh
/// instance, where the same writes to a table without one changed nothing. With the streams
/// on, each section would be measured on an engine slowed by the ones before it.
pub async fn events_table_without_stream(client: &Client, name: &str) -> Result<()> {
    snapshot_dynamo::schema::create_events_table(client, name).await?;
    client
        .update_table()
        .table_name(name)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(false)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("turning off the stream of {name}"))?;
    Ok(())
}

pub async fn write_all(client: &Client, table: &str, items: Vec<Item>) -> Result<()> {
    let chunks: Vec<Vec<Item>> = items.chunks(25).map(<[Item]>::to_vec).collect();
    stream::iter(chunks)
        .map(|chunk| write_chunk(client, table, chunk))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn write_chunk(client: &Client, table: &str, chunk: Vec<Item>) -> Result<()> {
    let mut pending: Vec<WriteRequest> = chunk
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<_, _>>()?;
    for _ in 0..10 {
        if pending.is_empty() {
            return Ok(());
        }
        let output = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut pending))
            .send()
            .await
            .context("seeding")?;
        pending = output
            .unprocessed_items
            .unwrap_or_default()
            .remove(table)
            .unwrap_or_default();
    }
    bail!("seeding {table}: items still unprocessed")
}
