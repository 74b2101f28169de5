"""Pricing hook: turns a built record into (cost_usd, price_source). Runs on the background loop."""

from __future__ import annotations

from ._record import TokenUsageRecord

__all__ = ["price_record"]


def price_record(record: TokenUsageRecord) -> tuple[float | None, str | None]:
    """Unknown price: ``(None, None)``. Replaced by the genai-prices based pricer (issue 7)."""
    return None, None
