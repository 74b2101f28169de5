#!/usr/bin/env bash
# poe test:integration: start the Firestore and Pub/Sub emulators with honcho (Procfile.dev,
# .env.dev), wait until both answer, run the integration tests against them, and always stop
# the emulators, whether the tests pass, fail or are interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
HONCHO=$(dirname "$PY")/honcho
[ -x "$HONCHO" ] || HONCHO=$(command -v honcho) || {
    echo "honcho is not installed: uv pip install --group integration (or pip install honcho)" >&2
    exit 2
}
command -v gcloud >/dev/null || {
    echo "gcloud is not installed; see the README section 'Running the integration suite'" >&2
    exit 2
}

set -a
# shellcheck disable=SC1091
. ./.env.dev
set +a

probe() { "$PY" -c 'import sys; from tests.emulators import ready; sys.exit(0 if ready(sys.argv[1]) else 1)' "$1"; }
for host in "$FIRESTORE_EMULATOR_HOST" "$PUBSUB_EMULATOR_HOST"; do
    if probe "$host"; then
        echo "an emulator already answers on $host: stop it or change .env.dev" >&2
        exit 2
    fi
done

LOG=${EMULATOR_LOG:-$(mktemp -t ai-tokentrace-emulators.XXXXXX)}
echo "starting the emulators with honcho (log: $LOG)"
"$HONCHO" -f Procfile.dev -e .env.dev start >"$LOG" 2>&1 &
HONCHO_PID=$!

stop_emulators() {
    status=$?
    trap - EXIT INT TERM
    if kill -0 "$HONCHO_PID" 2>/dev/null; then
        echo "stopping the emulators"
        kill -TERM "$HONCHO_PID" 2>/dev/null || true  # honcho stops each process group
        for _ in $(seq 1 150); do
            kill -0 "$HONCHO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$HONCHO_PID" 2>/dev/null || true
    fi
    wait "$HONCHO_PID" 2>/dev/null || true
    for host in "$FIRESTORE_EMULATOR_HOST" "$PUBSUB_EMULATOR_HOST"; do
        if probe "$host"; then
            echo "warning: an emulator still answers on $host (see $LOG)" >&2
        fi
    done
    exit "$status"
}
trap stop_emulators EXIT INT TERM

for host in "$FIRESTORE_EMULATOR_HOST" "$PUBSUB_EMULATOR_HOST"; do
    deadline=$((SECONDS + 120))
    until probe "$host"; do
        if ! kill -0 "$HONCHO_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "the emulator on $host did not start; the log:" >&2
            cat "$LOG" >&2
            exit 1
        fi
        sleep 0.2
    done
done
echo "emulators ready: Firestore $FIRESTORE_EMULATOR_HOST, Pub/Sub $PUBSUB_EMULATOR_HOST"

"$PY" -m pytest -m integration "$@"
