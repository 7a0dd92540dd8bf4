#!/usr/bin/env bash
# The project's full test command (what `make test` and CI run):
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. template checks: cfn-lint and sam validate of template.yaml (scripts/template-check.sh)
#   4. cargo test --workspace [extra args passed to this script]
# against a local moto server (scripts/moto.sh) for the integration tests.
#
# Extra arguments go to `cargo test`, e.g.  scripts/test.sh -p snapshot-core -- --nocapture
# moto is stopped on exit if this script started it (a server already running
# from `scripts/moto.sh start` is reused and left running).
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

step "python venv (.venv) for the local AWS emulator"
scripts/venv.sh

# Start moto. It is ours to stop if the pid file names a different process
# after `moto.sh start` than before (checked on exit, so a server left
# half-started by an interrupt is stopped too).
moto_pid_before="$(cat .local/moto.pid 2>/dev/null || true)"
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
trap 'exit 130' INT
trap 'exit 143' TERM

step "local AWS emulator (moto)"
scripts/moto.sh start >/dev/null
AWS_ENDPOINT_URL="$(cat .local/moto.url)"
export AWS_ENDPOINT_URL
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL (log: .local/moto.log)" >&2

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "template checks: cfn-lint, sam validate (offline; venv .venv-tools)"
scripts/template-check.sh template.yaml

step "cargo test --workspace $*"
cargo test --workspace "$@"

step "all checks passed"
