#!/usr/bin/env bash
# `make bench`: the performance figures of README's Performance section, written to docs/bench/
# (README.md with the tables, SVG plots). Not part of `make test` (it takes minutes); its code
# is compiled and linted there.
#
#   1. release build of the three functions (scripts/build.sh): their bootstraps are measured
#      (size, cold start through a local Lambda Runtime API);
#   2. the local AWS services (scripts/lib/local-aws.sh): a fresh DynamoDB Local instance for
#      DynamoDB and its Streams, the engine measured; moto for KMS and S3 only;
#   3. cargo run --release -p bench (tools/bench): loads at 1k/10k/50k events for this product
#      and cqrs-es + dynamo-es in the same run, fold, codec, snapshotter, pruner, binaries.
#
# Env: BENCH_RUNS (default 5), BENCH_SIZES (default 1000,10000,50000), BENCH_OUT (docs/bench),
# BENCH_ONLY (sections to run, e.g. load: figures on stderr, docs/bench not written).
# Passes DYNAMODB_LOCAL_VERSION, the version the started engine printed, to the report.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }
started=$SECONDS

step "release build of the functions (scripts/build.sh)"
scripts/build.sh

step "python venv (.venv) for moto (KMS, S3)"
scripts/venv.sh

# shellcheck source=scripts/lib/local-aws.sh
source scripts/lib/local-aws.sh
step "local AWS: DynamoDB Local (DynamoDB, Streams), moto (KMS, S3)"
local_aws_session bench
export AWS_REGION="${AWS_REGION:-us-east-1}"
# The version this very instance printed at start-up (a `Version:<TAB>x.y.z` line), for the report.
DYNAMODB_LOCAL_VERSION="$(grep -oP '^Version:\t\K\S+' .local/dynamodb-local-bench.log | tail -n1 || true)"
if [[ -z "$DYNAMODB_LOCAL_VERSION" ]]; then
  echo "bench.sh: no Version line in .local/dynamodb-local-bench.log; the report will say so" >&2
fi
export DYNAMODB_LOCAL_VERSION

step "cargo run --locked --release -p bench"
cargo run --locked --release -p bench

step "bench done in $((SECONDS - started)) s: docs/bench/README.md"
