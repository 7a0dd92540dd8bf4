//! What `make run` prints once the stack is up: where the admin API and the operator console
//! are, the dev token, and the settings in force.

use crate::{LocalStack, StackSettings};

/// The text printed once the stack is up: the admin API's and console's URLs, the dev token,
/// the snapshot policy and demo settings in force.
pub fn banner(stack: &LocalStack, settings: &StackSettings, endpoint: &str) -> String {
    let config = &settings.snapshotter.config;
    let policy = &config.policies.default;
    let demo = match &settings.demo {
        Some(demo) => format!(
            "{} commands/s on {} items (demo-item-N) and {} warehouses (demo-warehouse-N)",
            demo.rate_per_sec, demo.items, demo.warehouses
        ),
        None => "off".to_owned(),
    };
    let example = stack
        .demo_aggregates
        .first()
        .map_or("some-aggregate-id", String::as_str);
    format!(
        "\nlocal stack ready; Ctrl-C stops it\n\
         \x20 admin API   {url}\n\
         \x20 console     {url}/console/ (sign in with the dev token)\n\
         \x20 dev token   {token}\n\
         \x20 env file    {env_file} (scripts/operator-session.sh reads it)\n\
         \x20 tables      {events}, {snapshots} at {endpoint}\n\
         \x20 snapshots   {strategy} policy, every {threshold} events; pruning every {prune}s keeps {keep} per aggregate\n\
         \x20 demo        {demo}\n\
         \x20 try         curl -s -H 'Authorization: Bearer {token}' {url}/admin/snapshots/{example}\n",
        url = stack.url,
        token = stack.token,
        env_file = stack.env_file().display(),
        events = stack.events_table,
        snapshots = stack.snapshots_table,
        strategy = format!("{:?}", policy.strategy).to_lowercase(),
        threshold = policy.threshold,
        prune = settings.prune_interval.as_secs(),
        keep = settings.pruner.max_snapshots,
    )
}
