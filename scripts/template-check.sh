#!/usr/bin/env bash
# Offline checks of the SAM template (part of `make test`):
#   1. cfn-lint (pinned below 1.54, see tools/template/requirements.txt)
#   2. sam validate (the SAM translator: turns the template into CloudFormation)
# Both run from the project-local virtualenv .venv-tools/, installed on first use or when
# tools/template/requirements.txt changes (scripts/venv.sh). Neither needs AWS credentials
# or a network connection; `sam validate` only needs a region name.
#
#   scripts/template-check.sh [TEMPLATE]     default: template.yaml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TEMPLATE="${1:-template.yaml}"
TOOLS="$ROOT/.venv-tools/bin"

if [[ ! -f "$TEMPLATE" ]]; then
  echo "template-check.sh: $TEMPLATE not found" >&2
  exit 1
fi

scripts/venv.sh .venv-tools tools/template/requirements.txt

echo "template-check.sh: cfn-lint $("$TOOLS/cfn-lint" --version | awk '{print $2}') $TEMPLATE" >&2
"$TOOLS/cfn-lint" -- "$TEMPLATE"

# No telemetry; the SAM CLI's weekly version check may try PyPI and shrugs off a failure.
echo "template-check.sh: sam validate $TEMPLATE" >&2
SAM_CLI_TELEMETRY=0 "$TOOLS/sam" validate --region "${AWS_REGION:-us-east-1}" --template-file "$TEMPLATE"
