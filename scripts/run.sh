#!/usr/bin/env bash
# The whole system locally, in one command (what `make run` runs):
#   1. installs what is missing: moto's virtualenv (scripts/venv.sh), the Rust build
#   2. starts a fresh DynamoDB Local (scripts/dynamodb-local.sh) and moto for KMS and S3
#      (scripts/moto.sh, or reuses a running one)
#   3. runs tools/local-stack in the foreground: tables, admin API on 127.0.0.1 (URL and dev
#      token printed and written to .local/admin-api.env), stream runner + snapshotter,
#      pruner timer, demo traffic
# Ctrl-C stops local-stack gracefully, then DynamoDB Local, and moto if this script started it.
#
#   scripts/run.sh [local-stack flags]     e.g. --no-demo, --port 8080, --threshold 5
#   DEMO=0 scripts/run.sh                  same as --no-demo (make run DEMO=0)
# `scripts/run.sh --help` lists the flags; every setting is also an environment variable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "run.sh: 'cargo' not found on PATH; install the Rust toolchain (https://rustup.rs)" >&2
  exit 127
fi

args=("$@")
case "${DEMO:-1}" in
  0 | no | false | off) args+=(--no-demo) ;;
  1 | yes | true | on | "") ;;
  *)
    echo "run.sh: DEMO must be 1 or 0, got '$DEMO'" >&2
    exit 2
    ;;
esac

step "python venv (.venv) for moto (KMS, S3)"
scripts/venv.sh

step "cargo build --locked -p local-stack"
cargo build --locked -p local-stack

# shellcheck source=scripts/lib/local-aws.sh
source scripts/lib/local-aws.sh
step "local AWS: DynamoDB Local (DynamoDB, Streams), moto (KMS, S3)"
# local-stack handles Ctrl-C itself; the engines run in sessions of their own and are stopped
# by the EXIT trap once local-stack has shut down.
local_aws_session run --own-session

step "local stack (Ctrl-C stops it)"
status=0
cargo run --locked --quiet -p local-stack -- ${args[@]+"${args[@]}"} || status=$?
exit "$status"
