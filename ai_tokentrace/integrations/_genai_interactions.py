"""google-genai's Interactions API, decisions and voices: one record per HTTP round trip.

These calls do not go through ``Models``: the SDK sends them with a generated client of its own
(``google.genai._gaos``), on the same httpx client. The hooks sit on the generated
``Interactions.create`` / ``get``, ``Decisions.create`` and ``Voices.create`` and their async
twins. google-genai 1.x and the first 2.x releases generate another client
(``google.genai._interactions``, whose ``InteractionsResource`` is ``client.interactions``
itself): the same hooks sit on its ``create`` / ``get``, its streams and raw responses are
watched as the other's, and its first events (``interaction.start``, ``content.delta``, then
``interaction.complete`` with the usage, none before it) are read as today's. The public
``client.interactions.create`` subclasses the generated class and sends one request per hop of
its automatic continuation through ``super().create``, so each round trip is seen once and the
records add up to what was billed (the public result sums the hops' usage: counting it would
count them twice). The generated modules are patched when the SDK first imports them
(``PatchTarget.lazy``): importing them to patch them would cost every process half a second.

Buckets, as for ``generate_content``: input = ``total_input_tokens`` + ``total_tool_use_tokens``;
output = ``total_output_tokens`` + ``total_thought_tokens``; cached = ``total_cached_tokens``;
reasoning = thoughts; the per-modality lists and grounding tool counts kept in the details.

A stream's ``interaction.completed`` event carries its round trip's usage. A stream that ends
without it (broken off, failed, abandoned) is recorded ``partial`` with the last running total
it carried (``step.delta`` metadata, ``step.stop``, ``interaction.status_update``). The caller
keeps the SDK's own stream: only its event generator is swapped for one that looks at each
event as it passes. A background interaction (created without usage, still running) is
counted once, when a ``get`` brings its usage.

A live interaction (``client.aio.interactions.connect``, experimental) ends on its websocket:
the ``interaction.completed`` (or ``cancelled``) event carries its usage. The connection's
``receive`` generator is watched, and the interaction counted once, as a background one: with
the model and scope of the ``create`` that made it, when that was in this process (a later
``get`` then counts nothing more).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .. import _capture, _scope
from .._capture import Capture, Extraction, before_call, nonempty_str, now
from .._internal import _suppressed, internal_error
from .._record import RawUsage
from .._scope import _current as _current_scope
from ._base import PatchTarget, Wrapper, bounded_put, call_hook, first_time
from ._base import field_of as _get
from .genai import GEMINI, VERTEX

__all__ = [
    "DECISIONS",
    "INTERACTIONS",
    "VOICES",
    "detach",
    "extract",
    "raw_usage",
    "snapshot",
    "targets",
]

INTERACTIONS = "interactions"
DECISIONS = "decisions"
VOICES = "voices"  # a custom voice designed from a prompt: billed in tokens
_GAOS = "google.genai._gaos"
_STREAMS = f"{_GAOS}.utils.eventstreaming"
_RAW = f"{_GAOS}.utils.response_helpers"
_COMPAT = f"{_GAOS}.lib.compat_errors"
_NEXTGEN = "google.genai._interactions"  # google-genai 1.x and early 2.x: another generated client
_NEXTGEN_STREAMS = f"{_NEXTGEN}._streaming"
_NEXTGEN_RAW = f"{_NEXTGEN}._response"

_COUNTS = (
    "total_input_tokens",
    "total_output_tokens",
    "total_tokens",
    "total_cached_tokens",
    "total_thought_tokens",
    "total_tool_use_tokens",
)
# list field -> (its items' label field, count field)
_LISTS = {
    "input_tokens_by_modality": ("modality", "tokens"),
    "output_tokens_by_modality": ("modality", "tokens"),
    "cached_tokens_by_modality": ("modality", "tokens"),
    "tool_use_tokens_by_modality": ("modality", "tokens"),
    "grounding_tool_count": ("type", "count"),
}
_PENDING_STATUSES = frozenset({"in_progress", "queued"})
_FAILED_STATUSES = frozenset({"failed", "cancelled", "budget_exceeded"})


# -- pure functions: a Usage read now, and made into RawUsage on the loop ------------------------
def _label(value: Any) -> str:
    if value is None:
        return "UNSPECIFIED"
    return str(getattr(value, "value", value))


def snapshot(usage: Any) -> dict[str, Any] | None:
    """A ``Usage`` (object or dict) as plain values, read on the caller's thread, so the
    SDK's objects are not kept until the loop takes the record (see ``_capture``: held, they
    age into the collector's old generations). Never raises on odd objects."""
    if usage is None:
        return None
    values = usage if type(usage) is dict else getattr(usage, "__dict__", None)
    if type(values) is dict:  # the SDK's model: its field dict, copied (a C call)
        fields = values.copy()
    else:
        fields = {name: _get(usage, name) for name in (*_COUNTS, *_LISTS)}
    for name, (label, count) in _LISTS.items():
        items = fields.get(name)
        if items:
            fields[name] = (
                tuple((_label(_get(i, label)), _get(i, count)) for i in items)
                if isinstance(items, (list, tuple))
                else None
            )
    return fields


