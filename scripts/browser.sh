#!/usr/bin/env bash
# What the console's browser test needs (tests/tests/console_browser.rs), installed when
# missing: Debian's chromium (apt-get; playwright's own browser download is not used) and
# Node.js, then playwright-core pinned by tests/browser/package-lock.json (npm ci, no
# install scripts, so nothing else is downloaded).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "browser.sh: $*" >&2; }

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]} and no apt-get: install them to run the console's browser test"
    exit 1
  fi
  SUDO=()
  [[ "$(id -u)" == 0 ]] || SUDO=(sudo)
  log "installing ${missing[*]} with apt-get"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" fonts-dejavu-core >/dev/null
fi

lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.installed-lock
if [[ ! -f "$stamp" ]] || ! cmp -s "$lock" "$stamp"; then
  log "npm ci in tests/browser (playwright-core, pinned by package-lock.json)"
  (cd tests/browser && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  cp "$lock" "$stamp"
fi
