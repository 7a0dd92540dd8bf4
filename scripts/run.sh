#!/usr/bin/env bash
# The whole system locally, in one command (what `make run` runs):
#   1. installs what is missing: the emulator's virtualenv (scripts/venv.sh), the Rust build
#   2. starts the local DynamoDB emulator (scripts/moto.sh), or reuses a running one
#   3. runs tools/local-stack in the foreground: tables, admin API on 127.0.0.1 (URL and dev
#      token printed and written to .local/admin-api.env), stream runner + snapshotter,
#      pruner timer, demo traffic
# Ctrl-C stops local-stack gracefully, then the emulator if this script started it.
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

step "python venv (.venv) for the local AWS emulator"
scripts/venv.sh

step "cargo build -p local-stack"
cargo build -p local-stack

# Start moto. It is ours to stop if the pid file names a different process after
# `moto.sh start` than before (checked on exit, so a server left half-started by an
# interrupt is stopped too); a server that was already running is left running.
moto_pid_before="$(cat .local/moto.pid 2>/dev/null || true)"
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local moto_pid_now
  moto_pid_now="$(cat .local/moto.pid 2>/dev/null || true)"
  if [[ -n "$moto_pid_now" && "$moto_pid_now" != "$moto_pid_before" ]]; then
    scripts/moto.sh stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT
# local-stack handles Ctrl-C itself; bash runs these only once it has exited.
trap 'exit 130' INT
trap 'exit 143' TERM

step "local AWS emulator (moto)"
# In a session of its own: Ctrl-C in the terminal reaches local-stack (which still needs
# the emulator while it stops) but not the emulator; the EXIT trap stops it afterwards.
if command -v setsid >/dev/null 2>&1; then
  setsid --wait scripts/moto.sh start >/dev/null
else
  scripts/moto.sh start >/dev/null
fi
AWS_ENDPOINT_URL="$(cat .local/moto.url)"
export AWS_ENDPOINT_URL
# Dummy credentials: the emulator accepts any, and real ones have no business here.
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

step "local stack (Ctrl-C stops it)"
status=0
cargo run --quiet -p local-stack -- ${args[@]+"${args[@]}"} || status=$?
exit "$status"
