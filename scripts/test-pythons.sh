#!/usr/bin/env bash
# The whole suite on every other CPython this project supports that is on the machine, each in a
# venv of its own (.venv-3.X, set up by `make install`). On Python 3.10 the resolver takes the
# releases that still support it (google-genai 2.x, genai-prices 0.1), so this also runs the
# suite against them. A version not found here is named and skipped, not failed.
#
#   scripts/test-pythons.sh            # 3.10 3.12 3.13 3.14
#   scripts/test-pythons.sh 3.13       # one of them
set -uo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(3.10 3.12 3.13 3.14)

runs_as() {  # the interpreter runs and is that version (a pyenv shim of another may not)
  "$1" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$2')" \
    >/dev/null 2>&1
}

find_python() {  # on PATH, else pyenv's newest patch release of that version
  local v="$1" root p
  if p="$(command -v "python$v" 2>/dev/null)" && runs_as "$p" "$v"; then
    echo "$p"
    return
  fi
  root="${PYENV_ROOT:-$HOME/.pyenv}"
  for p in $(ls -d "$root/versions/$v".* 2>/dev/null | sort -V -r); do
    if [[ "$(basename "$p")" =~ ^$v\.[0-9]+$ ]] && runs_as "$p/bin/python" "$v"; then
      echo "$p/bin/python"
      return
    fi
  done
}

failed=()
for v in "${versions[@]}"; do
  py="$(find_python "$v")"
  if [ -z "$py" ]; then
    echo "test-pythons: no Python $v on this machine; skipped"
    continue
  fi
  echo "test-pythons: Python $v ($py)"
  if ! make --no-print-directory install VENV=".venv-$v" PYTHON="$py" \
    || ! ".venv-$v/bin/python" -m pytest -p no:cacheprovider ${PYTEST_ARGS:-}; then
    failed+=("$v")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-pythons: failed on Python ${failed[*]}" >&2
  exit 1
fi
