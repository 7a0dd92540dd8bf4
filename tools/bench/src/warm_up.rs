//! DynamoDB Local is a JVM: a fresh instance serves its first requests of a kind several
//! times slower than after a thousand or so, once the JIT has compiled them (a 101-item
//! Query: about 15 ms at first, 2.5 ms after 50, 1.4 ms after 1,000). Every section would
//! otherwise measure its first figures, the smallest history's above all, on a cold engine.
//! Before any section runs, this sends the kinds of request the sections measure (Queries
//! newest first and forward, by pages and whole, key reads, conditional puts, batched writes
//! and deletes, parallel scans) to a table of its own, deleted afterwards.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::seed::{events_table_without_stream, write_all, Item};

/// Rounds of the Query mix; each round is a few requests.
const ROUNDS: usize = 1_000;
/// Events of the warm-up aggregate.
const EVENTS: u64 = 1_000;

/// What the warm-up saw: how many requests, how long, and the newest-first 101-item Query's
/// median time over the first and the last ten rounds.
pub struct WarmUp {
    pub requests: u64,
    pub took: Duration,
    pub tail_query_first_ms: f64,
    pub tail_query_last_ms: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn event(id: &str, sequence: u64) -> Item {
    HashMap::from([
        ("aggregateId".to_owned(), AttributeValue::S(id.to_owned())),
        (
            "sequence".to_owned(),
            AttributeValue::N(sequence.to_string()),
        ),
        (
            "payload".to_owned(),
            AttributeValue::S(format!(
                "{{\"quantity\":{sequence},\"pad\":\"{:0>200}\"}}",
                0
            )),
        ),
    ])
}

pub async fn engine(client: &Client, suffix: &str) -> Result<WarmUp> {
    let started = Instant::now();
    let table = format!("bench_warm_up_{suffix}");
    events_table_without_stream(client, &table).await?;
    let id = "warm-up";
    write_all(client, &table, (1..=EVENTS).map(|s| event(id, s)).collect()).await?;
    let mut requests = EVENTS.div_ceil(25);
    let query = || {
        client
            .query()
            .table_name(&table)
            .key_condition_expression("aggregateId = :id")
            .expression_attribute_values(":id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
    };
    let mut tail_times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let t = Instant::now();
        query()
            .scan_index_forward(false)
            .limit(101)
            .send()
            .await
            .context("warm-up Query")?;
        tail_times.push(t.elapsed().as_secs_f64() * 1000.0);
        // The snapshot read and the peer's reads: one newest item, a page of 200 forward.
        query()
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .context("warm-up Query")?;
        query().limit(200).send().await.context("warm-up Query")?;
        client
            .get_item()
            .table_name(&table)
            .key("aggregateId", AttributeValue::S(id.to_owned()))
            .key(
                "sequence",
                AttributeValue::N(((round as u64 % EVENTS) + 1).to_string()),
            )
            .consistent_read(true)
            .send()
            .await
            .context("warm-up GetItem")?;
        // A conditional put (an append, a snapshot) of a new item each round.
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(event("warm-up-puts", round as u64 + 1)))
            .condition_expression("attribute_not_exists(aggregateId)")
            .send()
            .await
            .context("warm-up PutItem")?;
        requests += 5;
        if round % 50 == 0 {
            // A whole history, in as many pages as the engine cuts it into; and a scan.
            let mut start = None;
            loop {
                let page = query()
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .context("warm-up Query")?;
                requests += 1;
                start = page.last_evaluated_key.filter(|k| !k.is_empty());
                if start.is_none() {
                    break;
                }
            }
            client
                .scan()
                .table_name(&table)
                .segment(0)
                .total_segments(4)
                .send()
                .await
                .context("warm-up Scan")?;
            requests += 1;
        }
    }
    // Batched deletes, as the pruner sends them.
    let keys: Vec<WriteRequest> = (1..=ROUNDS as u64)
        .map(|sequence| {
            DeleteRequest::builder()
                .key("aggregateId", AttributeValue::S("warm-up-puts".to_owned()))
                .key("sequence", AttributeValue::N(sequence.to_string()))
                .build()
                .map(|delete| WriteRequest::builder().delete_request(delete).build())
        })
        .collect::<Result<_, _>>()?;
    for chunk in keys.chunks(25) {
        client
            .batch_write_item()
            .request_items(&table, chunk.to_vec())
            .send()
            .await
            .context("warm-up BatchWriteItem")?;
        requests += 1;
    }
    let _ = client.delete_table().table_name(&table).send().await;
    let ten = ROUNDS.min(10);
    Ok(WarmUp {
        requests,
        took: started.elapsed(),
        tail_query_first_ms: median(&mut tail_times[..ten].to_vec()),
        tail_query_last_ms: median(&mut tail_times[ROUNDS - ten..].to_vec()),
    })
}
