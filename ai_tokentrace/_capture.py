"""The hot path: what an integration hands off per call, and how it becomes a record later.

Two ways in, both on the caller's thread:

* :data:`hand_off` takes a *snapshot*: a plain tuple ``(builder, *fields)`` that the adapter
  fills with the few raw values it read off the response (token counts, ids, clock readings).
  The background loop calls ``builder(snapshot)`` to get a :class:`Capture`. This is the path
  of a call outside any scope with no budget watching: one tuple and one queue append. It
  keeps no SDK object alive: measured on a real SDK call, holding the response (or even just
  its pydantic ``usage``) until the loop gets to it costs the caller more than everything else
  ours does, because the next call can no longer reuse that memory while it is still warm; and
  with the collector on, SDK objects waiting a batch of calls in the queue age into its old
  generations and make full collections more frequent (``bench/overhead.py``'s collector
  figures), so a snapshot holds counts, strings and dicts of them.
* :func:`emit` builds the :class:`Capture` at once (scopes and budgets need it right away);
  :func:`submit_snapshot` chooses between the two for a snapshot made in a given scope.

Extraction, normalisation, pricing and export all happen on the background loop (or lazily,
when a scope's totals are read).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from . import _scope
from ._internal import _suppressed, internal_error, suppressed
from ._pricing import price_record
from ._record import Counts, RawUsage, TokenUsageRecord, make_record, normalize, with_price
from ._scope import Labels, Scope, current_scope
from ._scope import _current as _current_scope

_NO_LABELS = Labels()

__all__ = [
    "Capture",
    "Extraction",
    "Extractor",
    "LazyCapture",
    "as_capture",
    "before_call",
    "build_records",
    "capture_listeners",
    "emit",
    "hand_off",
    "may_snapshot",
    "nonempty_str",
    "now",
    "pre_call_guards",
    "scope_or_default",
    "settles_now",
    "snapshot_capture",
    "stable_id",
    "submit_scoped",
    "submit_snapshot",
    "wall_at",
    "watching_unscoped",
]

# What an adapter's pure extractor returns: usage (None when the payload has none), the model the
# provider says answered, and the provider's response id.
Extraction = tuple["RawUsage | None", "str | None", "str | None"]
Extractor = Callable[[Any], Extraction]


# Record ids: a random per-process prefix (renewed in a forked child) and a counter. The hot
# path takes only the counter's next value; the id string is formatted when the record is built.
def _new_prefix() -> str:
    raw = os.urandom(8).hex()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-"


_prefix = _new_prefix()
_counter = itertools.count()
_build_lock = threading.Lock()


def format_record_id(prefix: str, n: int) -> str:
    """UUID-shaped (8-4-4-4-12 hex), unique across processes and forks."""
    return f"{prefix}{n >> 48 & 0xFFFF:04x}-{n & 0xFFFFFFFFFFFF:012x}"


def stable_id(key: str) -> tuple[str, int]:
    """``(prefix, seq)`` giving a record id derived from ``key`` alone: usage reported outside
    a call (a batch's, counted when a retrieve finds it done) gets the same id in every
    process that counts it, so stores that key on ``record_id`` keep it once."""
    h = hashlib.sha256(key.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-", int(h[16:20], 16) << 48 | int(h[20:32], 16)


def _renew_prefix() -> None:
    global _prefix, _counter, _build_lock
    _prefix = _new_prefix()
    _counter = itertools.count()
    _build_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_prefix)

# Indirections so tests (and ai_tokentrace.testing) can fix the clock.
wall_clock: Callable[[], float] = time.time
perf_clock: Callable[[], float] = time.perf_counter


def now() -> float:
    """Monotonic seconds, for latency; integrations call this when a call starts."""
    return perf_clock()


def wall_at(perf: float) -> float:
    """The wall-clock time of an earlier ``perf_clock()`` reading (snapshots carry only that)."""
    return wall_clock() - (perf_clock() - perf)


def settles_now(scope: Scope | None) -> bool:
    """Whether a budget must settle a call made in ``scope`` as it happens, so its Capture is
    built at once: a process-wide budget watches every call, any budget a call in a scope."""
    return watching_unscoped or (scope is not None and bool(capture_listeners))


def may_snapshot() -> bool:
    """True when a call may be handed off as a snapshot rather than a Capture (queued, or
    shared with its scope): we are not recording our own traffic and no budget must settle it
    now (:func:`settles_now`). (The adapters' per-request hooks, OpenAI's ``_fast_options``,
    ``_direct_request`` and ``_fast_stream_begin`` and Gemini's ``_direct_generate`` and
    ``_adirect_generate``, inline these checks; tests keep them in step.)"""
    return not (_suppressed.get() or settles_now(_current_scope.get()))


# Hooks for budgets: guards run before a call is sent (and may refuse it by raising);
# listeners see every capture as it is emitted.
pre_call_guards: list[Callable[[str, str | None, Scope | None], None]] = []
capture_listeners: list[Callable[[Capture], None]] = []
# True while a hook needs the calls made outside any scope too (a process-wide budget). Budgets
# on scopes only see calls inside them, which never take the snapshot path, so a Budget used
# once in a scope leaves every other call on the fast path.
watching_unscoped = False

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
        "prefix",
        "provider",
        "request_id",
        "response_id",
        "response_model",
        "scope",
        "seq",
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
        self.seq = next(_counter)
        self.prefix = _prefix
        self._record: TokenUsageRecord | None = None

    @property
    def record_id(self) -> str:
        return format_record_id(self.prefix, self.seq)

    def record(self) -> TokenUsageRecord:
        """The finished record, built once (by the background loop, or by whoever asks first)."""
        rec = self._record
        if rec is None:
            with _build_lock:
                rec = _settle(self)
        return rec


def nonempty_str(value: Any) -> str | None:
    """``value`` when it is a non-empty string (an id or a model name), else None."""
    return value if isinstance(value, str) and value else None


def snapshot_capture(
    provider: str,
    operation: str,
    model: str | None,
    usage: object,
    extract: Extractor,
    started: float,
    ended: float,
    scope: Scope | None,
    streamed: bool,
    status: str,
    response_model: str | None,
    response_id: str | None,
    request_id: str | None,
    error_type: str | None,
) -> Capture:
    """The Capture a snapshot's builder returns: ``usage`` is what the adapter read off the
    response (None: it had none), ``ended`` a ``perf_clock()`` reading. Positional all
    through: keyword pass-through cost a scoped call 0.7 us warm."""
    return Capture(
        provider,
        operation,
        model,
        usage,
        extract,
        started,
        ended,
        wall_at(ended),
        scope,
        streamed,
        status,
        response_model,
        response_id,
        request_id,
        error_type,
        usage is not None,
    )


_lazy_lock = threading.Lock()


class LazyCapture:
    """A snapshot that a scope holds as well as the queue: built into its one Capture by
    whoever needs it first (the background loop, or a read of the scope's totals)."""

    __slots__ = ("_capture", "_item")

    def __init__(self, item: tuple[Any, ...]) -> None:
        self._item: tuple[Any, ...] | None = item
        self._capture: Capture | None = None

    def capture(self) -> Capture:
        c = self._capture
        if c is None:
            with _lazy_lock:
                c = self._capture
                if c is None:
                    item = self._item
                    assert item is not None
                    c = self._capture = item[0](item)
                    self._item = None
        return c

    def record(self) -> TokenUsageRecord:
        return self.capture().record()


def as_capture(item: Capture | LazyCapture | tuple[Any, ...]) -> Capture:
    """A queued item as a :class:`Capture` (a hot-path snapshot is built by its builder)."""
    if type(item) is tuple:
        built: Capture = item[0](item)
        return built
    if type(item) is LazyCapture:
        return item.capture()
    assert isinstance(item, Capture)
    return item


def build_records(captures: list[Any]) -> tuple[list[TokenUsageRecord], int]:
    """Build a batch under one lock acquisition (the pipeline's path); returns (records, failures).

    A capture whose build raises is skipped and counted; its exception is left for the caller
    to report once.
    """
    records: list[TokenUsageRecord] = []
    failed = 0
    with _build_lock:
        for c in captures:
            try:
                records.append(_settle(as_capture(c)))
            except Exception:
                failed += 1
    return records, failed


def _settle(c: Capture) -> TokenUsageRecord:
    """Build and memoise ``c``'s record; the caller holds ``_build_lock``."""
    rec = c._record
    if rec is None:
        rec = c._record = _build(c)
        c.payload = None  # the SDK object is no longer needed
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
    labels = scope.labels if scope is not None else _NO_LABELS
    rec = make_record(
        (
            format_record_id(c.prefix, c.seq),
            datetime.fromtimestamp(c.wall, tz=timezone.utc),
            c.provider,
            c.operation,
            c.model,
            response_model,
            response_id,
            counts.input_tokens,
            counts.output_tokens,
            counts.total_tokens,
            counts.cached_input_tokens,
            counts.reasoning_tokens,
            c.streamed,
            c.status,
            round((c.ended - c.started) * 1000.0, 3),
            None,  # cost_usd, set below
            labels.name,
            labels.user_id,
            labels.session_id,
            labels.tags,
            labels.metadata,
            counts.provider_total_tokens,
            c.usage_available and raw is not None,
            dict(raw.details) if raw is not None and raw.details else {},
            c.request_id,
            c.error_type,
            None,  # price_source, set below
        )
    )
    cost, source = price_record(rec)
    if cost is not None or source is not None:
        rec = with_price(rec, cost, source)
    return rec


def _hand_off_first(item: Capture | tuple[Any, ...]) -> None:
    # The pipeline (and asyncio with it) is imported on the first record, not at import time;
    # from then on the active pipeline binds its own ``submit`` here (see ``_pipeline._install``).
    from ._pipeline import current

    current().submit(item)


# Queue one Capture or snapshot on the active pipeline. Adapters call it as ``_capture.hand_off``
# (an attribute read each time: the pipeline rebinds it when it is replaced).
hand_off: Callable[[Any], None] = _hand_off_first
# The active pipeline's ``inject_stream_usage``, bound with ``hand_off`` so a stream's begin reads
# a global rather than calling for the pipeline (None: no pipeline yet; asking for it loads the
# settings).
inject_stream_usage: bool | None = None


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
    key: str | None = None,
    at: float | None = None,
    took: float | None = None,
) -> Capture | None:
    """Hand one finished call off. Never raises (except in strict mode, for our own bugs).

    ``scope`` defaults to the scope active now; streams pass the one active at request time.
    Usage reported apart from its call (a batch's) passes ``key`` (see :func:`stable_id`),
    ``at`` (when it was incurred, epoch seconds) and ``took`` (its run time, seconds).
    Whether a call is our own traffic was decided where it began (:func:`may_snapshot` and
    the adapters' hooks): a stream begun by the caller is counted wherever it ends, even in
    a suppressed context (closed by our loop, or finalised there by the collector).
    """
    try:
        if scope is ...:
            scope = _current_scope.get()
        scope = scope_or_default(scope)
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
        if key is not None:
            c.prefix, c.seq = stable_id(key)
        if at is not None:
            c.wall = at
        if took is not None:
            c.started = c.ended - took
        _register(c)
        return c
    except Exception:
        internal_error("emit")
        return None


def _register(c: Capture) -> None:
    """A Capture built on the caller's thread: its scopes, the budget listeners, the queue."""
    scope = c.scope
    if scope is not None:
        scope._add(c)
    for listener in capture_listeners:
        listener(c)
    hand_off(c)


def scope_or_default(scope: Scope | None) -> Scope | None:
    """The scope a capture is labelled with: ``scope``, else the per-process default labels."""
    return scope if scope is not None else _scope.default_scope


def submit_snapshot(item: tuple[Any, ...], scope: Scope | None) -> None:
    """Hand off a snapshot ``(builder, *fields)`` for a call made in ``scope`` (None: none).

    The builder's Capture must carry :func:`scope_or_default` of ``scope``. Outside any scope
    the tuple is queued as it is and built on the loop; in a scope the scope shares it (see
    :func:`submit_scoped`). Only while a budget watches is the Capture built now, because the
    budgets settle spend from it at once. As with :func:`emit`, suppression was decided where
    the call began. Never raises (except in strict mode).

    A stream's end writes the outside-a-scope case out, a frame less (OpenAI's
    ``finish_stream``, Gemini's ``_finish_stream``): a change to this dispatch goes there too
    (``tests/test_budget.py`` sets a budget mid-stream for each).
    """
    try:
        if watching_unscoped or (scope is not None and capture_listeners):  # settles_now
            _register(item[0](item))
        elif scope is None:
            hand_off(item)
        else:
            submit_scoped(item, scope)
    except Exception:
        internal_error("hand-off")


def submit_scoped(item: tuple[Any, ...], scope: Scope) -> None:
    """A snapshot made in ``scope`` while no budget watches: the scope (and each one around
    it) and the queue share one :class:`LazyCapture`, so the caller's thread builds nothing."""
    lazy = LazyCapture(item)
    scope._add(lazy)
    hand_off(lazy)