def raw_usage(fields: dict[str, Any]) -> RawUsage:
    """A :func:`snapshot` by meaning; thoughts are reported apart from the output."""
    details: dict[str, Any] = {}
    for name in _LISTS:
        pairs = fields.get(name)
        if not pairs:
            continue
        counts: dict[str, Any] = {}
        for label, n in pairs:
            before = counts.get(label)
            both = isinstance(before, (int, float)) and isinstance(n, (int, float))
            counts[label] = before + n if both else n
        details[name] = counts
    tier = fields.get("service_tier")
    if type(tier) is str and tier:
        details["service_tier"] = tier
    return RawUsage(
        prompt=fields.get("total_input_tokens"),
        completion=fields.get("total_output_tokens"),
        total=fields.get("total_tokens"),
        cached=fields.get("total_cached_tokens"),
        reasoning=fields.get("total_thought_tokens"),
        reasoning_in_completion=False,
        tool_prompt=fields.get("total_tool_use_tokens"),
        details=details,
    )


# What a record needs of an interaction or decision: (usage snapshot, its model, its id).
Detached = tuple["dict[str, Any] | None", "str | None", "str | None"]


def detach(obj: Any) -> Detached:
    """An interaction, decision or voice (or its JSON) as what its record needs."""
    values = getattr(obj, "__dict__", None)
    if type(values) is not dict:  # a dict, or an odd object
        names = ("usage", "model", "agent", "id", "service_tier")
        values = {name: _get(obj, name) for name in names}
    model = values.get("model") or values.get("agent")
    fields = snapshot(values.get("usage"))
    tier = values.get("service_tier")  # the tier that served it: its price
    if fields is not None and tier is not None:
        fields["service_tier"] = str(getattr(tier, "value", tier))
    return fields, nonempty_str(model), nonempty_str(values.get("id"))


def extract(detached: Any) -> Extraction:
    """The extractor of a :data:`Detached` (run on the loop)."""
    fields, model, rid = detached
    return (raw_usage(fields) if fields is not None else None), model, rid


# -- the hooks -------------------------------------------------------------------------------
# One request: (provider, operation, requested model, start time, scope).
_Hop = tuple[str, str, "str | None", float, Any]
_pending: dict[str, _Hop] = {}  # background interactions created without usage, by id


def _provider(instance: Any) -> str:
    client = getattr(instance, "_api_client", None)
    if client is not None:
        return VERTEX if getattr(client, "vertexai", False) else GEMINI
    nextgen = getattr(instance, "_client", None)  # google.genai._interactions's: marked for Vertex
    if nextgen is not None and getattr(nextgen, "_is_vertex", False) is True:
        return VERTEX
    url = getattr(getattr(instance, "sdk_configuration", None), "server_url", None)
    return VERTEX if "aiplatform" in str(url or "") else GEMINI


def _requested(kwargs: dict[str, Any]) -> str | None:
    """The model (or agent) asked for: a keyword, or in the ``request`` object's body."""
    body = _get(kwargs.get("request"), "body")
    for source in (kwargs, body):
        for name in ("model", "agent"):
            value = _get(source, name)
            if isinstance(value, str) and value:
                return value
    return None


def _begin(operation: str, instance: Any, kwargs: dict[str, Any]) -> _Hop:
    provider = _provider(instance)
    model = _requested(kwargs)
    before_call(provider, model)  # a budget's limit is the caller's own setting: it may raise
    return provider, operation, model, now(), _current_scope.get()


def _creator(operation: str, is_async: bool) -> Wrapper:
    """The hook of a generated ``create`` (one request each call)."""
    return call_hook(
        lambda instance, kwargs: _begin(operation, instance, kwargs),
        lambda hop, result: _finish(hop, result, None),
        is_async,
    )


