#!/usr/bin/env bash
# Refreshes the console's screenshots in docs/console/ (one per screen): runs the browser test
# (tests/tests/console_browser.rs) with its screenshots written there, on a local emulator.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh
scripts/browser.sh
# shellcheck source=scripts/lib/local-aws.sh
source scripts/lib/local-aws.sh
local_aws_session screenshots
mkdir -p docs/console
CONSOLE_SCREENSHOTS="$ROOT/docs/console" cargo test --locked -p integration-tests --test console_browser
rm -f docs/console/failure.png
ls docs/console
