"""Pipeline benchmark (issue 2): throughput into JSONL, caller cost, memory, import time.

Run: ``make bench`` or ``.venv/bin/python bench/pipeline.py [--records N]``. Figures are printed,
never asserted; each comes with a reference measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ai_tokentrace
from ai_tokentrace import TokenUsageRecord, TokenUsageService
from ai_tokentrace._capture import emit
from ai_tokentrace._record import RawUsage


def extract(payload: int) -> tuple[RawUsage, str, str]:
    return RawUsage(prompt=payload, completion=42, total=payload + 42, cached=3), "gpt-4o-2024", "r"


class NullService(TokenUsageService):
    async def aexport(self, record: TokenUsageRecord) -> None:
        pass

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        pass


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_threads(target: Callable[[], None], threads: int) -> None:
    workers = [threading.Thread(target=target) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def throughput(n: int, threads: int, path: Path) -> float:
    """Records/s from emit() on producer threads to lines in the JSONL file, flush included."""
    if path.exists():
        path.unlink()
    ai_tokentrace.configure(
        service=ai_tokentrace.JsonlFileTokenUsageService(path),
        max_queue_size=n + 1,
        batch_size=1000,
    )
    per = n // threads

    def produce() -> None:
        for i in range(per):
            emit("openai", "chat.completions", "gpt-4o", i, extract, 0.0)

    start = time.perf_counter()
    _run_threads(produce, threads)
    assert ai_tokentrace.flush(300)
    elapsed = time.perf_counter() - start
    with path.open() as f:
        lines = sum(1 for _ in f)
    assert lines == per * threads, (lines, per * threads)
    return lines / elapsed


def per_call_us(fn: Callable[[], object], n: int, repeat: int = 15) -> float:
    """Median over ``repeat`` chunks of the mean cost of one call, in microseconds.

    The pipeline is flushed between chunks, outside the timing, so what is measured is the
    caller's own cost, not the background thread competing for the GIL.
    """
    samples = []
    for _ in range(repeat):
        ai_tokentrace.flush(300)
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    ai_tokentrace.flush(300)
    return statistics.median(samples)


def caller_costs(n: int) -> dict[str, float]:
    """What the caller's thread pays: export() of a built record, emit() of a call."""
    svc = NullService()
    ai_tokentrace.configure(service=svc, max_queue_size=10_000_000, batch_size=1000)
    rec = TokenUsageRecord(
        "id", __import__("datetime").datetime.now(), "openai", "chat.completions", "m"
    )
    null_logger = logging.getLogger("bench.null")
    null_logger.addHandler(logging.NullHandler())
    null_logger.propagate = False
    null_logger.setLevel(logging.INFO)
    reference = per_call_us(lambda: null_logger.info("x %s", 1), n)
    return {
        "export()": per_call_us(lambda: svc.export(rec), n),
        "emit() (what an integration calls)": per_call_us(
            lambda: emit("openai", "chat.completions", "gpt-4o", 1, extract, 0.0), n
        ),
        "reference: logger.info() to a NullHandler": reference,
    }


