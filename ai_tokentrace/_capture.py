"""The hot path: what an integration hands off per call, and how it becomes a record later.

An integration calls :func:`emit` on the caller's thread with the raw SDK object it saw. That
costs a few attribute stores and a queue append; extraction, normalisation, pricing and export
all happen on the background loop (or lazily, when a scope's totals are read).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._internal import internal_error, suppressed
from ._record import Counts, RawUsage, TokenUsageRecord, normalize
from ._scope import Scope, current_scope

if TYPE_CHECKING:
    from ._pricing import price_record as _price_record_t  # noqa: F401

__all__ = [
    "Capture",
    "Extraction",
    "Extractor",
    "before_call",
    "capture_listeners",
    "emit",
    "new_record_id",
    "now",
    "pre_call_guards",
]

# What an adapter's pure extractor returns: usage (None when the payload has none), the model the
# provider says answered, and the provider's response id.
Extraction = tuple["RawUsage | None", "str | None", "str | None"]
Extractor = Callable[[Any], Extraction]

# Process-unique id prefix, renewed in a forked child, plus a counter: unique and nearly free.
_prefix = os.urandom(8).hex()
_counter = itertools.count()


def new_record_id() -> str:
    n = next(_counter)
    return f"{_prefix[:8]}-{_prefix[8:12]}-{_prefix[12:16]}-{n >> 48 & 0xFFFF:04x}-{n & 0xFFFFFFFFFFFF:012x}"


def _renew_prefix() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_prefix)

# Indirections so tests (and ai_tokentrace.testing) can fix the clock.
wall_clock: Callable[[], float] = time.time
perf_clock: Callable[[], float] = time.perf_counter


def now() -> float:
    """Monotonic seconds, for latency; integrations call this when a call starts."""
    return perf_clock()


# Hooks for budgets: guards run before a call is sent (and may refuse it by raising);
# listeners see every capture as it is emitted.
pre_call_guards: list[Callable[[str, str | None, Scope | None], None]] = []
capture_listeners: list[Callable[[Capture], None]] = []

_ZERO = Counts(0, 0, 0, 0, 0, None)


class Capture:
    """One call as the integration saw it; :meth:`record` builds the record once, on demand."""

    __slots__ = (
        "_record",
        "ended",
        "error_type",
        "extract",
        "model",
        "operation",
        "payload",
        "provider",
        "record_id",
        "request_id",
        "response_id",
        "response_model",
        "scope",
        "started",
        "status",
        "streamed",
        "usage_available",
        "wall",
    )

    def __init__(
        self,
        provider: str,
        operation: str,
        model: str | None,
        payload: object,
        extract: Extractor,
        started: float,
        ended: float,
        wall: float,
        scope: Scope | None,
        streamed: bool = False,
        status: str = "ok",
        response_model: str | None = None,
        response_id: str | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
        usage_available: bool = True,
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.model = model
        self.payload = payload
        self.extract = extract
        self.started = started
        self.ended = ended
        self.wall = wall
        self.scope = scope
        self.streamed = streamed
        self.status = status
        self.response_model = response_model
        self.response_id = response_id
        self.request_id = request_id
        self.error_type = error_type
        self.usage_available = usage_available
        self.record_id = new_record_id()
        self._record: TokenUsageRecord | None = None

    def record(self) -> TokenUsageRecord:
        """The finished record. Deterministic, so a race between two builders is harmless."""
        rec = self._record
        if rec is None:
            rec = self._record = _build(self)
            self.payload = None  # the SDK object is no longer needed
        return rec


def _build(c: Capture) -> TokenUsageRecord:
    raw: RawUsage | None = None
    response_model = c.response_model
    response_id = c.response_id
    if c.payload is not None:
        raw, rm, rid = c.extract(c.payload)
        response_model = response_model or rm
        response_id = response_id or rid
    counts = normalize(raw) if raw is not None else _ZERO
    scope = c.scope
    labels = scope.labels if scope is not None else None
    rec = TokenUsageRecord(
        record_id=c.record_id,
        timestamp=datetime.fromtimestamp(c.wall, tz=timezone.utc),
        provider=c.provider,
        operation=c.operation,
        model=c.model,
        response_model=response_model,
        response_id=response_id,
        input_tokens=counts.input_tokens,
        output_tokens=counts.output_tokens,
        total_tokens=counts.total_tokens,
        cached_input_tokens=counts.cached_input_tokens,
        reasoning_tokens=counts.reasoning_tokens,
        streamed=c.streamed,
        status=c.status,
        latency_ms=round((c.ended - c.started) * 1000.0, 3),
        trace_name=labels.name if labels else None,
        user_id=labels.user_id if labels else None,
        session_id=labels.session_id if labels else None,
        tags=labels.tags if labels else (),
        metadata=labels.metadata if labels else {},
        provider_total_tokens=counts.provider_total_tokens,
        usage_available=c.usage_available and raw is not None,
        usage_details=dict(raw.details) if raw is not None and raw.details else {},
        request_id=c.request_id,
        error_type=c.error_type,
    )
    from ._pricing import price_record

    cost, source = price_record(rec)
    if cost is not None or source is not None:
        rec = rec.replace(cost_usd=cost, price_source=source)
    return rec


def _submit_first(capture: Capture) -> None:
    # The pipeline (and asyncio with it) is imported on the first record, not at import time.
    global _submit
    from ._pipeline import submit

    _submit = submit
    submit(capture)


_submit: Callable[[Capture], None] = _submit_first


def before_call(provider: str, model: str | None) -> None:
    """Run the pre-call guards (budgets). A guard's refusal propagates; its bugs do not."""
    if not pre_call_guards or suppressed():
        return
    scope = current_scope()
    for guard in list(pre_call_guards):
        guard(provider, model, scope)


def emit(
    provider: str,
    operation: str,
    model: str | None,
    payload: object,
    extract: Extractor,
    started: float,
    *,
    streamed: bool = False,
    status: str = "ok",
    response_model: str | None = None,
    response_id: str | None = None,
    request_id: str | None = None,
    error_type: str | None = None,
    usage_available: bool = True,
    scope: Any = ...,
) -> Capture | None:
    """Hand one finished call off. Never raises (except in strict mode, for our own bugs).

    ``scope`` defaults to the scope active now; streams pass the one active at request time.
    """
    try:
        if suppressed():
            return None
        if scope is ...:
            scope = current_scope()
        c = Capture(
            provider,
            operation,
            model,
            payload,
            extract,
            started,
            perf_clock(),
            wall_clock(),
            scope,
            streamed,
            status,
            response_model,
            response_id,
            request_id,
            error_type,
            usage_available,
        )
        if scope is not None:
            scope._add(c)
        for listener in capture_listeners:
            listener(c)
        _submit(c)
        return c
    except Exception:
        internal_error("emit")
        return None
