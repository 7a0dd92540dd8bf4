# shellcheck shell=bash
# Sourced by scripts/test.sh, scripts/run.sh and scripts/bench.sh (from the repo root): starts
# the local AWS services for the calling script and points the AWS SDK at them.
#
#   local_aws_session NAME [--own-session]
#
# DynamoDB and DynamoDB Streams: AWS's DynamoDB Local (scripts/dynamodb-local.sh), a fresh
# in-memory instance named NAME for every session, always stopped on exit.
# KMS and S3: moto (scripts/moto.sh), which has no DynamoDB role any more. It is ours to stop if
# the pid file names a different process after `moto.sh start` than before (checked on exit, so
# a server left half-started by an interrupt is stopped too); one already running is reused and
# left running.
#
# Every client finds its service through the SDK's own variables: AWS_ENDPOINT_URL_DYNAMODB,
# AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_S3, with
# AWS_ENDPOINT_URL (moto) as the fallback.
#
# --own-session starts both in sessions of their own, so Ctrl-C in the terminal reaches the
# caller's foreground program (which may still need them while it stops) but not them; the
# EXIT trap stops them afterwards.

# shellcheck disable=SC2317 # run by the EXIT trap
_local_aws_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  scripts/dynamodb-local.sh stop "$_local_aws_name" || true
  local moto_pid_now
  moto_pid_now="$(cat .local/moto.pid 2>/dev/null || true)"
  if [[ -n "$moto_pid_now" && "$moto_pid_now" != "$_moto_pid_before" ]]; then
    scripts/moto.sh stop || true
  fi
  exit "$rc"
}

local_aws_session() {
  _local_aws_name="$1"
  _moto_pid_before="$(cat .local/moto.pid 2>/dev/null || true)"
  trap _local_aws_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ "${2:-}" == --own-session ]] && command -v setsid >/dev/null 2>&1; then
    setsid --wait scripts/moto.sh start >/dev/null
  else
    scripts/moto.sh start >/dev/null
  fi
  # dynamodb-local.sh always starts the engine in a session of its own.
  scripts/dynamodb-local.sh start "$_local_aws_name" >/dev/null
  local moto_url dynamodb_url
  moto_url="$(cat .local/moto.url)"
  dynamodb_url="$(cat ".local/dynamodb-local-$_local_aws_name.url")"
  export AWS_ENDPOINT_URL="$moto_url"
  export AWS_ENDPOINT_URL_KMS="$moto_url"
  export AWS_ENDPOINT_URL_S3="$moto_url"
  export AWS_ENDPOINT_URL_DYNAMODB="$dynamodb_url"
  export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="$dynamodb_url"
  # Dummy credentials: both engines accept any, and real ones have no business here.
  export AWS_ACCESS_KEY_ID=test
  export AWS_SECRET_ACCESS_KEY=test
  unset AWS_SESSION_TOKEN AWS_PROFILE
  export AWS_REGION=us-east-1
  export AWS_DEFAULT_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
  echo "DynamoDB + Streams: DynamoDB Local at $dynamodb_url (log: .local/dynamodb-local-$_local_aws_name.log)" >&2
  echo "KMS + S3: moto at $moto_url (log: .local/moto.log)" >&2
}
