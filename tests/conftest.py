"""Root fixtures. Two things must happen before anything else imports httpx:

1. ``httpx2.alias_httpx()``: both SDKs speak httpx2; aliasing makes ``import httpx`` (and so
   respx) see the same classes, so respx can fake their transport.
2. Strict mode: an internal error of ours re-raises, so bugs surface in our own tests.
"""

from __future__ import annotations

import httpx2

httpx2.alias_httpx()

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

import ai_tokentrace  # noqa: E402
from ai_tokentrace import _internal  # noqa: E402
from ai_tokentrace.testing import InMemoryTokenUsageService  # noqa: E402

_internal.set_strict(True)


@pytest.fixture(autouse=True)
def _fresh_pipeline() -> Iterator[None]:
    """Each test starts with no configured pipeline and leaves none behind."""
    from ai_tokentrace import _capture, _pipeline

    yield
    p = _pipeline._current
    _pipeline._current = None
    _capture.inject_stream_usage = None  # unbound with it, as before any pipeline
    if p is not None:
        p.shutdown(timeout=2.0)


@pytest.fixture
def lenient() -> Iterator[None]:
    """Internal errors logged as a user's program logs them (not re-raised), each place's first
    one at ERROR again."""
    _internal.set_strict(False)
    _internal._seen.clear()
    yield
    _internal.set_strict(True)


@pytest.fixture
def memory() -> Iterator[InMemoryTokenUsageService]:
    """A fresh pipeline into an in-memory service; read ``memory.records`` after ``flush()``."""
    service = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=service)
    yield service
    ai_tokentrace.flush(10.0)


@pytest.fixture
def records(memory: InMemoryTokenUsageService):  # type: ignore[no-untyped-def]
    """Call it to flush and get the records so far: ``records()``."""

    def read() -> list[ai_tokentrace.TokenUsageRecord]:
        assert ai_tokentrace.flush(10.0), "flush did not complete"
        return list(memory.records)

    return read
