"""Cloud services benchmark (issue 6): records/s into Firestore and Pub/Sub through the pipeline.

Runs against Google's emulators: the ones named by ``FIRESTORE_EMULATOR_HOST`` /
``PUBSUB_EMULATOR_HOST``, or fresh ones it starts itself (and stops). Each figure times
``emit()`` of N records on the caller's thread through ``flush()``: record building, batching,
the service's writes, and the acknowledgement of every write. Figures are printed, never
asserted; every delivered count is checked against the destination.

Run: ``.venv/bin/python bench/cloud.py [--firestore N] [--pubsub N] [--rounds R]``.
Bars (issue 6): >= 5,000 records/s into Firestore, >= 10,000 into Pub/Sub, on the emulators.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ai_tokentrace
from ai_tokentrace._capture import emit
from ai_tokentrace._record import RawUsage
from ai_tokentrace._scope import trace_tokens
from ai_tokentrace.services import (
    FirestoreTokenUsageService,
    PubSubTokenUsageService,
    TokenUsageService,
)
from ai_tokentrace.testing import InMemoryTokenUsageService
from tests.emulators import PROJECT, Emulator, missing_reason, ready

BARS = {"firestore": 5_000, "pubsub": 10_000}


def extract(payload: int) -> tuple[RawUsage, str, str]:
    return RawUsage(prompt=payload, completion=42, cached=3), "gpt-4o-mini-2024-07-18", "r"


@contextlib.contextmanager
def emulator(kind: str, var: str) -> Iterator[str]:
    preset = os.environ.get(var, "").strip()
    if preset and ready(preset):
        yield preset
        return
    reason = missing_reason(kind)
    if reason:
        raise SystemExit(reason)
    # Full JIT for steady-state speed (the tests' emulators trade it for a faster start).
    os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:+UseParallelGC -Xmx1g")
    emu = Emulator(kind).start()
    os.environ[var] = emu.host
    try:
        yield emu.host
    finally:
        emu.close()


def run_once(service: TokenUsageService, n: int, batch_size: int) -> float:
    """Records/s from the first emit() to the end of flush()."""
    ai_tokentrace.configure(
        service=service, batch_size=batch_size, max_queue_size=n + 1, export_timeout=120.0
    )
    before = ai_tokentrace.stats()["exported"]
    with trace_tokens("bench", user_id="u1"):
        start = time.perf_counter()
        for i in range(n):
            emit("openai", "chat.completions", "gpt-4o-mini", 100 + i % 50, extract, start)
        ok = ai_tokentrace.flush(600.0)
        elapsed = time.perf_counter() - start
    delivered = ai_tokentrace.stats()["exported"] - before
    if not ok or delivered != n:
        raise SystemExit(f"{service!r}: only {delivered}/{n} delivered ({ai_tokentrace.stats()})")
    return n / elapsed


def measure(
    label: str,
    make: Callable[[], TokenUsageService],
    n: int,
    batch_size: int,
    rounds: int,
    check: Callable[[TokenUsageService], int] | None = None,
    cleanup: Callable[[TokenUsageService], None] | None = None,
) -> float:
    rates = []
    for _ in range(rounds):
        service = make()
        rates.append(run_once(service, n, batch_size))
        if check is not None:
            stored = check(service)
            if stored != n:
                raise SystemExit(f"{label}: {stored} stored, {n} expected")
        if cleanup is not None:
            cleanup(service)  # the emulators keep everything in their JVM heap
    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    median = statistics.median(rates)
    print(
        f"  {label:<46} {median:>9,.0f} rec/s  (rounds: "
        + ", ".join(f"{r:,.0f}" for r in rates)
        + ")"
    )
    return median


def bench_firestore(n: int, rounds: int) -> float:
    from google.cloud import firestore

    admin = firestore.Client(project=PROJECT)
    admin.collection("warmup").document("w").set({"ok": True})

    def count(service: TokenUsageService) -> int:
        assert isinstance(service, FirestoreTokenUsageService)
        result = admin.collection(service.collection).count().get()
        return int(result[0][0].value)

    def wipe(service: TokenUsageService | None = None) -> None:
        host = os.environ["FIRESTORE_EMULATOR_HOST"]
        url = f"http://{host}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=60).close()

    def make(**kw: Any) -> Callable[[], TokenUsageService]:
        return lambda: FirestoreTokenUsageService(
            "bench" + uuid.uuid4().hex[:8], project=PROJECT, **kw
        )

    run_once(make()(), 5_000, 2000)  # warm-up: the emulator's JIT, not counted
    wipe()
    print(f"Firestore emulator, {n:,} records per round:")
    best = measure(
        "batch_size=500 (one commit per lane batch)", make(), n, 500, rounds, count, wipe
    )
    best = max(
        best,
        measure(
            "batch_size=2000 (4 commits of 500 in parallel)", make(), n, 2000, rounds, count, wipe
        ),
    )
    measure(
        "batch_size=2000, rollups=True (sequential)", make(rollups=True), n, 2000, rounds, count
    )
    return best


def bench_pubsub(n: int, rounds: int) -> float:
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()

    def make() -> TokenUsageService:
        name = "bench" + uuid.uuid4().hex[:8]
        topic = publisher.create_topic(name=f"projects/{PROJECT}/topics/{name}").name
        # A subscription, so that the emulator stores every message as a real topic would.
        subscriber.create_subscription(name=f"projects/{PROJECT}/subscriptions/{name}", topic=topic)
        return PubSubTokenUsageService(topic)

    def drop(service: TokenUsageService) -> None:
        assert isinstance(service, PubSubTokenUsageService)
        name = service.topic.rsplit("/", 1)[-1]
        subscriber.delete_subscription(subscription=f"projects/{PROJECT}/subscriptions/{name}")

    warm = make()
    run_once(warm, 10_000, 5000)  # warm-up: the emulator's JIT, not counted
    drop(warm)
    print(f"Pub/Sub emulator, {n:,} records per round:")
    best = measure(
        "batch_size=1000 (one publish request per batch)", make, n, 1000, rounds, cleanup=drop
    )
    return max(
        best,
        measure(
            "batch_size=5000 (5 requests of 1000 in parallel)", make, n, 5000, rounds, cleanup=drop
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--firestore", type=int, default=20_000, help="records per round")
    parser.add_argument("--pubsub", type=int, default=50_000, help="records per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {}
    with emulator("firestore", "FIRESTORE_EMULATOR_HOST"):
        results["firestore"] = bench_firestore(args.firestore, args.rounds)
    with emulator("pubsub", "PUBSUB_EMULATOR_HOST"):
        results["pubsub"] = bench_pubsub(args.pubsub, args.rounds)
    print()
    for kind, rate in results.items():
        verdict = "meets" if rate >= BARS[kind] else "BELOW"
        print(f"{kind:<10} best median {rate:>9,.0f} rec/s: {verdict} the bar of {BARS[kind]:,}")
    ai_tokentrace.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
