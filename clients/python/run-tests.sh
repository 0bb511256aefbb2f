#!/usr/bin/env bash
# The Python client's tests against the real daemon built from this tree.
# CI calls it; it exits non-zero on any failure, and when pytest finds no
# tests (its exit 5), since a suite that silently vanished proves nothing.
# About 40 s; every test is bounded (tests/conftest.py), and the whole run
# is bounded here too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export PATH="$PATH:/usr/local/go/bin"
py=/usr/bin/python3   # Debian's, with python3-pytest; not a pyenv one

"$py" -m pytest --version >/dev/null 2>&1 || { echo "run-tests.sh: $py has no pytest (apt-get install python3-pytest)" >&2; exit 1; }

tmp="$(mktemp -d /tmp/corral-py.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
echo "== building corral for the Python tests"
(cd "$repo" && GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -o "$tmp/corral" ./cmd/corral)

if "$py" -m mypy --version >/dev/null 2>&1; then
  echo "== mypy --strict (Python 3.9 rules; linux, win32, darwin)"
  for plat in linux win32 darwin; do
    MYPYPATH="$here/src" "$py" -m mypy --strict --python-version 3.9 --platform "$plat" --cache-dir "$tmp/mypy" \
      "$here/src/corral" "$repo/examples/python-webui/webui_manager.py" "$repo/examples/python-webui/fake_webui.py"
  done
else
  echo "== mypy is not installed (apt-get install python3-mypy): type check skipped"
fi

echo "== Python client tests ($("$py" --version))"
rc=0
# No bytecode or cache files in the tree; the tests use the binary just built.
CORRAL_BIN="$tmp/corral" PYTHONDONTWRITEBYTECODE=1 \
  timeout -k 10 150 "$py" -m pytest -q -rs -p no:cacheprovider --rootdir "$here" "$here/tests" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