def _getter(is_async: bool) -> Wrapper:
    """The hook of the generated ``Interactions.get``: counts a background interaction we
    saw created, once, when its usage arrives (nothing else a ``get`` returns is counted)."""
    if is_async:

        async def aget(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            result = await wrapped(*args, **kwargs)
            if _pending:
                _finish_get(args, kwargs, result)
            return result

        return aget

    def get(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        if _pending:
            _finish_get(args, kwargs, result)
        return result

    return get


def _finish_get(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    try:
        rid = kwargs.get("id", args[0] if args else None)
        hop = _pending.get(rid) if isinstance(rid, str) else None
        if hop is not None:
            _finish(hop, result, rid)
    except Exception:
        internal_error("genai interactions get")


def _finish(hop: _Hop, result: Any, pending_id: str | None) -> None:
    """Count (or arrange to count) what one request returned. Our code only; never raises."""
    try:
        streams = sys.modules.get(_STREAMS)
        if streams is not None and isinstance(result, (streams.Stream, streams.AsyncStream)):
            _watch(hop, result, pending_id, "generator")
            return
        raw = sys.modules.get(_RAW)
        if raw is not None and isinstance(result, raw._APIResponseBase):
            _hook_parse(hop, result, pending_id)
            return
        if raw is not None and isinstance(result, raw._AsyncAPIResponseBase):
            _ahook_parse(hop, result, pending_id)
            return
        if type(result).__module__.startswith(_NEXTGEN) and _finish_nextgen(
            hop, result, pending_id
        ):
            return
        _count(hop, result, pending_id)
    except Exception:
        internal_error("genai interactions finish")


def _finish_nextgen(hop: _Hop, result: Any, pending_id: str | None) -> bool:
    """A stream or raw response of ``google.genai._interactions`` (google-genai 1.x, early
    2.x): watched or hooked as the other client's are. False for anything else (an
    interaction)."""
    streams = sys.modules.get(_NEXTGEN_STREAMS)
    if streams is not None and isinstance(result, (streams.Stream, streams.AsyncStream)):
        _watch(hop, result, pending_id, "_iterator")
        return True
    raw = sys.modules.get(_NEXTGEN_RAW)
    if raw is not None and isinstance(result, raw.AsyncAPIResponse):
        _ahook_parse(hop, result, pending_id)
        return True
    if raw is not None and isinstance(result, raw.APIResponse):
        _hook_parse(hop, result, pending_id)
        return True
    return False


def _count(hop: _Hop, result: Any, pending_id: str | None) -> None:
    """A parsed interaction or decision."""
    detached = detach(result)
    status = _get(result, "status")
    if detached[0] is None and status in _PENDING_STATUSES:
        if pending_id is None and detached[2] is not None:  # a background one: later, by id
            bounded_put(_pending, detached[2], hop)
        return
    if pending_id is not None and (detached[0] is None or _pending.pop(pending_id, None) is None):
        return  # still running, or counted already
    _emit(hop, detached, "error" if status in _FAILED_STATUSES else "ok", None, False)


def _emit(hop: _Hop, detached: Detached, status: str, error: str | None, streamed: bool) -> None:
    """Hand the record's numbers off as a snapshot: the Capture is built on the loop (at once
    only while a budget settles calls as they happen: ``_capture.submit_snapshot``)."""
    item = (_capture_of, hop, detached, _capture.perf_clock(), status, error, streamed)
    _capture.submit_snapshot(item, hop[4])


def _capture_of(item: tuple[Any, ...]) -> Capture:
    """The Capture for :func:`_emit`'s snapshot."""
    _, hop, (fields, response_model, response_id), ended, status, error, streamed = item
    provider, operation, model, started, scope = hop
    return _capture.snapshot_capture(
        provider,
        operation,
        model,
        fields,
        _extract_fields,
        started,
        ended,
        _scope.default_scope if scope is None else scope,
        streamed,
        status,
        response_model,
        response_id,
        None,
        error,
    )


def _extract_fields(fields: Any) -> Extraction:
    return raw_usage(fields), None, None


def _hook_parse(hop: _Hop, raw: Any, pending_id: str | None) -> None:
    """``with_raw_response`` / ``with_streaming_response``: counted at the first ``parse()``
    (the hook is an attribute of that one response, taken off again once it has counted)."""
    original = raw.parse

    def parse(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        try:
            del raw.parse
        except AttributeError:  # taken off already (a parse inside a parse)
            return result
        _finish(hop, result, pending_id)
        return result

    raw.parse = parse


def _ahook_parse(hop: _Hop, raw: Any, pending_id: str | None) -> None:
    """:func:`_hook_parse` for an async raw response, whose ``parse`` is awaited."""
    original = raw.parse

    async def parse(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        try:
            del raw.parse
        except AttributeError:
            return result
        _finish(hop, result, pending_id)
        return result

    raw.parse = parse


# -- streams ---------------------------------------------------------------------------------
_STATE = "_ai_tokentrace_state"  # on the SDK's stream, for its close() (see :func:`_close`)


class _StreamState:
    """One stream's bookkeeping; finalised once (at the end, on close, on an error, or when
    the stream is let go)."""

    __slots__ = ("__weakref__", "completed", "done", "error", "hop", "last", "pending_id", "rid")

    def __init__(self, hop: _Hop, pending_id: str | None) -> None:
        self.hop = hop
        self.pending_id = pending_id
        self.completed: Detached | None = None  # from interaction.completed
        self.last: Any = None  # the last running total seen (a Usage)
        self.rid: str | None = pending_id  # from interaction.created
        self.error: str | None = None  # an error event's code
        self.done = False

    def notice(self, event: Any) -> None:
        kind = _get(event, "event_type")
        if kind == "step.delta":
            usage = _get(_get(event, "metadata"), "total_usage")
        elif kind == "step.stop" or kind == "interaction.status_update":
            usage = _get(event, "usage")
        elif kind == "interaction.completed" or kind == "interaction.complete":  # the latter: 1.x
            interaction = _get(event, "interaction")
            self.completed = detach(interaction)
            if _get(interaction, "status") in _FAILED_STATUSES:
                self.error = str(_get(interaction, "status"))
            return
        elif kind == "interaction.created" or kind == "interaction.start":
            self.rid = nonempty_str(_get(_get(event, "interaction"), "id")) or self.rid
            return
        elif kind == "error":
            code = _get(_get(event, "error"), "code")
            self.error = str(code) if code is not None else "error"
            return
        else:
            return
        if usage is not None:
            self.last = usage

    def finalise(self, ended: bool, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        try:
            self._emit(ended, exc)
        except Exception:
            internal_error("genai interactions stream")

    def _emit(self, ended: bool, exc: BaseException | None) -> None:
        if self.pending_id is not None and (
            self.completed is None or _pending.pop(self.pending_id, None) is None
        ):
            return  # a background one: its usage comes with a later get, or came already
        if self.completed is not None:
            detached = self.completed
            status = "error" if self.error is not None else "ok"
        else:
            detached = (snapshot(self.last), self.hop[2], self.rid)
            status = "ok" if ended and exc is None and self.error is None else "partial"
        error = _caller_error(exc) if exc is not None else self.error
        _emit(self.hop, detached, status, error, True)

    def __del__(self) -> None:
        if not self.done:
            self.finalise(False)


def _caller_error(exc: BaseException) -> str:
    """The name of the error the caller gets for ``exc``: the public client turns the
    transport's and the generated client's errors into its own as they leave the stream
    (``compat_errors.wrap_stream_errors``, around our look at the events)."""
    compat = sys.modules.get(_COMPAT)
    try:
        if compat is not None and isinstance(exc, compat._WRAP_EXCEPTIONS):
            return type(compat.wrap_sdk_error(exc)).__name__
    except Exception:  # an SDK whose translation differs: the error as we saw it
        pass
    return type(exc).__name__


def _watch(hop: _Hop, stream: Any, pending_id: str | None, events_at: str) -> None:
    """The caller keeps the SDK's stream; its events (its attribute ``events_at``) come
    through our look at each."""
    if pending_id is not None and pending_id not in _pending:
        return
    state = _StreamState(hop, pending_id)
    events = getattr(stream, events_at)
    setattr(
        stream,
        events_at,
        _awatched(events, state) if hasattr(events, "__anext__") else _watched(events, state),
    )
    try:  # noqa: SIM105 - a plain try: contextlib.suppress is an object and two frames more
        setattr(stream, _STATE, state)
    except Exception:
        pass


def _watched(events: Iterator[Any], state: _StreamState) -> Iterator[Any]:
    try:
        for event in events:
            try:
                state.notice(event)
            except Exception:
                internal_error("genai interactions event")
            yield event
    except GeneratorExit:
        events_close = getattr(events, "close", None)
        if events_close is not None:
            events_close()
        state.finalise(False)
        raise
    except BaseException as exc:
        state.finalise(False, exc)
        raise
    state.finalise(True)


async def _awatched(events: AsyncIterator[Any], state: _StreamState) -> AsyncIterator[Any]:
    try:
        async for event in events:
            try:
                state.notice(event)
            except Exception:
                internal_error("genai interactions event")
            yield event
    except GeneratorExit:
        state.finalise(False)
        raise
    except BaseException as exc:
        state.finalise(False, exc)
        raise
    state.finalise(True)


def _closed(stream: Any) -> None:
    """After the SDK stream's own ``close()``: a stream closed before its end is recorded now,
    as partial (``finalise`` does nothing the second time)."""
    state = getattr(stream, _STATE, None)
    if state is not None:
        state.finalise(False)


def _close(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """``Stream.close`` (and so ``with``)."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        _closed(instance)


async def _aclose(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """``AsyncStream.close`` (and so ``async with``)."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _closed(instance)


# -- live interactions: their usage arrives on the websocket's last event ------------------------
_LIVE = "google.genai._interactions_websocket"
_LIVE_ENDS = {
    "interaction.completed": "ok",
    "interaction.cancelled": "partial",
    "interaction.canceled": "partial",
}
_live_counted: dict[str, object] = {}  # live interactions counted here, by id


def _live_receive(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The hook of ``InteractionWebSocketConnection.receive``: its events, watched."""
    events = wrapped(*args, **kwargs)
    if _suppressed.get():
        return events
    return _live_events(events, instance, _current_scope.get())


async def _live_events(
    events: AsyncIterator[Any], connection: Any, scope: Any
) -> AsyncIterator[Any]:
    async for event in events:
        kind = _get(event, "event_type")
        if kind in _LIVE_ENDS:
            _live_end(connection, event, _LIVE_ENDS[kind], scope)
        yield event


def _live_end(connection: Any, event: Any, status: str, scope: Any) -> None:
    """A live interaction's last event: its record, once."""
    try:
        fields = snapshot(_get(event, "usage"))
        iid = nonempty_str(getattr(connection, "id", None))
        if fields is None or (iid is not None and not first_time(_live_counted, iid)):
            return
        hop = _pending.pop(iid, None) if iid is not None else None
        if hop is None:  # made elsewhere: no model known
            hop = (GEMINI, INTERACTIONS, None, now(), scope)
        _emit(hop, (fields, None, iid), status, None, True)
    except Exception:
        internal_error("genai live interaction")


def targets() -> list[PatchTarget]:
    """The generated classes' methods, each patched when its module is first imported."""
    out: list[PatchTarget] = []
    for module, cls, operation in (
        (f"{_GAOS}.interactions", "Interactions", INTERACTIONS),
        (f"{_GAOS}.decisions", "Decisions", DECISIONS),
        (f"{_GAOS}.voices", "Voices", VOICES),
    ):
        for prefix, is_async in (("", False), ("Async", True)):
            hook = _creator(operation, is_async)
            out.append(PatchTarget(module, f"{prefix}{cls}.create", hook, lazy=True))
        if operation == INTERACTIONS:
            for prefix, is_async in (("", False), ("Async", True)):
                out.append(PatchTarget(module, f"{prefix}{cls}.get", _getter(is_async), lazy=True))
    out.append(
        PatchTarget(_LIVE, "InteractionWebSocketConnection.receive", _live_receive, lazy=True)
    )
    # google-genai 1.x and early 2.x: client.interactions is this generated resource itself
    resource = f"{_NEXTGEN}.resources.interactions"
    for prefix, is_async in (("", False), ("Async", True)):
        hook = _creator(INTERACTIONS, is_async)
        out.append(PatchTarget(resource, f"{prefix}InteractionsResource.create", hook, lazy=True))
        getter = _getter(is_async)
        out.append(PatchTarget(resource, f"{prefix}InteractionsResource.get", getter, lazy=True))
    for module in (_STREAMS, _NEXTGEN_STREAMS):
        out.append(PatchTarget(module, "Stream.close", _close, lazy=True))
        out.append(PatchTarget(module, "AsyncStream.close", _aclose, lazy=True))
    return out
