"""Helpers for tests, ours and users': an in-memory service, a capture context, a fixed clock.

Fake HTTP transports that answer like OpenAI and Gemini (for offline demos and tests through the
real SDK clients) live in :mod:`ai_tokentrace.testing.fake_openai` and
:mod:`ai_tokentrace.testing.fake_genai`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .. import _capture, _pipeline
from .._record import TokenUsageRecord
from ..services._base import TokenUsageService

__all__ = ["FixedClock", "InMemoryTokenUsageService", "capture_usage", "fixed_clock"]


class InMemoryTokenUsageService(TokenUsageService):
    """Keeps every record in :attr:`records` (call ``ai_tokentrace.flush()`` before reading)."""

    def __init__(self) -> None:
        self.records: list[TokenUsageRecord] = []
        self.closed = False
        self._lock = threading.Lock()

    async def aexport(self, record: TokenUsageRecord) -> None:
        with self._lock:
            self.records.append(record)

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        with self._lock:
            self.records.extend(records)

    async def aclose(self) -> None:
        self.closed = True

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def __repr__(self) -> str:
        return f"<InMemoryTokenUsageService records={len(self.records)}>"


@contextmanager
def capture_usage(**settings: Any) -> Iterator[InMemoryTokenUsageService]:
    """Route records to a fresh in-memory service for the block; flushed when it ends.

    >>> with capture_usage() as usage:
    ...     client.chat.completions.create(...)
    >>> usage.records[0].total_tokens
    """
    previous = _pipeline._current
    service = InMemoryTokenUsageService()
    _pipeline.configure(service=service, **settings)
    try:
        yield service
    finally:
        _pipeline.flush(10.0)
        if previous is not None and not previous._closed:
            _pipeline.configure(service=list(previous.services))


class FixedClock:
    """A clock that moves only when told: ``clock.advance(1.5)``."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.wall = start
        self.monotonic = 1000.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.wall += seconds
            self.monotonic += seconds

    def time(self) -> float:
        return self.wall

    def perf(self) -> float:
        return self.monotonic


@contextmanager
def fixed_clock(start: float = 1_767_225_600.0) -> Iterator[FixedClock]:
    """Freeze record timestamps and latencies: every call takes exactly what you ``advance``."""
    clock = FixedClock(start)
    saved = _capture.wall_clock, _capture.perf_clock
    _capture.wall_clock, _capture.perf_clock = clock.time, clock.perf
    try:
        yield clock
    finally:
        _capture.wall_clock, _capture.perf_clock = saved
