"""Benchmark: ``ai-tokentrace report`` over 1,000,000 generated records (bar: <= 5 s on one core).

Generates the file once (cached in the temp dir), then times ``aggregate`` + table rendering,
best of ``--rounds``, and prints seconds and records/s, wall and CPU.

    .venv/bin/python bench/report.py [--records 1000000] [--by model] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from ai_tokentrace import _report

BAR_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--by", default="model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file", help="use this JSONL file instead of generating one")
    args = parser.parse_args()
    path = args.file or os.path.join(
        tempfile.gettempdir(), f"ai-tokentrace-bench-{args.records}.jsonl"
    )
    if not os.path.exists(path):
        t0 = time.perf_counter()
        _report.generate_jsonl(path, args.records)
        print(f"generated {args.records:,} records in {time.perf_counter() - t0:.1f} s -> {path}")
    size_mb = os.path.getsize(path) / 1e6
    by = tuple(args.by.split(","))
    best_wall = best_cpu = float("inf")
    calls = 0
    for _ in range(args.rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        report = _report.aggregate([path], by=by, progress=False)
        _report.render_table(report)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
        calls = report.total.calls
    print(
        f"report --by {args.by}: {calls:,} records ({size_mb:.0f} MB) "
        f"best of {args.rounds}: wall {best_wall:.2f} s ({calls / best_wall:,.0f} records/s), "
        f"cpu {best_cpu:.2f} s; bar <= {BAR_SECONDS:.0f} s: "
        f"{'PASS' if best_cpu <= BAR_SECONDS else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
