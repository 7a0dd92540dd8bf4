#!/usr/bin/env bash
# Release build of the three Lambda functions with cargo-lambda (what `make build` runs).
#
#   scripts/build.sh            x86_64 (the host here): target/lambda/<function>/bootstrap
#   scripts/build.sh --arm64    arm64 (Graviton), as template.yaml deploys them (adds the
#                               aarch64-unknown-linux-gnu standard library through rustup
#                               when it is missing)
# Both write target/lambda/<function>/bootstrap: the last build's architecture wins.
#
# Further arguments go to `cargo lambda build`. cargo-lambda and zig come from PyPI
# (tools/build/requirements.txt) into the project-local virtualenv .venv-build/; its bin/ goes
# first on PATH because cargo-lambda finds zig through the first `python3` there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FUNCTIONS=(snapshotter pruner admin-api)

if ! command -v cargo >/dev/null 2>&1; then
  echo "build.sh: 'cargo' not found on PATH; install the Rust toolchain (https://rustup.rs)" >&2
  exit 127
fi

scripts/venv.sh .venv-build tools/build/requirements.txt
export PATH="$ROOT/.venv-build/bin:$PATH"

# arm64 needs the aarch64 standard library; rustup fetches it once.
for arg in "$@"; do
  if [[ "$arg" == --arm64 ]] && command -v rustup >/dev/null 2>&1 &&
    ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "build.sh: rustup target add aarch64-unknown-linux-gnu" >&2
    rustup target add aarch64-unknown-linux-gnu
  fi
done

# Packages selected with -p, not only their binaries: features then resolve over the three
# functions alone, not the whole workspace (the bench's peer turns on the SDK's default
# features, which add a second HTTP/TLS stack; about 2.4 MB per binary, docs/binaries.md).
bins=()
for f in "${FUNCTIONS[@]}"; do
  bins+=(-p "$f" --bin "$f")
done

echo "build.sh: $(cargo lambda --version)" >&2
# Every other build setting is in Cargo.toml ([profile.release] and cargo-lambda's
# [workspace.metadata.lambda.build]), where `sam build` reads it too: no flag here that changes
# the bootstraps (tests/tests/template.rs checks it).
cargo lambda build --release --locked "${bins[@]}" "$@"

echo "build.sh: built" >&2
for f in "${FUNCTIONS[@]}"; do
  bootstrap="target/lambda/$f/bootstrap"
  if [[ ! -f "$bootstrap" ]]; then
    echo "build.sh: $bootstrap is missing" >&2
    exit 1
  fi
  printf '  %-36s %6s KiB\n' "$bootstrap" "$(($(stat -c %s "$bootstrap") / 1024))" >&2
done
