#!/usr/bin/env bash
# The integration suite against the last release of each older major line of the openai and
# google-genai SDKs, one venv per line (.venv-sdk-NAME), as `make test-oldest` does for the
# oldest. A line is a requirement file tests/sdk-lines/NAME.txt; httpx2 is in each, since the
# suite's conftest aliases httpx to it. Lines that failed are named at the end.
#
#   scripts/test-sdk-lines.sh                  # every file in tests/sdk-lines
#   scripts/test-sdk-lines.sh openai1-genai1   # one of them
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in tests/sdk-lines/*.txt; do
    names+=("$(basename "$f" .txt)")
  done
fi

failed=()
for name in "${names[@]}"; do
  req="tests/sdk-lines/$name.txt"
  venv=".venv-sdk-$name"
  if [ ! -f "$req" ]; then
    echo "test-sdk-lines: no $req" >&2
    failed+=("$name")
    continue
  fi
  echo "test-sdk-lines: $name ($(grep -v '^#' "$req" | xargs))"
  start=$SECONDS
  if ! { test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"; } \
    || ! "$venv/bin/python" -m pip install -q --upgrade uv \
    || ! "$venv/bin/uv" pip install -q --python "$venv/bin/python" -e . --group test -r "$req" \
    || ! "$venv/bin/python" -m pytest tests/integrations ${PYTEST_ARGS:-}; then
    failed+=("$name")
  fi
  echo "test-sdk-lines: $name took $((SECONDS - start)) s"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-sdk-lines: failed on ${failed[*]}" >&2
  exit 1
fi
