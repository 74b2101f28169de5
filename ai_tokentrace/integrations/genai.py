"""google-genai (Gemini API and Vertex AI): one record per HTTP round trip.

The Interactions API, decisions and voices (``_genai_interactions``), the Live API
(``_genai_live``) and batch jobs (``_genai_batches``) have modules of their own.

The public ``generate_content`` may send several requests (automatic function calling, automatic
continuation) and reports only part of their usage, so the hooks sit on the SDK's private
per-request methods (``Models._generate_content``, ``_generate_content_stream``,
``_embed_content`` and their ``AsyncModels`` twins), which see each request exactly once. Chats,
AFC and continuation all flow through them. On SDK versions without a private method the public
one is patched instead (never both, so nothing is counted twice).

Streams report usage as a running total on every chunk: the stream wrapper keeps a reference to
the latest chunk that carried usage and emits once, when the stream ends, fails, is closed or is
garbage-collected (``partial`` unless it ran to the end). The public stream methods send their
request lazily (on the first chunk asked for), so they get a thin extra wrapper that carries the
caller's ``trace_tokens`` scope to the per-request hook; it counts nothing itself.
"""

from __future__ import annotations

import inspect
import itertools
import operator
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from .. import _capture, _scope
from .._capture import Capture, Extraction, before_call, emit, nonempty_str, now
from .._internal import _suppressed, internal_error
from .._record import RawUsage
from .._scope import _current as _current_scope
from ._base import PatchTarget, Wrapper

__all__ = [
    "INTEGRATION",
    "TIER_HEADER",
    "GenaiIntegration",
    "extract_embed_content",
    "extract_generate_content",
]

GEMINI = "gcp.gemini"
VERTEX = "gcp.vertex_ai"
GENERATE = "generate_content"
EMBED = "embed_content"

_MODELS = "google.genai.models"

# SDK usage fields holding per-modality lists -> the key kept in the record's details.
_MODALITY_FIELDS = (
    "prompt_tokens_details",
    "candidates_tokens_details",
    "cache_tokens_details",
    "tool_use_prompt_tokens_details",
    "response_tokens_details",
)
# The Gemini API names the tier that served a call (``standard``, ``flex``, ``priority``: a
# priority call over its limit is served as standard) in this response header; its
# generate_content usage_metadata has no field for it. Vertex AI says it in ``traffic_type``.
TIER_HEADER = "x-gemini-service-tier"
_USAGE_NAMES = (
    *_MODALITY_FIELDS,
    "prompt_token_count",
    "candidates_token_count",
    "response_token_count",
    "total_token_count",
    "cached_content_token_count",
    "thoughts_token_count",
    "tool_use_prompt_token_count",
    "traffic_type",
    "service_tier",
    "modality",
    "token_count",
)


# -- pure extractors (run later, on the background loop) ------------------------------------


def _fields(obj: object) -> dict[str, Any]:
    """An SDK (pydantic) object's field values; missing names then cost a dict miss, not an
    AttributeError raised through pydantic's ``__getattr__``."""
    if type(obj) is dict:  # a fast-path snapshot is the usage object's field dict already
        return obj
    values = getattr(obj, "__dict__", None)
    if isinstance(values, dict):
        return values
    return {name: getattr(obj, name, None) for name in _USAGE_NAMES}


def _modality_pair(item: object) -> tuple[object, object]:
    """``(modality, token_count)`` of one ModalityTokenCount."""
    fields = _fields(item)
    return fields.get("modality"), fields.get("token_count")


def _modality_counts(items: object) -> dict[str, object] | None:
    if not isinstance(items, (list, tuple)) or not items:
        return None
    # kept by the hot path as one flat tuple (modality, count, modality, ...), else the SDK's
    # list of ModalityTokenCount
    pairs: Iterable[tuple[object, object]] = (
        zip(items[::2], items[1::2], strict=False)
        if type(items) is tuple
        else map(_modality_pair, items)
    )
    out: dict[str, object] = {}
    for modality, count in pairs:
        if isinstance(modality, str):  # MediaModality is a str enum: its raw value, cheaply
            key = str.__str__(modality)
        elif modality is None:
            key = "UNSPECIFIED"
        else:
            key = str(getattr(modality, "value", modality))
        previous = out.get(key)
        if isinstance(count, (int, float)) and isinstance(previous, (int, float)):
            out[key] = previous + count
        else:
            out[key] = count
    return out


