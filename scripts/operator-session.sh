#!/usr/bin/env bash
# An operator session with curl against the local admin API that `make run` started: health,
# list, latest, manual snapshot, verify, aggregate state, cleanup dry run, delete with and
# without force. Each step prints the curl command and the answer.
#
#   scripts/operator-session.sh [ITEM_ID [WAREHOUSE_ID]]   (defaults: the demo aggregates)
#
# URL and token come from ADMIN_API_URL / ADMIN_DEV_TOKEN if set, else from the env file the
# running local stack writes (.local/admin-api.env, or LOCAL_ENV_FILE). Needs curl, python3.
# The last step deletes snapshots of the warehouse (the snapshotter makes new ones).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="${LOCAL_ENV_FILE:-$ROOT/.local/admin-api.env}"

if [[ -z "${ADMIN_API_URL:-}" || -z "${ADMIN_DEV_TOKEN:-}" ]]; then
  if [[ ! -f "$ENV_FILE" ]]; then
    echo "operator-session.sh: no $ENV_FILE; start the local stack first (make run, in another terminal)" >&2
    exit 1
  fi
  set -a
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  set +a
fi
ITEM="${1:-${DEMO_ITEM:-demo-item-1}}"
WAREHOUSE="${2:-${DEMO_WAREHOUSE:-demo-warehouse-1}}"
MAX_LINES="${MAX_LINES:-25}"

STATUS=""
BODY=""
# Pretty JSON on stdin, cut to argv[1] lines.
PRETTY='
import json, sys
limit = int(sys.argv[1])
text = sys.stdin.read()
try:
    lines = json.dumps(json.loads(text), indent=2).splitlines()
except ValueError:
    lines = text.splitlines()
print("\n".join(lines[:limit]))
if len(lines) > limit:
    print("  ... (%d more lines)" % (len(lines) - limit))
'

# call METHOD PATH [JSON_BODY] [anonymous]: prints the request and the answer (pretty JSON,
# cut to MAX_LINES lines); leaves STATUS and BODY for the next step.
call() {
  local method="$1" path="$2" data="${3:-}" anonymous="${4:-}"
  local args=(-sS -X "$method" -w '\n%{http_code}')
  local shown="curl -s -X $method"
  if [[ -z "$anonymous" ]]; then
    args+=(-H "Authorization: Bearer $ADMIN_DEV_TOKEN")
    # shellcheck disable=SC2016 # shown literally: the reader's shell expands it
    shown+=' -H "Authorization: Bearer $ADMIN_DEV_TOKEN"'
  fi
  if [[ -n "$data" ]]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
    shown+=" -H 'Content-Type: application/json' -d '$data'"
  fi
  # shellcheck disable=SC2016 # shown literally, as above
  printf '\n$ %s "$ADMIN_API_URL%s"\n' "$shown" "$path"
  local response
  response="$(curl "${args[@]}" "$ADMIN_API_URL$path")"
  STATUS="${response##*$'\n'}"
  BODY="${response%$'\n'*}"
  echo "HTTP $STATUS"
  python3 -c "$PRETTY" "$MAX_LINES" <<<"$BODY"
}

# field EXPRESSION: evaluates a Python expression on the last body (as `body`).
field() {
  python3 -c "import json, sys; body = json.load(sys.stdin); print($1)" <<<"$BODY"
}

step() { printf '\n### %s\n' "$*"; }

echo "admin API $ADMIN_API_URL; item $ITEM, warehouse $WAREHOUSE"

step "1. health (no token needed)"
call GET /health "" anonymous

step "2. without the token: refused (deny by default)"
call GET "/admin/snapshots/$ITEM" "" anonymous

step "3. list the item's snapshots, newest first (metadata only; ?includeState=true adds state)"
call GET "/admin/snapshots/$ITEM?limit=3"

step "4. latest valid snapshot, with its state"
call GET "/admin/snapshots/$ITEM/latest"

step "5. snapshot it now (reason manual)"
call POST "/admin/snapshots/create/INVENTORY_ITEM/$ITEM"
if [[ "$STATUS" != 200 && "$STATUS" != 201 ]]; then
  echo "operator-session.sh: cannot snapshot $ITEM (HTTP $STATUS); with the demo off, pass the id of an INVENTORY_ITEM that has events" >&2
  exit 1
fi
manual_version="$(field 'body["snapshot"]["version"]')"

step "6. verify: latest snapshot + newer events against a full replay (drift check)"
call POST "/admin/snapshots/$ITEM/verify"

step "7. current state of the aggregate, and how it was loaded"
call GET "/admin/aggregates/INVENTORY_ITEM/$ITEM"

step "8. cleanup dry run: what pruning would delete (nothing is deleted)"
call POST /admin/snapshots/cleanup "{\"dryRun\": true, \"aggregateId\": \"$ITEM\"}"

step "9. delete the manual snapshot (version $manual_version)"
call DELETE "/admin/snapshots/$ITEM/$manual_version"

step "10. delete without and with force: the warehouse down to one snapshot, then that one"
call GET "/admin/snapshots/$WAREHOUSE?limit=100"
versions="$(field '" ".join(str(i["version"]) for i in body.get("items", []))')"
newest="${versions%% *}"
if [[ -z "$newest" ]]; then
  echo "$WAREHOUSE has no snapshots yet; skipping"
  exit 0
fi
for version in ${versions#"$newest"}; do
  call DELETE "/admin/snapshots/$WAREHOUSE/$version"
done
echo
echo "# the only snapshot left: refused without force (409), unless the snapshotter just wrote a newer one"
call DELETE "/admin/snapshots/$WAREHOUSE/$newest"
if [[ "$STATUS" == 409 ]]; then
  call DELETE "/admin/snapshots/$WAREHOUSE/$newest?force=true"
fi
