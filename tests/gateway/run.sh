#!/usr/bin/env bash
# run.sh TEST.py — runs one gateway test (tests/gateway/TEST.py) with the Python packages of
# requirements.txt, from a venv cached under the build tree ($HIRED_BUILD_DIR/tests/gateway-venv),
# made on first use (python3 -m venv + pip from PyPI) and remade when requirements.txt changes.
# Concurrent runs (ctest -j) share it through a lock. Exit 77 (skipped, "Not Run" in ctest)
# when the venv cannot be made: no python3-venv, or PyPI unreachable; the reason is printed.
# Environment (from ctest): HIRED_BUILD_DIR, HIRED_FIXTURES; the test's own exit status is
# returned as it is.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${HIRED_BUILD_DIR:?HIRED_BUILD_DIR is not set (run through ctest)}
venv=$build/tests/gateway-venv
req=$here/requirements.txt
mkdir -p "$build/tests"
exec 9> "$build/tests/gateway-venv.lock"
flock 9
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" > "$build/tests/gateway-venv.log" 2>&1; then
    cat "$build/tests/gateway-venv.log" >&2
    echo "run.sh: cannot make a Python venv (Debian package python3-venv): skipped" >&2
    exit 77
  fi
  if ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$req" >> "$build/tests/gateway-venv.log" 2>&1; then
    tail -5 "$build/tests/gateway-venv.log" >&2
    echo "run.sh: pip could not install $req from PyPI (is PyPI reachable?): skipped" >&2
    rm -rf "$venv"
    exit 77
  fi
  cp "$req" "$venv/requirements.txt"
fi
flock -u 9
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$here/$1"
