//! Fast seeding of large histories: BatchWriteItem of 25 items, a few in flight, unprocessed
//! items retried. Seeding is not measured.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};

pub type Item = HashMap<String, AttributeValue>;

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