def _details(fields: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for name in _MODALITY_FIELDS:
        items = fields.get(name)
        if items:
            counts = _modality_counts(items)
            if counts:
                details[name] = counts
    for name in ("traffic_type", "service_tier"):
        value = fields.get(name)
        if value is not None:
            details[name] = str(getattr(value, "value", value))
    return details


_PAIR = operator.attrgetter("modality", "token_count")
_FLAT = itertools.chain.from_iterable


def _raw_usage(usage: object) -> RawUsage:
    """Gemini's usage_metadata by meaning; thoughts are reported apart from candidates."""
    fields = _fields(usage)
    completion = fields.get("candidates_token_count")
    if completion is None:  # UsageMetadata (embeddings, live) names it response_token_count
        completion = fields.get("response_token_count")
    return RawUsage(
        prompt=fields.get("prompt_token_count"),
        completion=completion,
        total=fields.get("total_token_count"),
        cached=fields.get("cached_content_token_count"),
        reasoning=fields.get("thoughts_token_count"),
        reasoning_in_completion=False,
        tool_prompt=fields.get("tool_use_prompt_token_count"),
        details=_details(fields),
    )


def _usage_from_http_body(response: object) -> RawUsage | None:
    """``should_return_http_response=True`` gives only the raw body: read usage off it."""
    body = getattr(getattr(response, "sdk_http_response", None), "body", None)
    if not body:
        return None
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return None
    usage = data.get("usageMetadata") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return None
    return RawUsage(
        prompt=usage.get("promptTokenCount"),
        completion=usage.get("candidatesTokenCount"),
        total=usage.get("totalTokenCount"),
        cached=usage.get("cachedContentTokenCount"),
        reasoning=usage.get("thoughtsTokenCount"),
        reasoning_in_completion=False,
        tool_prompt=usage.get("toolUsePromptTokenCount"),
    )


def extract_generate_content(response: Any) -> Extraction:
    """A GenerateContentResponse (or the last stream chunk with usage) -> usage, model, id."""
    usage = getattr(response, "usage_metadata", None)
    raw = _raw_usage(usage) if usage is not None else _usage_from_http_body(response)
    if raw is not None:
        headers = getattr(getattr(response, "sdk_http_response", None), "headers", None)
        tier = headers.get(TIER_HEADER) if isinstance(headers, Mapping) else None
        if isinstance(tier, str) and tier:
            raw.details = {**raw.details, "service_tier": tier}
    return raw, getattr(response, "model_version", None), getattr(response, "response_id", None)


def extract_embed_content(response: Any) -> Extraction:
    """An EmbedContentResponse: usage_metadata, or Vertex ``predict`` per-embedding statistics."""
    usage = getattr(response, "usage_metadata", None)
    raw: RawUsage | None = None
    if usage is not None:
        raw = _raw_usage(usage)
    else:
        counts = [
            getattr(getattr(e, "statistics", None), "token_count", None)
            for e in getattr(response, "embeddings", None) or ()
        ]
        if counts and any(c is not None for c in counts):
            prompt = sum(int(c) for c in counts if isinstance(c, (int, float)))
            raw = RawUsage(prompt=prompt, completion=0)
    if raw is not None:
        chars = getattr(getattr(response, "metadata", None), "billable_character_count", None)
        if chars is not None:
            raw = RawUsage(
                prompt=raw.prompt,
                completion=raw.completion,
                total=raw.total,
                cached=raw.cached,
                reasoning=raw.reasoning,
                reasoning_in_completion=False,
                tool_prompt=raw.tool_prompt,
                details={**raw.details, "billable_character_count": chars},
            )
    return raw, None, None


# -- the hot path ----------------------------------------------------------------------------


def _provider(instance: Any) -> str:
    try:
        return VERTEX if instance._api_client.vertexai else GEMINI
    except AttributeError:
        return GEMINI


def _model(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    model = kwargs.get("model")
    if model is None and args:
        model = args[0]
    return model if isinstance(model, str) else None


# generate_content is recorded from a snapshot: ``(builder, models, model, started, ended, usage
# fields, model version, response id, scope)``; the response object itself is not kept (see
# ``_capture``). The snapshot holds the usage object's field dict, copied, so the record reads
# the same numbers the object had, with each per-modality list made one flat tuple
# ``(modality, count, modality, count, ...)`` (in C). The lists hold SDK objects made for this
# response; held in the queue for up to a batch of calls, they outlived the collector's young
# generations and made its full collections twice as frequent (``bench/overhead.py``'s
# collector figures). Counts, strings and the SDK's enum members are nothing for the collector
# to follow, and one tuple a list, not a tuple of pairs, leaves it fewer objects to count: a
# text-only call keeps four objects rather than six. An odd item, like any odd response, leaves
# the response to the defensive extractor. Outside a scope the tuple is queued as is; inside
# one the scope shares it (``_capture.submit_snapshot``). A stream's end
# (:func:`_finish_stream`) reads its last usage the same way.
def _record_generate(
    instance: Any, model: str | None, started: float, response: Any, scope: Any, fast: bool
) -> None:
    """generate_content's one record, for a call made in ``scope`` (None: outside any).

    ``fast``: the wrapper saw ``may_snapshot()`` before the call, so the snapshot is queued (or
    shared with the scope) without asking again.
    """
    ended = _capture.perf_clock()
    try:  # in this frame: a frame of its own cost a call 0.74 us (``bench/RESULTS.md``, stop 28)
        fields = response.__dict__
        usage = fields["usage_metadata"]
        if usage is not None:
            kept = usage.__dict__.copy()
            for name in _MODALITY_FIELDS:
                items = kept.get(name)
                if items:
                    kept[name] = (
                        _PAIR(items[0]) if len(items) == 1 else tuple(_FLAT(map(_PAIR, items)))
                    )
            http = fields.get("sdk_http_response")  # the tier that served it (see TIER_HEADER)
            if http is not None and (headers := http.headers) and TIER_HEADER in headers:
                kept["service_tier"] = headers[TIER_HEADER]
    except Exception:  # an odd response: the extractor reads it defensively
        usage = None
    if usage is None:
        emit(
            _provider(instance),
            GENERATE,
            model,
            response,
            extract_generate_content,
            started,
            scope=scope,
        )
        return
    item = (
        _capture_of,
        instance,
        model,
        started,
        ended,
        kept,
        fields.get("model_version"),
        fields.get("response_id"),  # older releases have none
        _scope.default_scope if scope is None else scope,  # scope_or_default, a frame less
    )
    if not fast:
        _capture.submit_snapshot(item, scope)
        return
    try:
        if scope is None:
            _capture.hand_off(item)
        else:
            _capture.submit_scoped(item, scope)
    except Exception:
        internal_error("genai hand-off")


def _capture_of(item: tuple[Any, ...]) -> Capture:
    """The Capture for :func:`_record_generate`'s snapshot."""
    _, instance, model, started, ended, fields, version, rid, scope = item
    return _capture.snapshot_capture(
        _provider(instance),
        GENERATE,
        model,
        fields,
        _extract_fields,
        started,
        ended,
        scope,
        False,
        "ok",
        nonempty_str(version),
        nonempty_str(rid),
        None,  # request_id: the Gemini API sends none we read
        None,
    )


def _extract_fields(fields: Any) -> Extraction:
    return _raw_usage(fields), None, None


# What a general-path wrapper does with the response: (instance, provider, model, started,
# response) -> None.
_Record = Callable[[Any, str, "str | None", float, Any], None]


def _emit_whole(operation: str, extract: Callable[[Any], Extraction]) -> _Record:
    """Record the response itself; ``extract`` reads it on the loop."""

    def record(
        instance: Any, provider: str, model: str | None, started: float, response: Any
    ) -> None:
        emit(provider, operation, model, response, extract, started)

    return record


def _record_generate_here(
    instance: Any, provider: str, model: str | None, started: float, response: Any
) -> None:
    _record_generate(instance, model, started, response, _current_scope.get(), False)


def _unary_generate() -> tuple[Wrapper, Wrapper]:
    """generate_content wrappers (sync, async), for an SDK whose ``_generate_content`` takes
    other parameters than :func:`_direct_generate`'s: the fast path, else :func:`_unary`'s."""
    slow, aslow = _unary(_record_generate_here), _aunary(_record_generate_here)

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not _capture.may_snapshot():  # rare: our own traffic, or a budget watching
            return slow(wrapped, instance, args, kwargs)
        scope = _current_scope.get()
        model = _model(args, kwargs)
        started = _capture.perf_clock()
        response = wrapped(*args, **kwargs)
        _record_generate(instance, model, started, response, scope, True)
        return response

    async def awrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not _capture.may_snapshot():  # rare (a budget watching): one coroutine more
            return await aslow(wrapped, instance, args, kwargs)
        scope = _current_scope.get()
        model = _model(args, kwargs)
        started = _capture.perf_clock()
        response = await wrapped(*args, **kwargs)
        _record_generate(instance, model, started, response, scope, True)
        return response

    return wrapper, awrapper


def _direct_generate(original: Any) -> Any:
    """``Models._generate_content``'s hook with the SDK's own parameters (where an SDK's
    differ, :func:`_unary_generate`'s wrapper instead): nothing bound or packed per request
    (see ``openai._direct_request``). A plain call measured +5.4 / +6.0 us with it against
    +7.6 / +7.6 with the wrapper (interleaved, the two versions run alternately). It has
    ``may_snapshot`` written out, the same checks in the same order (inline, a plain call cost
    0.6 to 1.7 us less when the wrapper had it, stop 20); writing :func:`_record_generate` out
    as well made it no faster (timed alone: 1.9 to 2.5 us against 1.9 to 2.1)."""
    slow = _unary(_record_generate_here)
    bind = original.__get__

    def _generate_content(self: Any, *, model: Any, contents: Any, config: Any = None) -> Any:
        try:
            scope = _current_scope.get()
            fast = not (
                _suppressed.get()
                or _capture.watching_unscoped
                or (scope is not None and _capture.capture_listeners)
            )
            if fast:
                started = _capture.perf_clock()
        except Exception:
            fast = False
        if not fast:
            kwargs = {"model": model, "contents": contents, "config": config}
            return slow(bind(self), self, (), kwargs)
        response = original(self, model=model, contents=contents, config=config)
        _record_generate(
            self, model if isinstance(model, str) else None, started, response, scope, True
        )
        return response

    return _generate_content


def _adirect_generate(original: Any) -> Any:
    """:func:`_direct_generate` for ``AsyncModels._generate_content``, with the same checks
    written out (through ``may_snapshot`` and ``settles_now``, two frames more: +5.22 / +5.87 /
    +5.38 us a call against +5.32 / +5.08 / +4.96, interleaved, alternately, stop 25)."""
    aslow = _aunary(_record_generate_here)
    bind = original.__get__

    async def _generate_content(self: Any, *, model: Any, contents: Any, config: Any = None) -> Any:
        scope = _current_scope.get()
        if (  # not _capture.may_snapshot(), inline as in the sync hook
            _suppressed.get()
            or _capture.watching_unscoped
            or (scope is not None and _capture.capture_listeners)
        ):  # rare (a budget watching): one coroutine more
            kwargs = {"model": model, "contents": contents, "config": config}
            return await aslow(bind(self), self, (), kwargs)
        started = _capture.perf_clock()
        response = await original(self, model=model, contents=contents, config=config)
        _record_generate(
            self, model if isinstance(model, str) else None, started, response, scope, True
        )
        return response

    return _generate_content


def _unary(record: _Record) -> Any:
    """Wrapper for one request answered by one response object (sync)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _suppressed.get():
            return wrapped(*args, **kwargs)
        provider = _provider(instance)
        model = _model(args, kwargs)
        before_call(provider, model)
        started = now()
        response = wrapped(*args, **kwargs)
        record(instance, provider, model, started, response)
        return response

    return wrapper


def _aunary(record: _Record) -> Any:
    """Wrapper for one request answered by one response object (async)."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _suppressed.get():
            return await wrapped(*args, **kwargs)
        provider = _provider(instance)
        model = _model(args, kwargs)
        before_call(provider, model)
        started = now()
        response = await wrapped(*args, **kwargs)
        record(instance, provider, model, started, response)
        return response

    return wrapper


# A stream's begin: ``(the SDK's Models object, requested model, start time, scope)``. The
# provider is read off the Models object when the record is built, on the loop (as for
# generate_content), not as the stream begins.
_StreamCall = tuple[Any, "str | None", float, Any]


def _finish_stream(
    call: _StreamCall,
    status: str,
    error: BaseException | None,
    last: Any,
    usage_chunk: Any,
) -> None:
    """Emit the one record of a streamed request (called exactly once, from a ``finally``).

    A stream that failed before its first chunk is like a failed call: no usage, no record.
    The chunk with the last usage is not kept: its usage is read here as
    :func:`_record_generate` reads a response's, and outside a scope the snapshot is queued
    here, both without a frame of their own (a cold frame costs a stream about 1 us).
    """
    if last is None and error is not None:
        return
    instance, model, started, scope = call
    error_type = type(error).__name__ if error is not None else None
    kept = None
    if usage_chunk is not None:
        try:
            fields = usage_chunk.__dict__
            kept = fields["usage_metadata"].__dict__.copy()
            for name in _MODALITY_FIELDS:
                items = kept.get(name)
                if items:
                    kept[name] = (
                        _PAIR(items[0]) if len(items) == 1 else tuple(_FLAT(map(_PAIR, items)))
                    )
            http = fields.get("sdk_http_response")  # as :func:`_record_generate` reads it
            if http is not None and (headers := http.headers) and TIER_HEADER in headers:
                kept["service_tier"] = headers[TIER_HEADER]
        except Exception:  # an odd chunk: the extractor reads it defensively
            kept = None
    if kept is None:
        emit(
            _provider(instance),
            GENERATE,
            model,
            last,
            extract_generate_content,
            started,
            streamed=True,
            status=status,
            error_type=error_type,
            scope=scope,
        )
        return
    item = (
        _stream_capture_of,
        call,
        _capture.perf_clock(),
        kept,
        fields.get("model_version"),
        fields.get("response_id"),  # older releases have none
        status,
        error_type,
        _scope.default_scope if scope is None else scope,  # scope_or_default, a frame less
    )
    if scope is None and not _capture.watching_unscoped:
        _capture.hand_off(item)  # ``submit_snapshot``'s way outside any scope, a frame less
    else:
        _capture.submit_snapshot(item, scope)


def _stream_capture_of(item: tuple[Any, ...]) -> Capture:
    """The Capture for a finished stream's snapshot (see :func:`_finish_stream`)."""
    _, call, ended, fields, version, rid, status, error_type, scope = item
    instance, model, started, _ = call
    return _capture.snapshot_capture(
        _provider(instance),
        GENERATE,
        model,
        fields,
        _extract_fields,
        started,
        ended,
        scope,
        True,
        status,
        nonempty_str(version),
        nonempty_str(rid),
        None,
        error_type,
    )


def _stream(chunks: Any, call: _StreamCall) -> Iterator[Any]:
    """The SDK's chunks, passed through one by one; one record when the stream ends.

    A generator, like the SDK's own: its ``finally`` runs at the end, on an error, on
    ``close()`` and when an abandoned stream is garbage-collected. Per chunk it only keeps a
    reference to the latest chunk carrying usage (a running total, so never summed).
    """
    last = usage_chunk = None
    status, error = "partial", None
    try:
        for chunk in chunks:
            last = chunk
            if getattr(chunk, "usage_metadata", None) is not None:
                usage_chunk = chunk
            yield chunk
        status = "ok"
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            # Runs only if the body started: a sync stream sends its request on the first chunk
            # asked for, so a stream never iterated sent nothing and records nothing.
            _finish_stream(call, status, error, last, usage_chunk)
        except Exception:
            internal_error("genai stream")


async def _astream(chunks: Any, call: _StreamCall) -> AsyncIterator[Any]:
    """The async twin of :func:`_stream` (the request was sent before it is handed back)."""
    last = usage_chunk = None
    status, error = "partial", None
    try:
        async for chunk in chunks:
            last = chunk
            if getattr(chunk, "usage_metadata", None) is not None:
                usage_chunk = chunk
            yield chunk
        status = "ok"
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            _finish_stream(call, status, error, last, usage_chunk)
        except Exception:
            internal_error("genai stream")


# The public stream methods send their request lazily, on the first chunk the caller asks for,
# maybe after the caller's scope has closed. Their wrapper carries the scope active when the
# caller made the call to the per-request hook through this variable (set only while the SDK
# computes the next chunk, never while the caller holds it).
_NO_SCOPE: Any = object()
_call_scope: ContextVar[Any] = ContextVar("ai_tokentrace_genai_call_scope", default=_NO_SCOPE)


def _stream_call(instance: Any, model: Any) -> _StreamCall:
    model = model if isinstance(model, str) else None
    if _capture.pre_call_guards:  # a budget's (``before_call``): none, and no frame for them
        before_call(_provider(instance), model)
    scope = _call_scope.get()
    if scope is _NO_SCOPE:
        scope = _current_scope.get()
    return instance, model, _capture.perf_clock(), scope


def _wrap_stream(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if _suppressed.get():
        return wrapped(*args, **kwargs)
    call = _stream_call(instance, _model(args, kwargs))
    return _stream(wrapped(*args, **kwargs), call)


def _wrap_astream(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if _suppressed.get():
        return wrapped(*args, **kwargs)
    call = _stream_call(instance, _model(args, kwargs))
    result = wrapped(*args, **kwargs)
    if hasattr(result, "__aiter__"):  # older SDKs: an async generator, iterated directly
        return _astream(result, call)
    return _await_stream(result, call)  # 1.x and later: awaited, then iterated


async def _await_stream(pending: Any, call: _StreamCall) -> Any:
    return _astream(await pending, call)


def _direct_stream(original: Any) -> Any:
    """``Models._generate_content_stream``'s hook with the SDK's own parameters: a plain
    function handing back :func:`_stream` over the SDK's generator, with nothing bound or
    packed. Only the SDK's own loop calls it, from inside its public generator, so its
    begin runs when it would have (on the first chunk asked for)."""

    def _generate_content_stream(
        self: Any, *, model: Any, contents: Any, config: Any = None
    ) -> Any:
        if _suppressed.get():
            return original(self, model=model, contents=contents, config=config)
        call = _stream_call(self, model)
        return _stream(original(self, model=model, contents=contents, config=config), call)

    return _generate_content_stream


def _adirect_stream(original: Any) -> Any:
    """``AsyncModels._generate_content_stream``'s hook with the SDK's own parameters where it
    is a coroutine function (awaited, then iterated): :func:`_wrap_astream` and
    :func:`_await_stream` in one coroutine, with nothing bound or packed (see
    :func:`_direct_generate`). Older SDKs' async generator function keeps the wrapper."""
    if not inspect.iscoroutinefunction(original):
        return None

    async def _generate_content_stream(
        self: Any, *, model: Any, contents: Any, config: Any = None
    ) -> Any:
        if _suppressed.get():
            return await original(self, model=model, contents=contents, config=config)
        call = _stream_call(self, model)
        chunks = await original(self, model=model, contents=contents, config=config)
        return _astream(chunks, call)

    return _generate_content_stream


def _carry_scope(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Public ``Models.generate_content_stream``: remember the caller's scope; counts nothing.

    Called only inside a scope: outside any there is nothing to carry, and wrapt hands the
    caller the SDK's generator untouched without calling this (its ``enabled`` switch is
    ``_current_scope.get``, asked from C), which took 2.4 us off an async 3-chunk stream
    (+16.55 to +14.16, seven alternate runs, lower in all seven; sync within the noise,
    +12.83 to +12.47; stop 30). A scope is never false (it defines neither ``__bool__`` nor
    ``__len__``).
    """
    if _suppressed.get():
        return wrapped(*args, **kwargs)
    return _scoped(wrapped(*args, **kwargs), _current_scope.get())


def _scoped(chunks: Iterator[Any], scope: Any) -> Iterator[Any]:
    var = _call_scope
    step = chunks.__next__
    try:
        while True:
            outer = var.get()
            var.set(scope)  # set, not reset(token): the caller may iterate from another context
            try:
                chunk = step()
            except StopIteration:
                return
            finally:
                var.set(outer)
            yield chunk
    finally:
        close = getattr(chunks, "close", None)  # closing ours closes the SDK's, as before
        if close is not None:
            close()


def _acarry_scope(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Public ``AsyncModels.generate_content_stream``: the async twin of :func:`_carry_scope`
    (called only inside a scope, as it is)."""
    if _suppressed.get():
        return wrapped(*args, **kwargs)
    return _ascoped_after(wrapped(*args, **kwargs), _current_scope.get())


async def _ascoped_after(pending: Any, scope: Any) -> Any:
    return _ascoped(await pending, scope)


async def _ascoped(chunks: Any, scope: Any) -> AsyncIterator[Any]:
    var = _call_scope
    step = chunks.__anext__
    try:
        while True:
            outer = var.get()
            var.set(scope)
            try:
                chunk = await step()
            except StopAsyncIteration:
                return
            finally:
                var.set(outer)
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


# -- patch targets and decorator-only mode ---------------------------------------------------


def _first_present(cls: Any, names: Sequence[str]) -> str | None:
    for name in names:
        if name in vars(cls):
            return name
    return None


# Decorator-only mode: the generated client's results, by class name -> their operation's name
# in ``_genai_interactions``
_GENERATED_KINDS = {
    "Interaction": "INTERACTIONS",
    "CreateDecisionResponse": "DECISIONS",
    "VoiceOutput": "VOICES",
}


class GenaiIntegration:
    """The google-genai adapter (see the module docstring for where it hooks and why)."""

    name = "genai"
    root_module = "google.genai"

    def patch_targets(self) -> Sequence[PatchTarget]:
        from google.genai import models

        targets: list[PatchTarget] = []
        generate = _unary_generate()
        record_embed = _emit_whole(EMBED, extract_embed_content)
        embed = (_unary(record_embed), _aunary(record_embed))
        # (names to try, private per-request method first; (sync wrapper, async wrapper);
        # (sync, async) direct hooks, see PatchTarget)
        no_direct = (None, None)
        plan: tuple[tuple[tuple[str, ...], tuple[Wrapper, Wrapper], tuple[Any, Any]], ...] = (
            (
                ("_generate_content", "generate_content"),
                generate,
                (_direct_generate, _adirect_generate),
            ),
            (
                ("_generate_content_stream", "generate_content_stream"),
                (_wrap_stream, _wrap_astream),
                (_direct_stream, _adirect_stream),
            ),
            (("_embed_content", "embed_content"), embed, no_direct),
        )
        carriers: tuple[Wrapper, Wrapper] = (_carry_scope, _acarry_scope)
        for side, cls_name in enumerate(("Models", "AsyncModels")):
            cls = getattr(models, cls_name, None)
            if cls is None:
                continue
            for names, wrappers, directs in plan:
                attribute = _first_present(cls, names)
                if attribute is not None:
                    # lean: skips wrapt's binding where the method is a plain or coroutine
                    # function; the sync stream generator keeps wrapt's (see PatchTarget).
                    # The direct hooks are written for the private per-request methods, which
                    # only the SDK calls: a public fallback keeps the wrapper (a generator
                    # function stays one, and an async call's scope is read when it is made).
                    hook = PatchTarget(
                        _MODELS,
                        f"{cls_name}.{attribute}",
                        wrappers[side],
                        lean=True,
                        direct=directs[side] if attribute == names[0] else None,
                    )
                    targets.append(hook)
            if "_generate_content_stream" in vars(cls) and "generate_content_stream" in vars(cls):
                target = f"{cls_name}.generate_content_stream"
                # only inside a scope is there one to carry: outside, wrapt calls the SDK's
                # method itself, without the carrier's frame (``enabled``, see PatchTarget)
                targets.append(
                    PatchTarget(_MODELS, target, carriers[side], enabled=_current_scope.get)
                )
        # APIs with modules of their own
        from . import _genai_batches, _genai_interactions, _genai_live

        targets.extend(_genai_interactions.targets())
        targets.extend(_genai_live.targets())
        targets.extend(_genai_batches.targets())
        return targets

    def capture_returned(self, obj: object) -> bool:
        """Decorator-only mode: a returned GenerateContentResponse / EmbedContentResponse, an
        Interaction / CreateDecisionResponse / VoiceOutput (a Gemini API one: the object names
        no provider), or a BatchJob."""
        kind = type(obj).__name__
        if kind in _GENERATED_KINDS:
            from . import _genai_interactions as gi

            operation = getattr(gi, _GENERATED_KINDS[kind])
            try:
                detached = gi.detach(obj)
                emit(GEMINI, operation, detached[1], detached, gi.extract, now())
            except Exception:
                internal_error("genai capture_returned")
            return True
        if kind == "BatchJob":  # counted once, when ended, as ``batches.get`` counts it
            from . import _genai_batches

            try:
                _genai_batches.seen(None, obj, now(), _current_scope.get())
            except Exception:
                internal_error("genai capture_returned")
            return True
        if kind == "GenerateContentResponse":
            extract: Callable[[Any], Extraction] = extract_generate_content
            operation = GENERATE
        elif kind == "EmbedContentResponse":
            extract, operation = extract_embed_content, EMBED
        else:
            return False
        try:
            # Vertex AI stamps responses with create_time; the Gemini API does not.
            provider = VERTEX if getattr(obj, "create_time", None) is not None else GEMINI
            model = getattr(obj, "model_version", None)
            emit(provider, operation, model, obj, extract, now())
        except Exception:
            internal_error("genai capture_returned")
        return True


INTEGRATION = GenaiIntegration()
