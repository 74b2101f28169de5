"""OpenAI adapter: every usage-bearing call counted exactly once, streams included.

Hook depth: the client's ``request`` (``SyncAPIClient.request`` / ``AsyncAPIClient.request``).
Every resource method (``create``, ``parse``, ``stream``, ``compact``, images, audio,
decisions, the beta Responses API, on ``OpenAI`` and ``AzureOpenAI`` alike) ends there exactly
once per user call, retries included, and it sees the request options (path, method, body)
before anything is sent. So one pair of
patches counts ``chat.completions.parse`` (which skips ``create``), the ``stream()`` helpers, and
``with_raw_response`` bound before or after ``instrument()``. What ``request`` returns decides
the rest:

* a parsed model: emitted now;
* a ``Stream`` / ``AsyncStream``: returned inside a transparent proxy that emits once;
* a raw response (``with_raw_response`` / ``with_streaming_response``): its ``parse`` is
  wrapped on that one instance, and the first parse is counted.

When ``request`` is missing (an SDK we do not know), the public resource methods are patched
instead. Counted: POST to the paths in :data:`ROUTES`; not retrieve/list/cancel or
``responses.input_tokens``. Background responses are counted once, when a retrieve or stream of
the same id brings their usage.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from .. import _capture, _scope
from .._capture import Capture, before_call, emit, nonempty_str, now
from .._internal import _suppressed, internal_error, logger, suppressed
from .._scope import Scope, current_scope
from .._scope import _current as _current_scope
from . import _openai_agents as agents
from ._base import PatchTarget, bounded_put, first_time, run_time, unix_seconds
from ._openai_agents import AGENT_TURNS
from ._openai_extract import (
    EXTRACTORS,
    SNAPSHOT_EXTRACTORS,
    SNAPSHOTS,
    USAGE_FIELDS,
    Detached,
    detach,
)
from ._openai_streams import (
    CHUNK_STREAMS,
    REQUEST_ID,
    AsyncStreamProxy,
    StreamProxy,
    StreamState,
    aclose_wrapper,
    close_wrapper,
)

__all__ = [
    "INTEGRATION",
    "MIN_OPENAI_VERSION",
    "ROUTES",
    "OpenAIIntegration",
    "finish_stream",
]

MIN_OPENAI_VERSION = "1.40.0"

# POST path (as the resource methods pass it, before Azure rewrites it) -> operation.
# The beta Responses API (``client.beta.responses``) names its paths with ``?beta=true``.
ROUTES: dict[str, str] = {
    "/chat/completions": "chat.completions",
    "/responses": "responses",
    "/responses/compact": "responses",
    "/responses?beta=true": "responses",
    "/responses/compact?beta=true": "responses",
    "/decisions": "decisions",
    "/completions": "completions",
    "/embeddings": "embeddings",
    "/images/generations": "images",
    "/images/edits": "images",
    "/images/variations": "images",
    "/audio/transcriptions": "audio.transcriptions",
}

_RAW_HEADER = "X-Stainless-Raw-Response"
_AZURE = "azure.ai.openai"


class _Call:
    """What the hot path captured when a counted call began. :func:`_fast_stream_begin` sets
    every field itself, without ``__init__``'s frame: a field added here goes there too."""

    __slots__ = (
        "background",
        "injected",
        "model",
        "operation",
        "pending_id",
        "provider",
        "restore",
        "scope",
        "started",
    )

    def __init__(
        self,
        provider: str,
        operation: str,
        model: str | None,
        started: float,
        scope: Scope | None,
        background: bool = False,
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.model = model
        self.started = started
        self.scope = scope
        self.background = background
        self.injected = False
        # None on a call that starts billed work; else what the call reads: a pending background
        # response's id, a batch (``_READS``), or an Agents API request's kind and path
        self.pending_id: str | None = None
        # injected in place: (the options' field dict, the body it had), put back after the call
        self.restore: tuple[dict[str, Any], Any] | None = None


# Background responses created without usage, by id, until a retrieve or stream brings it.
# dict.pop is atomic, so two racing retrieves cannot both count the same response.
_pending: dict[str, _Call] = {}
# Clients (by base URL) that rejected the injected stream_options: never inject there again.
_no_inject: set[str] = set()
_provider_by_type: dict[type, str] = {}
_new_call = object.__new__
_STREAM_TYPES: tuple[type, ...] = ()
_ASYNC_STREAM_TYPES: tuple[type, ...] = ()
_RAW_TYPES: tuple[type, ...] = ()


def _resolve_types() -> None:
    """Look the SDK's stream and raw-response classes up once (each defensively)."""
    global _STREAM_TYPES, _ASYNC_STREAM_TYPES, _RAW_TYPES
    streams: list[type] = []
    astreams: list[type] = []
    raws: list[type] = []
    for module, name, into in (
        ("openai._streaming", "Stream", streams),
        ("openai._streaming", "AsyncStream", astreams),
        ("openai._response", "BaseAPIResponse", raws),
        ("openai._legacy_response", "LegacyAPIResponse", raws),
    ):
        try:
            into.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            logger.debug("ai-tokentrace: openai has no %s.%s", module, name)
    _STREAM_TYPES, _ASYNC_STREAM_TYPES, _RAW_TYPES = tuple(streams), tuple(astreams), tuple(raws)


def _provider(client: Any) -> str:
    cls = type(client)
    p = _provider_by_type.get(cls)
    if p is None:
        p = "openai"
        try:
            from openai.lib.azure import BaseAzureClient

            if issubclass(cls, BaseAzureClient):
                p = _AZURE
        except ImportError:  # pragma: no cover - very old SDKs
            if "Azure" in cls.__name__:
                p = _AZURE
        _provider_by_type[cls] = p
    return p


def _model_for(client: Any, provider: str, requested: Any) -> str | None:
    """The model a record names: on Azure the deployment, else the model the request asked for."""
    if provider == _AZURE:
        requested = getattr(client, "_azure_deployment", None) or requested
    return requested if isinstance(requested, str) else None


_pipeline: Any = None  # ai_tokentrace._pipeline, bound by the first stream (it loads asyncio)


def _settings_inject() -> bool:
    """The active pipeline's ``inject_stream_usage`` (the pipeline binds it to ``_capture``
    when installed; before there is one, asking for it installs one from the environment)."""
    global _pipeline
    inject = _capture.inject_stream_usage
    if inject is not None:
        return inject
    if _pipeline is None:
        from .. import _pipeline
    return bool(_pipeline.current().settings.inject_stream_usage)


def _azure_supports_usage(client: Any) -> bool:
    """Azure accepts ``stream_options`` from api-version 2024-09-01 on (and on the v1 API)."""
    version = getattr(client, "_api_version", None)
    if not isinstance(version, str) or not version[:1].isdigit():
        return True
    return version >= "2024-09-01"


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # dict first: the ABC check costs more than the rest of a stream's begin (NotGiven, None)
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _asks_usage(source: Any) -> bool:
    """Whether a request body (or its extra JSON) has ``stream_options.include_usage`` on."""
    if source is None or not _is_mapping(source):
        return False
    so = source.get("stream_options")
    return bool(so is not None and _is_mapping(so) and so.get("include_usage"))


_OPTION_FIELDS = ("url", "method", "json_data", "extra_json", "headers")


def _fields_of(options: Any) -> dict[str, Any]:
    """The request options' fields we read: their instance dict (pydantic's fields, read
    without its per-attribute hook), else attribute by attribute (an SDK we do not know)."""
    fields = getattr(options, "__dict__", None)
    if type(fields) is dict and "url" in fields and "json_data" in fields:
        return fields
    return {name: getattr(options, name, None) for name in _OPTION_FIELDS}


def _inject(
    options: Any, fields: dict[str, Any], body: Mapping[str, Any], extra: Any
) -> tuple[Any, tuple[dict[str, Any], Any] | None]:
    """Request options asking for usage, and what to put back after the call (None: a copy).

    The caller's objects stay untouched: the body is a new dict. The options object is the
    SDK's own, made for this one call, so its body is swapped in place for the call and put
    back afterwards (a copy of pydantic options costs more than the rest of a stream's begin);
    options whose body we cannot swap so, or with ``stream_options`` among the extra JSON, are
    copied.
    """
    in_extra = extra is not None and _is_mapping(extra) and "stream_options" in extra
    # the caller's own stream options (``include_obfuscation``, say) go with ours: the SDK lays
    # ``extra_body`` over the body, so there its stream options are the ones the server gets
    so = extra["stream_options"] if in_extra else body.get("stream_options")
    new_body = dict(body)
    old = so if so is not None and _is_mapping(so) else {}
    new_body["stream_options"] = {**old, "include_usage": True}
    if not in_extra and getattr(options, "__dict__", None) is fields:
        fields["json_data"] = new_body
        return options, (fields, body)
    copier = getattr(options, "model_copy", None)
    new = copier() if copier is not None else copy.copy(options)
    new.json_data = new_body
    if in_extra:
        new.extra_json = {k: v for k, v in extra.items() if k != "stream_options"}
    return new, None


def _put_back(call: _Call) -> None:
    """After the call: the options get back the body they had (see :func:`_inject`)."""
    restore = call.restore
    if restore is not None:
        call.restore = None
        restore[0]["json_data"] = restore[1]


def _begin_request(
    client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[_Call | None, tuple[Any, ...], dict[str, Any]]:
    """Decide whether this request is counted; maybe ask for streamed usage. Our code only."""
    options: Any = args[1] if len(args) > 1 else kwargs["options"]
    fields = _fields_of(options)
    url = fields["url"]
    op = ROUTES.get(url) if type(url) is str else None
    method = fields["method"]
    if op is None:
        if type(url) is str and url.startswith("/batches"):
            return _begin_batch(client, url, method), args, kwargs
        if type(url) is str and url.startswith("/agents"):
            return _begin_agents(client, url, method), args, kwargs
        if (
            _pending
            and isinstance(url, str)
            and url.startswith("/responses/")
            and method.lower() == "get"
        ):
            rid = url[len("/responses/") :].partition("?")[0]  # the beta API's ``?beta=true``
            if rid in _pending:
                call = _Call(_provider(client), "responses", None, now(), None)
                call.pending_id = rid
                return call, args, kwargs
        return None, args, kwargs
    if method != "post" and method.lower() != "post":
        return None, args, kwargs
    body = fields["json_data"]
    if type(body) is not dict and not _is_mapping(body):
        body = {}
    extra = fields["extra_json"]
    provider = _provider(client)
    model = _model_for(client, provider, body.get("model"))
    background = False
    if op == "responses":
        background = bool(body.get("background")) or (
            extra is not None and _is_mapping(extra) and bool(extra.get("background"))
        )
    call = _Call(provider, op, model, _capture.perf_clock(), _current_scope.get(), background)
    stream = kwargs.get("stream", False) if len(args) < 3 else args[2]
    if stream and op in CHUNK_STREAMS:
        headers = fields["headers"]
        raw = _is_mapping(headers) and headers.get(_RAW_HEADER)
        if (
            not raw
            and not _asks_usage(body)
            and not _asks_usage(extra)
            and _settings_inject()
            and (not _no_inject or str(getattr(client, "base_url", "")) not in _no_inject)
            and (provider != _AZURE or _azure_supports_usage(client))
        ):
            new_options, call.restore = _inject(options, fields, body, extra)
            if new_options is not options:
                if len(args) > 1:
                    args = (args[0], new_options, *args[2:])
                else:
                    kwargs = {**kwargs, "options": new_options}
            call.injected = True
    return call, args, kwargs


def _rejected_injection(exc: BaseException) -> bool:
    """A 400 that names ``stream_options``: the server does not take what we added."""
    status = getattr(exc, "status_code", None)
    return status in (400, 422) and "stream_options" in str(exc)


def _finish(call: _Call, result: Any, request_id: str | None = None) -> Any:
    """Count (or arrange to count) what ``request`` returned. Our code only; never raises.

    A stream is watched here, in this frame (a function of its own cost a stream 1.1 us,
    interleaved call by call, alternately, stop 28): the caller gets the SDK's own stream
    where our strip feeds its decoder (a chat or completion stream), else a proxy. No proxy
    there, the caller keeps the very object the SDK made (``type(s) is Stream``, pickling,
    identity); the strip takes our usage event out of a stream we asked usage of and only
    looks at one whose caller asked for it: 18k to 42k fewer instructions a stream than the
    proxy's look at each parsed chunk (cachegrind, one build, three hash seeds). Responses,
    images and audio streams keep the proxy."""
    try:
        if isinstance(result, _STREAM_TYPES):
            state = StreamState(result, call)
            return result if state.decoder is not None else StreamProxy(result, state)
        if isinstance(result, _ASYNC_STREAM_TYPES):
            state = StreamState(result, call)
            return result if state.decoder is not None else AsyncStreamProxy(result, state)
        if isinstance(result, _RAW_TYPES):
            _hook_raw(call, result)
            return result
        _count(call, result, request_id)
    except Exception:
        internal_error("openai finish")
    return result


def _request_id_of(obj: Any) -> str | None:
    """The SDK's ``_request_id`` without pydantic's slow AttributeError path when it is unset."""
    values = getattr(obj, "__dict__", None)
    rid = values.get("_request_id") if type(values) is dict else None
    return _request_id_in(rid or getattr(obj, "__pydantic_private__", None))


def _request_id_in(found: Any) -> str | None:
    """``found``: the ``_request_id`` of the instance dict (openai 3.x) or, where that is unset,
    pydantic's private dict, which holds it on older releases. The fast path reads the first on
    the caller's thread and leaves the second to the loop."""
    rid = found.get("_request_id") if type(found) is dict else found
    return rid if type(rid) is str else None


def _count(call: _Call, result: Any, request_id: str | None = None) -> None:
    """A non-streamed result: emit it (background responses wait for their usage)."""
    if call.operation == BATCHES:
        _count_batch(call, result, request_id)
        return
    if call.pending_id is not None:
        if getattr(result, "usage", None) is None:
            return
        original = _pending.pop(call.pending_id, None)
        if original is not None:
            _emit_for(original, result, request_id=_request_id_of(result) or request_id)
        return
    status = "ok"
    if call.operation == "responses":
        usage = getattr(result, "usage", None)
        if usage is None and call.background:
            rid = getattr(result, "id", None)
            if isinstance(rid, str):
                _remember(rid, call)
                return
        if getattr(result, "status", None) == "failed":
            status = "error"
    request_id = _request_id_of(result) or request_id
    if call.operation in SNAPSHOTS:  # the capture keeps the numbers, not the response
        _submit_detached(call, detach(call.operation, result), status, request_id)
        return
    _emit_for(call, result, status=status, request_id=request_id)


# -- batches: their usage is reported when they end, on the batch a retrieve returns ------------
BATCHES = "batches"
# A batch's end status -> (the record's status, the field saying when it ended). An expired
# or cancelled batch bills the requests it finished.
_BATCH_ENDS = {
    "completed": ("ok", "completed_at"),
    "expired": ("partial", "expired_at"),
    "cancelled": ("partial", "cancelled_at"),
    "failed": ("error", "failed_at"),
}
_batches: dict[str, _Call] = {}  # batches created in a scope, by id, until they end
_batches_counted: dict[str, object] = {}  # ended batches counted here, by id


_READS = "read"  # ``_Call.pending_id`` of a call that reads what was billed (no budget refuses it)


def _begin_batch(client: Any, url: str, method: Any) -> _Call | None:
    """``batches.create`` (to remember the scope it ran in) and ``batches.retrieve`` (which
    counts a batch found ended with usage); not list or cancel."""
    verb = str(method).lower()
    if url == "/batches" and verb == "post":
        return _Call(_provider(client), BATCHES, None, now(), _current_scope.get())
    if verb == "get" and url.startswith("/batches/"):
        call = _Call(_provider(client), BATCHES, None, now(), _current_scope.get())
        call.pending_id = _READS
        return call
    return None


def _count_batch(call: _Call, batch: Any, request_id: str | None) -> None:
    """One record per batch, once it has ended with usage: attributed to the scope it was
    created in (when created in this process), with an id derived from the batch's, so two
    processes counting it write one record to stores keyed on ``record_id``."""
    bid = getattr(batch, "id", None)
    if type(bid) is not str:
        return
    end = _BATCH_ENDS.get(getattr(batch, "status", None))  # type: ignore[arg-type]
    if end is None:  # validating, in progress, finalizing, cancelling
        if call.scope is not None and bid not in _batches:
            bounded_put(_batches, bid, call)
        return
    if getattr(batch, "usage", None) is None:  # one from before batches reported usage
        _batches.pop(bid, None)
        return
    if not first_time(_batches_counted, bid):
        return
    created = _batches.pop(bid, None)
    status, field = end
    ended = unix_seconds(getattr(batch, field, None))
    emit(
        call.provider,
        BATCHES,
        nonempty_str(getattr(batch, "model", None)),  # the model its requests named
        batch,
        EXTRACTORS[BATCHES],
        call.started,
        status=status,
        request_id=_request_id_of(batch) or request_id,
        scope=created.scope if created is not None else call.scope,
        key=f"{call.provider}:batch:{bid}",
        at=ended,
        took=run_time(unix_seconds(getattr(batch, "created_at", None)), ended),
    )


# -- the Agents API (beta): a session's turns, counted once each when seen ended ---------------
def _begin_agents(client: Any, url: str, method: Any) -> _Call | None:
    """A request under ``/agents`` that :mod:`._openai_agents` looks at; its ``pending_id``
    says what it is (``"<kind> <path>"``). Only a session's creation and the input sent to it
    start billed work (a budget may refuse them); the rest read."""
    kind = agents.begin(url, method)
    if kind is None:
        return None
    call = _Call(_provider(client), AGENT_TURNS, None, now(), _current_scope.get())
    call.pending_id = kind
    return call


def _count_agents(call: _Call, result: Any, request_id: str | None) -> None:
    agents.seen(
        call.pending_id or "",
        call.provider,
        call.scope,
        call.started,
        result,
        _request_id_of(result) or request_id,
    )


def _watch_agents(call: _Call, stream: Any) -> None:
    response = getattr(stream, "response", None)
    headers = getattr(response, "headers", None)
    rid = headers.get("x-request-id") if headers is not None else None
    agents.watch(
        call.pending_id or "",
        stream,
        call.provider,
        call.scope,
        call.started,
        rid if isinstance(rid, str) else None,
    )


def _finish_agents(call: _Call, result: Any, request_id: str | None = None) -> Any:
    """:func:`_finish` for an Agents API request. They take the general path only, so the
    streams' own :func:`_finish` need not ask what a call is."""
    try:
        if isinstance(result, (*_STREAM_TYPES, *_ASYNC_STREAM_TYPES)):
            _watch_agents(call, result)
        elif isinstance(result, _RAW_TYPES):
            _hook_raw(call, result)
        else:
            _count_agents(call, result, request_id)
    except Exception:
        internal_error("openai agents finish")
    return result


def _bills(call: _Call) -> bool:
    """Whether a call starts billed work, so a spent budget refuses it: not a retrieve (of a
    batch, or of a background response), nor a request of the Agents API other than creating
    a session or sending it input."""
    if call.operation is AGENT_TURNS:
        return agents.bills(call.pending_id or "")
    return call.pending_id is None


def _emit_for(call: _Call, payload: Any, **kw: Any) -> None:
    emit(
        call.provider,
        call.operation,
        call.model,
        payload,
        EXTRACTORS[call.operation],
        call.started,
        scope=call.scope,
        **kw,
    )


def _remember(rid: str, call: _Call) -> None:
    bounded_put(_pending, rid, call)


def finish_stream(state: StreamState, ended: bool, exc: BaseException | None) -> None:
    """Called once per stream (end, close, ``with`` exit, error, garbage collection)."""
    call = state.call
    detached = state.detached
    if detached is not None and exc is None and call.pending_id is None and not state.failed:
        status, error_type = "ok", None  # the usual end: its usage event seen
    else:
        ends = _stream_end(state, ended, exc)
        if ends is None:
            return
        detached, status, error_type = ends
    # :func:`_submit_detached`'s hand-off, in this frame (with the begin of a stream without
    # ``_Call.__init__``, 1.9 us less a stream, interleaved call by call, alternately, stop 28).
    # The id is read here, not on the loop from the headers: a queued headers object (its list
    # and tuples) held until the loop takes it cost a stream 6 us more than the 1 us read
    # (interleaved call by call, two processes), and made every other call slower too.
    scope = call.scope
    try:  # ``StreamState.request_id``, written out: a frame less at every stream's end
        headers = state.response.headers
        items = getattr(headers, "_list", None)
        rid = None
        if type(items) is list:
            for entry in items:
                if entry[1] == REQUEST_ID:
                    value = entry[2]
                    rid = value.decode("latin-1") if type(value) is bytes else None
                    break
        else:
            rid = state.request_id()  # headers of another kind: their ``get``
    except Exception:
        rid = None
    item = (
        _detached_capture_of,
        call,
        _capture.perf_clock(),
        detached,
        status,
        error_type,
        rid,
        _scope.default_scope if scope is None else scope,
        True,
    )
    if scope is None and not _capture.watching_unscoped:
        _capture.hand_off(item)  # ``submit_snapshot``'s way outside any scope, a frame less
    else:
        _capture.submit_snapshot(item, scope)


def _stream_end(
    state: StreamState, ended: bool, exc: BaseException | None
) -> tuple[Detached | dict[str, Any] | bytes, str, str | None] | None:
    """Any other end of a stream: what to hand off (None: emitted here, or nothing to count)."""
    call = state.call
    detached = state.detached
    payload = state.payload
    if call.pending_id is not None:  # a retrieve stream of a background response
        if payload is not None:
            original = _pending.pop(call.pending_id, None)
            if original is not None:
                _emit_for(original, payload, streamed=True, request_id=state.request_id())
        return None
    if payload is not None and detached is None and call.operation in SNAPSHOTS:
        detached = detach(call.operation, payload)  # the chunk or response is not kept
    have_usage = payload is not None or detached is not None
    if not have_usage and call.background and state.response_id and not ended:
        _remember(state.response_id, call)  # its usage arrives later, via retrieve
        return None
    if state.failed:
        status, error_type = "error", "response.failed"
    elif exc is not None:
        status, error_type = (
            ("error" if have_usage else "partial"),
            state.raised or type(exc).__name__,
        )
    elif not have_usage and state.error is not None:
        status, error_type = "partial", state.error
    elif have_usage or ended:
        status, error_type = "ok", None
    else:
        status, error_type = "partial", None
    if detached is None:
        _emit_for(
            call,
            payload,
            streamed=True,
            status=status,
            error_type=error_type,
            request_id=state.request_id(),
            usage_available=have_usage,
        )
        return None
    return detached, status, error_type


def _submit_detached(call: _Call, detached: Detached, status: str, request_id: str | None) -> None:
    """Hand off a non-streamed call from what :func:`detach` read off its response (which is
    not kept). A stream's end hands off the same way, in :func:`finish_stream`'s own frame.

    The default scope is read here rather than through ``_capture.scope_or_default``, each
    frame of ours being cold cache lines on every call (``bench/instructions.py --misses``)."""
    scope = call.scope
    _capture.submit_snapshot(
        (
            _detached_capture_of,
            call,
            _capture.perf_clock(),
            detached,
            status,
            None,
            request_id,
            _scope.default_scope if scope is None else scope,
            False,
        ),
        scope,
    )


def _detached_capture_of(item: tuple[Any, ...]) -> Capture:
    """The Capture for :func:`_submit_detached`'s snapshot (on the loop, or at once in a scope)."""
    _, call, ended, detached, status, error_type, request_id, scope, streamed = item
    op = call.operation
    if type(detached) is bytes:
        try:
            detached = json.loads(detached)
        except ValueError:  # text the SDK fails to parse too: a record without usage
            detached = {}
        except RecursionError:  # nested too deep for json (a caller-asked event, kept unparsed)
            internal_error("openai usage event")
            detached = {}
    usage, rmodel, rid = detached if type(detached) is tuple else detach(op, detached)
    return _capture.snapshot_capture(
        call.provider,
        op,
        call.model,
        usage,
        SNAPSHOT_EXTRACTORS[op],
        call.started,
        ended,
        scope,
        streamed,
        status,
        rmodel,
        rid,
        request_id,
        error_type,
    )


# -- raw responses (with_raw_response / with_streaming_response) --------------------------------
def _after_parse(state: list[Any], result: Any) -> Any:
    call: _Call | None = state[0]
    if call is None:  # counted already: hand back the same proxy for a cached stream
        proxy = state[1]
        if proxy is not None and result is proxy.__wrapped__:
            return proxy
        return result
    state[0] = None
    finish = _finish_agents if call.operation is AGENT_TURNS else _finish
    out = finish(call, result, state[2])
    if out is not result:
        state[1] = out
    return out


def _hook_raw(call: _Call, raw: Any) -> None:
    """Count the first ``parse()`` of this raw response (the SDK caches parses).

    The hook is an attribute of ``raw`` holding ``raw``: a reference cycle. Once a parse has
    been counted and the SDK's own cache gives the caller the same object from then on (all
    but streams, which we hand out as our proxy), it removes itself, and the response goes
    with the caller's last reference instead of waiting for the cyclic collector. (It cannot
    hold ``raw`` weakly: ``client...with_raw_response.create(...).parse()`` keeps no other.)
    """
    original = raw.parse
    headers = getattr(raw, "headers", None)
    rid = headers.get("x-request-id") if headers is not None else None
    state: list[Any] = [call, None, rid if isinstance(rid, str) else None]
    hook: Any
    if inspect.iscoroutinefunction(original):

        async def hook(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            return _after_parse_done(raw, state, result)

    else:

        def hook(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            return _after_parse_done(raw, state, result)

    hook.ai_tokentrace_hook = True
    raw.parse = hook


def _after_parse_done(raw: Any, state: list[Any], result: Any) -> Any:
    out = _after_parse_safe(state, result)
    # the hook is an attribute of ``raw``, read and deleted as one: asking for ``raw.__dict__``
    # would make the dict, and the SDK's reads on ``raw`` would miss their fast path (see
    # ``_openai_streams._STATE``)
    if out is result and getattr(getattr(raw, "parse", None), "ai_tokentrace_hook", False):
        # not ``contextlib.suppress``: an object and two frames of Python, every parse
        try:  # noqa: SIM105
            del raw.parse
        except AttributeError:
            pass
    return out


def _after_parse_safe(state: list[Any], result: Any) -> Any:
    try:
        return _after_parse(state, result)
    except Exception:
        internal_error("openai raw parse")
        return result


# -- the fast path ------------------------------------------------------------------------------
# A plain (non-streamed, non-raw) result, in a scope or not, with no budget watching: the caller's
# thread reads the usage counts, ids and clocks into one tuple and queues it; the background loop
# turns it into a Capture with :func:`_capture_of`. A chat or completion stream under the same
# conditions begins here too (:func:`_fast_stream_begin`) and is then watched like any stream.
# Anything else takes the general path below.

# url -> (operation, snapshot function, is the Responses API, usage field names or None): with
# the names, the hooks read the usage in their own frame (the snapshot function written out)
_FAST_ROUTES: dict[str, tuple[str, Any, bool, tuple[str, str, str, str, str] | None]] = {
    url: (op, SNAPSHOTS[op][0], op == "responses", USAGE_FIELDS.get(op))
    for url, op in ROUTES.items()
    if op in SNAPSHOTS
}
_plain: dict[type, bool] = {}  # result type -> is a parsed model (not a stream or raw response)


def _is_plain(cls: type) -> bool:
    kind = _plain.get(cls)
    if kind is None:
        kind = not issubclass(cls, (*_STREAM_TYPES, *_ASYNC_STREAM_TYPES, *_RAW_TYPES))
        _plain[cls] = kind
    return kind


def _capture_of(item: tuple[Any, ...]) -> Capture:
    """On the loop: the Capture for a fast-path snapshot (see :func:`_fast_end`)."""
    _, op, client, model, started, ended, snap, rmodel, rid, private, default_scope, status = item
    provider = _provider(client)
    return _capture.snapshot_capture(
        provider,
        op,
        _model_for(client, provider, model),
        snap,
        SNAPSHOT_EXTRACTORS[op],
        started,
        ended,
        default_scope,
        False,
        "error" if status == "failed" else "ok",
        nonempty_str(rmodel),
        nonempty_str(rid),
        _request_id_in(private),
        None,
    )


_Begun = tuple[Any, Any, float, "Scope | None"]


def _fast_begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Begun | None:
    """:func:`_fast_options` for a request hooked as ``(wrapped, instance, args, kwargs)``:
    the SDK passes ``(cast_to, options)`` positionally, and a stream never takes this path."""
    if len(args) != 2 or kwargs.get("stream"):
        return None
    return _fast_options(args[1])


def _fast_options(options: Any) -> _Begun | None:
    """``(route, requested model, start time, scope)`` when a request with these options (not
    a stream) may take the fast path.

    Not while our own traffic is suppressed, nor while a budget must settle the call as it
    happens (``_capture.may_snapshot()`` and ``settles_now``, inline: this runs before every
    request). Our code only: it may raise (the hooks then take the general path).
    """
    if _suppressed.get() or _capture.watching_unscoped:
        return None
    scope = _current_scope.get()
    if scope is not None and _capture.capture_listeners:
        return None
    fields = options.__dict__  # FinalRequestOptions: its fields, without pydantic's hooks
    route = _FAST_ROUTES.get(fields["url"])
    if route is None:
        return None
    body = fields["json_data"]
    if (
        type(body) is not dict
        or fields["method"] != "post"
        or (route[2] and (body.get("background") or fields["extra_json"]))
    ):
        return None
    return route, body.get("model"), _capture.perf_clock(), scope


def _fast_end(begun: _Begun, client: Any, result: Any) -> Any:
    """Queue ``result``'s snapshot, or count it the general way when it is not a plain model.

    Returns what the caller gets (``result`` itself, unless the general path wraps it).
    """
    ended = _capture.perf_clock()
    route, model, started, scope = begun
    try:
        cls = type(result)
        if not (_plain.get(cls) or _is_plain(cls)):
            return _finish_odd(route[0], client, model, started, scope, result)
        fields = result.__dict__
        item = (
            _capture_of,
            route[0],
            client,
            model,
            started,
            ended,
            route[1](fields),
            fields["model"],
            fields.get("id"),  # embeddings have none
            fields.get("_request_id") or result.__pydantic_private__,
            _scope.default_scope if scope is None else scope,
            fields.get("status") if route[2] else None,
        )
    except Exception:  # an odd result: the general path reads it defensively
        return _finish_odd(route[0], client, model, started, scope, result)
    try:
        if scope is None:
            _capture.hand_off(item)
        else:
            _capture.submit_scoped(item, scope)
    except Exception:
        internal_error("openai hand-off")
    return result


_FAST_STREAMS = {url: op for url, op in ROUTES.items() if op in CHUNK_STREAMS}


def _fast_stream_begin(client: Any, options: Any) -> _Call | None:
    """The begin of a plain chat or completion stream on OpenAI, without the general path's.

    When a snapshot may be queued (``_capture.may_snapshot()``, inline), on a client already
    seen to be OpenAI's (Azure's api-version decides there), with the SDK's own options and body
    (dicts), no extra JSON and no raw-response header. Usage is asked for with :func:`_inject`
    when the caller set no ``stream_options``; with ``include_usage`` set by the caller the
    request goes as it is; any other ``stream_options``, and every other case, take the general
    path. Our code only.
    """
    if (
        _provider_by_type.get(type(client)) != "openai"
        or _suppressed.get()
        or _capture.watching_unscoped
    ):
        return None
    scope = _current_scope.get()
    if scope is not None and _capture.capture_listeners:
        return None
    fields = options.__dict__
    op = _FAST_STREAMS.get(fields["url"])
    body = fields["json_data"]
    headers = fields["headers"]
    if (
        op is None
        or type(body) is not dict
        or fields["method"] != "post"
        or fields["extra_json"] is not None
        or (type(headers) is dict and headers.get(_RAW_HEADER))
        or (headers and type(headers) is not dict)
    ):
        return None
    so = body.get("stream_options")
    if so is None:
        if _no_inject:  # a server refused it before: the general path knows which
            return None
    elif not (type(so) is dict and so.get("include_usage")):
        return None  # stream options of the caller's own: the general path merges ours in
    model = body.get("model")
    call = _new_call(_Call)  # its fields set here, without the frame of ``__init__``: ~1 us
    call.provider = "openai"
    call.operation = op
    call.model = model if isinstance(model, str) else None
    call.started = _capture.perf_clock()
    call.scope = scope
    call.background = call.injected = False
    call.pending_id = call.restore = None
    if so is None and _settings_inject():
        _, call.restore = _inject(options, fields, body, None)  # in place: no extra JSON
        call.injected = True
    return call


# -- the wrappers --------------------------------------------------------------------------------
def _sync_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The hook on ``SyncAPIClient.request`` where its signature is not the one
    :func:`_direct_request` is written for (older SDKs)."""
    try:
        begun = _fast_begin(args, kwargs)
    except Exception:
        begun = None
    if begun is None:
        return _sync_request_general(wrapped, instance, args, kwargs)
    return _fast_end(begun, instance, wrapped(*args, **kwargs))


async def _async_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The async twin of :func:`_sync_request` (older SDKs)."""
    try:
        begun = _fast_begin(args, kwargs)
    except Exception:
        begun = None
    if begun is not None:
        return _fast_end(begun, instance, await wrapped(*args, **kwargs))
    return await _async_request_general(wrapped, instance, args, kwargs)


async def _async_request_general(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call, args, kwargs = _general_begin(instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    if not call.injected:
        finish = _finish_agents if call.operation is AGENT_TURNS else _finish
        return finish(call, await wrapped(*args, **kwargs))
    try:
        result = await wrapped(*args, **kwargs)
    except Exception as exc:
        if not _rejected_injection(exc):
            raise
        args, kwargs = _without_injection(call, instance, args, kwargs)
        result = await wrapped(*args, **kwargs)
    finally:
        _put_back(call)
    return _finish(call, result)


def _direct_request(original: Any) -> Any:
    """The hook on ``SyncAPIClient.request`` as a function with the SDK's own parameters
    (where an SDK's differ, openai 1.40's ``remaining_retries`` for one, :func:`_sync_request`
    hooks it instead: see ``PatchTarget.direct``).

    A hook of the ``(wrapped, instance, args, kwargs)`` form binds the original and packs the
    arguments into a tuple and a dict on every request: measured alone (timeit, on the SDK's
    own arguments and result), that cost 0.75 us of the 2.1 us our hook took. It also has
    :func:`_fast_options` and :func:`_fast_end` written out, the same checks in the same
    order: their two calls and the tuple between them cost 0.2 to 0.3 us more. Our hook now
    takes 1.0 to 1.2 us of a plain call on the caller's thread. The usage is read here too
    (the route's snapshot function written out; embeddings keep theirs), as in
    :func:`_adirect_request`, which has this body with ``await``: keep the two in step.
    """
    bind = original.__get__

    def request(
        self: Any, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        if stream:
            return _stream_request(original, self, cast_to, options, stream_cls)
        try:
            if _suppressed.get() or _capture.watching_unscoped:
                route = None
            else:
                scope = _current_scope.get()
                fields = options.__dict__
                route = _FAST_ROUTES.get(fields["url"])
                body = fields["json_data"]
                if route is not None and (
                    (scope is not None and _capture.capture_listeners)
                    or type(body) is not dict
                    or fields["method"] != "post"
                    or (route[2] and (body.get("background") or fields["extra_json"]))
                ):
                    route = None
                else:
                    model = body.get("model")
                    started = _capture.perf_clock()
        except Exception:
            route = None
        if route is None:
            return _sync_request_general(
                bind(self), self, (cast_to, options), {"stream": stream, "stream_cls": stream_cls}
            )
        result = original(self, cast_to, options, stream_cls=stream_cls)
        ended = _capture.perf_clock()
        try:
            cls = type(result)
            if not (_plain.get(cls) or _is_plain(cls)):
                return _finish_odd(route[0], self, model, started, scope, result)
            fields = result.__dict__
            names = route[3]
            if names is None:  # embeddings
                snap = route[1](fields)
            elif (u := fields["usage"]) is None:
                snap = None
            else:  # the snapshot function (``_openai_extract._usage_reader``), a frame less
                f = u.__dict__
                di = f[names[3]] if names[3] in f else getattr(u, names[3])
                do = f[names[4]] if names[4] in f else getattr(u, names[4])
                snap = (
                    f[names[0]],
                    f[names[1]],
                    f[names[2]],
                    di if di is None or type(di) is dict else di.__dict__,
                    do if do is None or type(do) is dict else do.__dict__,
                    fields.get("service_tier"),
                )
            item = (
                _capture_of,
                route[0],
                self,
                model,
                started,
                ended,
                snap,
                fields["model"],
                fields.get("id"),  # embeddings have none
                fields.get("_request_id") or result.__pydantic_private__,
                _scope.default_scope if scope is None else scope,
                fields.get("status") if route[2] else None,
            )
        except Exception:  # an odd result: the general path reads it defensively
            return _finish_odd(route[0], self, model, started, scope, result)
        try:
            if scope is None:
                _capture.hand_off(item)
            else:
                _capture.submit_scoped(item, scope)
        except Exception:
            internal_error("openai hand-off")
        return result

    return request


def _stream_request(original: Any, client: Any, cast_to: Any, options: Any, stream_cls: Any) -> Any:
    """A stream's request from :func:`_direct_request`: its fast begin, the SDK's request and
    the stream watched, without the general path's bound method, packed arguments and two
    frames of dispatch (a stream's cost is our code's cold-cache misses, which go with the
    frames and objects it touches: see ``bench/instructions.py --misses``)."""
    try:
        call = _fast_stream_begin(client, options)
    except Exception:
        call = None
    if call is None:
        return _sync_request_general(
            original.__get__(client),
            client,
            (cast_to, options),
            {"stream": True, "stream_cls": stream_cls},
        )
    if not call.injected:  # the caller asked for usage: the request goes as it is
        return _finish(call, original(client, cast_to, options, stream=True, stream_cls=stream_cls))
    try:
        result = original(client, cast_to, options, stream=True, stream_cls=stream_cls)
    except Exception as exc:
        if not _rejected_injection(exc):
            raise
        args, kwargs = _without_injection(
            call, client, (cast_to, options), {"stream": True, "stream_cls": stream_cls}
        )
        result = original(client, *args, **kwargs)
    finally:
        _put_back(call)
    return _finish(call, result)


def _adirect_request(original: Any) -> Any:
    """:func:`_direct_request` for ``AsyncAPIClient.request`` (else :func:`_async_request`),
    with the same body: a plain call's begin, usage read and hand-off in this coroutine.

    Through :func:`_fast_options`, :func:`_fast_end` and the snapshot function, three frames
    more, a plain async call cost +7.07 / +7.81 / +6.52 / +7.03 us against +5.93 / +5.91 /
    +5.98 / +6.32 written out (interleaved call by call, alternately, stop 29).
    """
    bind = original.__get__

    async def request(
        self: Any, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        if stream:  # :func:`_stream_request`, in this coroutine
            try:
                call = _fast_stream_begin(self, options)
            except Exception:
                call = None
            if call is not None and not call.injected:
                result = await original(self, cast_to, options, stream=True, stream_cls=stream_cls)
                return _finish(call, result)
            if call is not None:
                try:
                    result = await original(
                        self, cast_to, options, stream=True, stream_cls=stream_cls
                    )
                except Exception as exc:
                    if not _rejected_injection(exc):
                        raise
                    args, kwargs = _without_injection(
                        call, self, (cast_to, options), {"stream": True, "stream_cls": stream_cls}
                    )
                    result = await original(self, *args, **kwargs)
                finally:
                    _put_back(call)
                return _finish(call, result)
            return await _async_request_general(
                bind(self), self, (cast_to, options), {"stream": stream, "stream_cls": stream_cls}
            )
        try:
            if _suppressed.get() or _capture.watching_unscoped:
                route = None
            else:
                scope = _current_scope.get()
                fields = options.__dict__
                route = _FAST_ROUTES.get(fields["url"])
                body = fields["json_data"]
                if route is not None and (
                    (scope is not None and _capture.capture_listeners)
                    or type(body) is not dict
                    or fields["method"] != "post"
                    or (route[2] and (body.get("background") or fields["extra_json"]))
                ):
                    route = None
                else:
                    model = body.get("model")
                    started = _capture.perf_clock()
        except Exception:
            route = None
        if route is None:
            return await _async_request_general(
                bind(self), self, (cast_to, options), {"stream": stream, "stream_cls": stream_cls}
            )
        result = await original(self, cast_to, options, stream_cls=stream_cls)
        ended = _capture.perf_clock()
        try:
            cls = type(result)
            if not (_plain.get(cls) or _is_plain(cls)):
                return _finish_odd(route[0], self, model, started, scope, result)
            fields = result.__dict__
            names = route[3]
            if names is None:  # embeddings
                snap = route[1](fields)
            elif (u := fields["usage"]) is None:
                snap = None
            else:  # the snapshot function (``_openai_extract._usage_reader``), a frame less
                f = u.__dict__
                di = f[names[3]] if names[3] in f else getattr(u, names[3])
                do = f[names[4]] if names[4] in f else getattr(u, names[4])
                snap = (
                    f[names[0]],
                    f[names[1]],
                    f[names[2]],
                    di if di is None or type(di) is dict else di.__dict__,
                    do if do is None or type(do) is dict else do.__dict__,
                    fields.get("service_tier"),
                )
            item = (
                _capture_of,
                route[0],
                self,
                model,
                started,
                ended,
                snap,
                fields["model"],
                fields.get("id"),  # embeddings have none
                fields.get("_request_id") or result.__pydantic_private__,
                _scope.default_scope if scope is None else scope,
                fields.get("status") if route[2] else None,
            )
        except Exception:  # an odd result: the general path reads it defensively
            return _finish_odd(route[0], self, model, started, scope, result)
        try:
            if scope is None:
                _capture.hand_off(item)
            else:
                _capture.submit_scoped(item, scope)
        except Exception:
            internal_error("openai hand-off")
        return result

    return request


def _finish_odd(
    op: str, client: Any, model: Any, started: float, scope: Scope | None, result: Any
) -> Any:
    """A fast-path request whose result was not a plain model: count it the general way."""
    try:
        provider = _provider(client)
        call = _Call(provider, op, _model_for(client, provider, model), started, scope)
    except Exception:
        internal_error("openai request")
        return result
    return _finish(call, result)


def _general_begin(
    client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[_Call | None, tuple[Any, ...], dict[str, Any]]:
    """The start of a call off the plain fast path, for both wrappers: a stream's fast begin
    where it applies, else the general one. ``(None, ...)`` for a call not counted (our own
    traffic, or a request we do not count). A budget's refusal propagates."""
    call: _Call | None
    try:
        stream = len(args) == 2 and kwargs.get("stream")
        call = _fast_stream_begin(client, args[1]) if stream else None
    except Exception:
        call = None
    if call is not None:
        return call, args, kwargs
    if suppressed():
        return None, args, kwargs
    try:
        call, args, kwargs = _begin_request(client, args, kwargs)
    except Exception:
        internal_error("openai request")
    if call is not None and _bills(call):
        try:
            before_call(call.provider, call.model)
        except BaseException:  # refused: the request options get their own body back
            _put_back(call)
            raise
    return call, args, kwargs


def _sync_request_general(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call, args, kwargs = _general_begin(instance, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    if not call.injected:
        finish = _finish_agents if call.operation is AGENT_TURNS else _finish
        return finish(call, wrapped(*args, **kwargs))
    try:
        result = wrapped(*args, **kwargs)
    except Exception as exc:
        if not _rejected_injection(exc):
            raise
        args, kwargs = _without_injection(call, instance, args, kwargs)
        result = wrapped(*args, **kwargs)
    finally:
        _put_back(call)
    return _finish(call, result)


def _without_injection(
    call: _Call, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The server refused ``stream_options``: never inject there again, and send the request
    as the caller made it."""
    _no_inject.add(str(getattr(client, "base_url", "")))
    call.injected = False
    if call.restore is not None:
        _put_back(call)
        return args, kwargs
    return _original_args(args, kwargs)


def _original_args(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Undo the injection (the options copy) so the request goes out as the caller made it."""
    options = args[1] if len(args) > 1 else kwargs["options"]
    body = dict(options.json_data)
    so = dict(body.get("stream_options") or {})
    so.pop("include_usage", None)
    if so:
        body["stream_options"] = so
    else:
        body.pop("stream_options", None)
    new = options.model_copy() if hasattr(options, "model_copy") else copy.copy(options)
    new.json_data = body
    if len(args) > 1:
        return (args[0], new, *args[2:]), kwargs
    return args, {**kwargs, "options": new}


# -- fallback: public resource methods (when the client's request is not where we expect) --------
_RESOURCE_FALLBACK: tuple[tuple[str, str, str], ...] = (
    ("openai.resources.chat.completions", "Completions", "chat.completions"),
    ("openai.resources.chat.completions.completions", "Completions", "chat.completions"),
    ("openai.resources.completions", "Completions", "completions"),
    ("openai.resources.embeddings", "Embeddings", "embeddings"),
    ("openai.resources.responses.responses", "Responses", "responses"),
    ("openai.resources.beta.responses.responses", "Responses", "responses"),
    ("openai.resources.decisions", "Decisions", "decisions"),
)


def _resource_wrapper(operation: str, is_async: bool) -> Any:
    def begin(instance: Any, kwargs: dict[str, Any]) -> _Call:
        client = getattr(instance, "_client", None)
        model = kwargs.get("model")
        return _Call(
            _provider(client),
            operation,
            model if isinstance(model, str) else None,
            now(),
            current_scope(),
            bool(kwargs.get("background")),
        )

    if is_async:

        async def awrapper(
            wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if suppressed():
                return await wrapped(*args, **kwargs)
            call = begin(instance, kwargs)
            before_call(call.provider, call.model)
            return _finish(call, await wrapped(*args, **kwargs))

        return awrapper

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if suppressed():
            return wrapped(*args, **kwargs)
        call = begin(instance, kwargs)
        before_call(call.provider, call.model)
        return _finish(call, wrapped(*args, **kwargs))

    return wrapper


def _fallback_targets() -> list[PatchTarget]:
    """Public resource methods, each class once (some are re-exported under two modules)."""
    targets: list[PatchTarget] = []
    seen: set[int] = set()
    for module, cls, op in _RESOURCE_FALLBACK:
        for prefix, is_async in (("", False), ("Async", True)):
            try:
                resolved = getattr(importlib.import_module(module), prefix + cls)
            except (ImportError, AttributeError):
                continue
            if id(resolved) in seen:
                continue
            seen.add(id(resolved))
            for method in ("create", "parse"):
                if callable(getattr(resolved, method, None)):
                    wrapper = _resource_wrapper(op, is_async)
                    targets.append(PatchTarget(module, f"{prefix}{cls}.{method}", wrapper))
    return targets


# -- decorator-only mode -------------------------------------------------------------------------
_OPERATION_BY_TYPE: dict[str, str] = {
    "ChatCompletion": "chat.completions",
    "ParsedChatCompletion": "chat.completions",
    "Response": "responses",
    "ParsedResponse": "responses",
    "CompactedResponse": "responses",
    "BetaResponse": "responses",
    "BetaCompactedResponse": "responses",
    "Decision": "decisions",
    "Completion": "completions",
    "CreateEmbeddingResponse": "embeddings",
    "ImagesResponse": "images",
    "Transcription": "audio.transcriptions",
    "TranscriptionVerbose": "audio.transcriptions",
    "TranscriptionDiarized": "audio.transcriptions",
    "Batch": BATCHES,
    "Turn": AGENT_TURNS,  # an Agents API session's turn
}


# A stream we watch without a proxy (see :func:`_finish`) is finalised by its close().
_STREAM_CLOSE = (
    PatchTarget("openai._streaming", "Stream.close", close_wrapper),
    PatchTarget("openai._streaming", "AsyncStream.close", aclose_wrapper),
)


class OpenAIIntegration:
    """The adapter object the generic instrumentation drives."""

    name = "openai"
    root_module = "openai"

    def patch_targets(self) -> Sequence[PatchTarget]:
        _resolve_types()
        try:
            base = importlib.import_module("openai._base_client")
            ok = callable(getattr(base.SyncAPIClient, "request", None)) and callable(
                getattr(base.AsyncAPIClient, "request", None)
            )
        except (ImportError, AttributeError):
            ok = False
        from . import _openai_websocket  # Realtime and Responses websockets (their module)

        sockets = _openai_websocket.targets()
        if ok:
            return [
                PatchTarget(
                    "openai._base_client",
                    "SyncAPIClient.request",
                    _sync_request,
                    required=True,
                    lean=True,
                    direct=_direct_request,
                ),
                PatchTarget(
                    "openai._base_client",
                    "AsyncAPIClient.request",
                    _async_request,
                    required=True,
                    lean=True,
                    direct=_adirect_request,
                ),
                *_STREAM_CLOSE,
                *sockets,
            ]
        logger.warning("ai-tokentrace: openai client request() not found; patching public methods")
        return [*_fallback_targets(), *_STREAM_CLOSE, *sockets]

    def capture_returned(self, obj: object) -> bool:
        op = None
        for cls in type(obj).__mro__:
            op = _OPERATION_BY_TYPE.get(cls.__name__)
            if op is not None:
                break
        if op is None:
            return False
        if op == BATCHES:  # counted once, when ended, as ``batches.retrieve`` counts it
            _count_batch(_Call("openai", op, None, now(), _current_scope.get()), obj, None)
            return True
        if op == AGENT_TURNS:  # counted once, when ended, as ``turns.retrieve`` counts it
            agents.count_turn("openai", obj, _current_scope.get(), now(), _request_id_of(obj))
            return True
        model = getattr(obj, "model", None)
        emit(
            "openai",
            op,
            model if isinstance(model, str) else None,
            obj,
            EXTRACTORS[op],
            now(),
            request_id=_request_id_of(obj),
        )
        return True


INTEGRATION = OpenAIIntegration()