def _busy(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def starved(threads: int, calls: int, work_us: float) -> dict[str, float]:
    """Records kept when busy threads starve the loop of the GIL (default queue, a service
    that costs nothing): each thread spins ``work_us`` of Python, then makes one record.

    The loop gets about one turn at the GIL in as many as there are threads, each a switch
    interval long, so this is where a bounded queue fills: what it measures is the queue's
    high-water mark and what was dropped, against the calls made.
    """
    from ai_tokentrace import _pipeline, _pricing

    _pricing.warm()  # as instrument() and configure() do before the first record
    ai_tokentrace.configure(service=NullService())
    pipeline = _pipeline.current()
    q = pipeline._queue
    high = [0]

    def produce() -> None:
        for i in range(calls):
            _busy(work_us)
            emit("openai", "chat.completions", "gpt-4o", i, extract, 0.0)
            n = len(q)
            if n > high[0]:
                high[0] = n

    start = time.perf_counter()
    _run_threads(produce, threads)
    elapsed = time.perf_counter() - start
    ai_tokentrace.flush(300)
    stats = ai_tokentrace.stats()
    return {
        "rate": threads * calls / elapsed,
        "high": high[0],
        "dropped": stats["dropped"],
        "made": threads * calls,
        "bound": pipeline.settings.max_queue_size,
    }


def memory_growth(n: int) -> tuple[float, float]:
    ai_tokentrace.configure(service=NullService(), max_queue_size=100_000, batch_size=1000)
    for i in range(10_000):  # warm up: loop, worker, caches
        emit("openai", "chat.completions", "gpt-4o", i, extract, 0.0)
    ai_tokentrace.flush(300)
    gc.collect()
    before = rss_mb()
    chunk = 50_000
    for start in range(0, n, chunk):
        for i in range(chunk):
            emit("openai", "chat.completions", "gpt-4o", start + i, extract, 0.0)
        ai_tokentrace.flush(300)  # the producer outpacing a null sink is not what we measure
    gc.collect()
    return before, rss_mb()


def memory_in_child(n: int) -> tuple[float, float]:
    """memory_growth() in a fresh interpreter, so earlier runs leave nothing behind."""
    code = (
        "import sys; sys.path.insert(0, 'bench'); import pipeline; "
        f"b, a = pipeline.memory_growth({n}); print(b, a)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[-2]), float(out[-1])


def import_times(runs: int = 15) -> dict[str, float]:
    """Median wall time of `python -c "import X"` minus a bare interpreter start."""

    def t(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    bare = t("pass")
    return {
        "import ai_tokentrace": t("import ai_tokentrace") - bare,
        "reference: import logging, json, dataclasses": t("import logging, json, dataclasses")
        - bare,
        "reference: import asyncio": t("import asyncio") - bare,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000, help="records per throughput run")
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(
        f"ai-tokentrace pipeline benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cpu)"
    )
    costs = caller_costs(10_000)
    ref = costs["reference: logger.info() to a NullHandler"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        for threads in (1, 4):
            rate = throughput(args.records, threads, path)
            bar = "meets" if rate >= 100_000 else "below"
            per_record = 1e6 / rate
            print(
                f"  JSONL end to end, {threads} producer thread(s): {rate:>10,.0f} records/s "
                f"({bar} the 100,000/s bar; {per_record:.1f} us/record = "
                f"{per_record / ref:.1f}x a logger.info to a NullHandler)"
            )
    for name, us in costs.items():
        print(
            f"  caller cost of {name}: {us:6.2f} us  ({us / ref:4.2f}x a logger.info to a NullHandler)"
        )
    ours = logging.getLogger("ai_tokentrace")
    level = ours.level
    ours.setLevel(logging.ERROR)  # the drops are counted below, not warned about
    for threads, calls, work in (
        (8, 2000, 300.0),
        (32, 500, 300.0),
        (8, 4000, 50.0),
        (32, 1000, 50.0),
    ):
        s = starved(threads, calls, work)
        print(
            f"  {threads} busy threads, a record each {work:.0f} us of their Python: "
            f"{s['rate']:,.0f} records/s made, queue high-water {s['high']:,.0f} of "
            f"{s['bound']:,.0f}, "
            f"{s['dropped']:,.0f} of {s['made']:,.0f} dropped"
        )
    ours.setLevel(level)
    before, after = memory_in_child(args.memory_records)
    print(
        f"  RSS after {args.memory_records:,} records: {before:.1f} MB -> {after:.1f} MB "
        f"(growth {after - before:+.1f} MB; bar 20 MB)"
    )
    imports = import_times()
    ref = imports["reference: import logging, json, dataclasses"]
    for name, ms in imports.items():
        print(f"  {name}: {ms:6.1f} ms  ({ms / ref:4.2f}x the logging/json/dataclasses import)")
    ai_tokentrace.shutdown(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
