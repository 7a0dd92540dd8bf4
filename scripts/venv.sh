#!/usr/bin/env bash
# Create the project-local Python virtualenv .venv/ and install the local AWS
# emulator's requirements (tools/moto/requirements.txt) into it.
#
#   scripts/venv.sh                      .venv/ from tools/moto/requirements.txt
#   scripts/venv.sh DIR REQUIREMENTS     another project-local venv (paths relative to the
#                                        repo root), e.g. .venv-tools tools/template/requirements.txt
#
# Installs with `pip install --require-hashes`: every requirements file lists each package
# of its closure with its sha256 hashes.
#
# Idempotent and fast: does nothing when the venv exists and was installed from
# the current requirements file (a stamp in the venv holds the sha256 of that file
# and the interpreter version). Recreates the venv when its Python is broken.
#
# Env: PYTHON  interpreter used to create the venv (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/${1:-.venv}"
REQS="$ROOT/${2:-tools/moto/requirements.txt}"
STAMP="$VENV/.requirements.stamp"
NAME="$(basename "$VENV")"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "venv.sh: '$PYTHON' not found; install Python 3 (3.9+) with the venv module" >&2
  exit 1
fi

want_stamp() {
  local reqs_hash py_version
  reqs_hash="$(sha256sum "$REQS" | cut -d' ' -f1)"
  py_version="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
  printf '%s python-%s\n' "$reqs_hash" "$py_version"
}

up_to_date() {
  [[ -f "$STAMP" && -x "$VENV/bin/python" ]] &&
    [[ "$(cat "$STAMP")" == "$(want_stamp)" ]] &&
    "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}

# Fast path, no lock needed.
if up_to_date; then
  exit 0
fi

# Serialise concurrent installs (e.g. two shells running the tests at once).
mkdir -p "$ROOT/.local"
if command -v flock >/dev/null 2>&1; then
  # One lock per venv (.venv keeps its historical name venv.lock).
  exec 9>"$ROOT/.local/${NAME#.}.lock"
  flock 9
  if up_to_date; then
    exit 0
  fi
fi

if [[ -d "$VENV" ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "venv.sh: $VENV is broken; recreating it" >&2
  rm -rf "$VENV"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "venv.sh: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi

echo "venv.sh: installing ${REQS#"$ROOT"/} into $NAME (first run or requirements changed)" >&2
rm -f "$STAMP"
# Every requirements file pins each package with its sha256 hashes; --require-hashes refuses
# an archive that does not match (and any package the file does not pin).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --require-hashes -r "$REQS"
want_stamp >"$STAMP"
echo "venv.sh: done" >&2
