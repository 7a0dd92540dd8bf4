#!/usr/bin/env bash
# Start/stop moto (KMS and S3 locally; DynamoDB runs on DynamoDB Local, scripts/dynamodb-local.sh),
# via tools/moto/launcher.py.
#
#   scripts/moto.sh start   start it on a free loopback port (or reuse the one
#                           already running from .local/moto.pid) and print
#                           `export AWS_ENDPOINT_URL=...` on stdout, so
#                           `eval "$(scripts/moto.sh start)"` works
#   scripts/moto.sh stop    stop the process recorded in .local/moto.pid (only it)
#
# Files: .local/moto.pid (PID), .local/moto.url (endpoint URL), .local/moto.log.
# Needs the virtualenv from scripts/venv.sh (start runs it).
# Env: MOTO_START_TIMEOUT  seconds to wait for the server to answer (default 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.local"
PID_FILE="$STATE/moto.pid"
URL_FILE="$STATE/moto.url"
LOG_FILE="$STATE/moto.log"
PY="$ROOT/.venv/bin/python"
LAUNCHER="$ROOT/tools/moto/launcher.py"
HOST=127.0.0.1
TIMEOUT="${MOTO_START_TIMEOUT:-30}"

# shellcheck source=scripts/lib/processes.sh
source "$ROOT/scripts/lib/processes.sh"

log() { echo "moto.sh: $*" >&2; }

# PID from the pid file if that process is alive and is our launcher, else "".
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  pid_if_ours "$(cat "$PID_FILE" 2>/dev/null || true)" 'tools/moto/launcher\.py'
}

# 0 once something answers HTTP at $1 (any status code counts).
answers_http() {
  "$PY" - "$1" <<'EOF'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
  local pid url port attempt deadline
  pid="$(running_pid)"
  if [[ -n "$pid" && -f "$URL_FILE" ]]; then
    url="$(cat "$URL_FILE")"
    if answers_http "$url"; then
      log "already running (pid $pid) at $url"
      echo "export AWS_ENDPOINT_URL=$url"
      return 0
    fi
  fi
  if [[ -n "$pid" ]]; then
    log "pid $pid in $PID_FILE is not answering; stopping it first"
    cmd_stop
  fi
  rm -f "$PID_FILE" "$URL_FILE"

  "$ROOT/scripts/venv.sh"
  mkdir -p "$STATE"
  : >"$LOG_FILE" # one log per server; kept after stop for post-mortems

  # The port is free when picked but could be taken before the launcher binds
  # it; retry with a new port if the launcher dies right away.
  for attempt in 1 2 3; do
    port="$(free_port)"
    url="http://$HOST:$port"
    echo "--- $(date '+%Y-%m-%dT%H:%M:%S') start on $url (attempt $attempt)" >>"$LOG_FILE"
    nohup "$PY" "$LAUNCHER" --host "$HOST" --port "$port" </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"

    deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
      if ! alive "$pid"; then
        break
      fi
      # The ready line (printed once the launcher has bound the port) proves
      # that it is our process, not some other server, that answers on $url.
      if grep -qF "ready on $url (pid $pid," "$LOG_FILE" && answers_http "$url"; then
        echo "$url" >"$URL_FILE"
        log "started (pid $pid) at $url; log: ${LOG_FILE#"$ROOT"/}"
        echo "export AWS_ENDPOINT_URL=$url"
        return 0
      fi
      sleep 0.2
    done

    if alive "$pid"; then
      log "no answer from $url within ${TIMEOUT}s; stopping pid $pid"
      cmd_stop
      break
    fi
    log "launcher exited early (attempt $attempt)"
    rm -f "$PID_FILE"
  done

  log "failed to start; last lines of ${LOG_FILE#"$ROOT"/}:"
  tail -n 30 "$LOG_FILE" >&2 || true
  return 1
}

cmd_stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    if [[ -f "$PID_FILE" ]]; then
      log "not running (stale $PID_FILE removed)"
    else
      log "not running"
    fi
    rm -f "$PID_FILE" "$URL_FILE"
    return 0
  fi
  stop_pid "$pid"
  rm -f "$PID_FILE" "$URL_FILE"
  log "stopped (pid $pid)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
