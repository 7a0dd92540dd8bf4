# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/run.sh (from the repo root): starts the local AWS
# emulator for the calling script and points the AWS SDK at it.
#
#   moto_session [--own-session]
#
# The emulator is ours to stop if the pid file names a different process after
# `moto.sh start` than before (checked on exit, so a server left half-started by an interrupt
# is stopped too); a server that was already running is reused and left running.
# --own-session starts it in a session of its own, so Ctrl-C in the terminal reaches the
# caller's foreground program (which may still need the emulator while it stops) but not the
# emulator; the EXIT trap stops it afterwards.

# shellcheck disable=SC2317 # run by the EXIT trap
_moto_session_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local moto_pid_now
  moto_pid_now="$(cat .local/moto.pid 2>/dev/null || true)"
  if [[ -n "$moto_pid_now" && "$moto_pid_now" != "$_moto_pid_before" ]]; then
    scripts/moto.sh stop || true
  fi
  exit "$rc"
}

moto_session() {
  _moto_pid_before="$(cat .local/moto.pid 2>/dev/null || true)"
  trap _moto_session_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ "${1:-}" == --own-session ]] && command -v setsid >/dev/null 2>&1; then
    setsid --wait scripts/moto.sh start >/dev/null
  else
    scripts/moto.sh start >/dev/null
  fi
  AWS_ENDPOINT_URL="$(cat .local/moto.url)"
  export AWS_ENDPOINT_URL
  # Dummy credentials: the emulator accepts any, and real ones have no business here.
  export AWS_ACCESS_KEY_ID=test
  export AWS_SECRET_ACCESS_KEY=test
  unset AWS_SESSION_TOKEN AWS_PROFILE
  export AWS_REGION=us-east-1
  export AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL (log: .local/moto.log)" >&2
}
