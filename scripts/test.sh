#!/usr/bin/env bash
# The project's full test command (what `make test` and CI run):
#   1. cargo fmt --all --check
#   2. supply chain: cargo deny check bans licenses sources, offline (scripts/deny.sh, deny.toml)
#   3. cargo clippy --locked --workspace --all-targets -- -D warnings
#   4. template checks: cfn-lint and sam validate of template.yaml (scripts/template-check.sh)
#   5. chromium and playwright-core for the console's browser test (scripts/browser.sh)
#   6. cargo test --locked --workspace [extra args passed to this script]
# Every cargo build runs --locked: Cargo.lock is the dependency set that was reviewed (and that
# cargo-deny checked); a Cargo.toml change that needs a new lock fails instead of resolving.
# The integration tests run against a fresh DynamoDB Local (DynamoDB and Streams) and moto (KMS,
# S3), started by scripts/lib/local-aws.sh and stopped on exit, whatever the outcome (a moto
# already running from `scripts/moto.sh start` is reused and left running).
#
# Extra arguments go to `cargo test`, e.g.  scripts/test.sh -p snapshot-core -- --nocapture
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "test.sh: 'cargo' not found on PATH; install the Rust toolchain (https://rustup.rs) with the rustfmt and clippy components" >&2
  exit 127
fi
for component in fmt clippy; do
  if ! cargo "$component" --version >/dev/null 2>&1; then
    echo "test.sh: 'cargo $component' is not available; install it (rustup component add ${component/fmt/rustfmt})" >&2
    exit 127
  fi
done

step "python venv (.venv) for moto (KMS, S3)"
scripts/venv.sh

# shellcheck source=scripts/lib/local-aws.sh
source scripts/lib/local-aws.sh
step "local AWS: DynamoDB Local (DynamoDB, Streams), moto (KMS, S3)"
local_aws_session test

step "cargo fmt --all --check"
cargo fmt --all --check

step "supply chain: cargo deny check bans licenses sources (offline; venv .venv-deny)"
scripts/deny.sh

step "cargo clippy --locked --workspace --all-targets -- -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "template checks: cfn-lint, sam validate (offline; venv .venv-tools)"
scripts/template-check.sh template.yaml

step "browser for the console test: chromium, playwright-core (scripts/browser.sh)"
scripts/browser.sh

step "cargo test --locked --workspace $*"
cargo test --locked --workspace "$@"

step "all checks passed"
