# shellcheck shell=bash
# Sourced by scripts/moto.sh and scripts/dynamodb-local.sh: the checks and the stop they share
# for the one background server each of them records by PID. `log` is the caller's.

# 0 if process $1 exists and has not exited (an exited but not yet reaped process -- a
# zombie -- still passes `kill -0`).
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ -n "$stat" && "$stat" != Z* ]]
}

# $1 if it is alive and its command line matches the pattern $2 (a guard against PID reuse).
pid_if_ours() {
  [[ "$1" =~ ^[0-9]+$ ]] || return 0
  alive "$1" || return 0
  if ps -p "$1" -o args= 2>/dev/null | grep -q -- "$2"; then
    echo "$1"
  fi
}

# SIGTERM to $1, up to ~10 s for a clean exit, then SIGKILL.
stop_pid() {
  local i
  kill -TERM "$1" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$1" || return 0
    sleep 0.1
  done
  log "pid $1 ignored SIGTERM; sending SIGKILL"
  kill -KILL "$1" 2>/dev/null || true
}
