"""Benchmark: the cost of pricing one record after its model's first lookup (target ~1-2 us).

.venv/bin/python bench/pricing.py [--n 200000]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from ai_tokentrace._pricing import price_record
from ai_tokentrace._record import TokenUsageRecord

CASES = [
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 0),
    ("openai", "o3", "o3-2025-04-16", 512),  # date-dependent prices in the table
    ("gcp.gemini", "gemini-2.5-pro", "gemini-2.5-pro", 0),  # tiered prices
    ("openai", "acme-unknown", None, 0),  # unknown model: cached miss
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    when = datetime(2026, 11, 1, tzinfo=timezone.utc)
    t0 = time.perf_counter()
    price_record(TokenUsageRecord("w", when, "openai", "chat.completions", "gpt-4o"))
    print(f"first lookup (imports genai-prices): {(time.perf_counter() - t0) * 1e3:.0f} ms")
    for provider, model, response_model, reasoning in CASES:
        rec = TokenUsageRecord(
            "r",
            when,
            provider,
            "chat.completions",
            model,
            response_model=response_model,
            input_tokens=1200,
            output_tokens=800,
            total_tokens=2000,
            cached_input_tokens=512,
            reasoning_tokens=reasoning,
        )
        price_record(rec)
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(args.n):
                price_record(rec)
            best = min(best, (time.perf_counter() - t) / args.n)
        print(f"{provider:>11} {model:<16} {best * 1e6:6.2f} us/record  -> {price_record(rec)[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
