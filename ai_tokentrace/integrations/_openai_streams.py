"""One record per OpenAI ``Stream`` / ``AsyncStream``, with the caller's object unchanged.

A chat or completion stream whose usage we ask for is watched one level lower, where the SDK
reads its server-sent events (:func:`_hide_usage`): that filter takes the usage chunk off the
stream (keeping its text), and sees the end (``[DONE]``), an error event or a broken
connection. The caller then gets the SDK's own stream object (:func:`watch`); its ``close()``
(which ``with`` calls) is wrapped on the class to finalise it, and an abandoned stream is
finalised when its :class:`StreamState` is freed: the state is held by the stream's instance
dict and by the filter (which the SDK's generator holds), so it goes with the stream.

Every other stream (one the caller asked usage of, Responses, images, audio, or an SDK that
reads its events otherwise) comes in a transparent proxy (iteration, ``with``, ``close()``,
``.response``, the SDK's stream helpers on top) that notices the chunk carrying usage. Either
way the record is emitted once: at the end, on ``close()``, on leaving ``with``, on an error, or
when an abandoned stream is garbage-collected.
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import wrapt

from .._internal import internal_error
from ._openai_extract import Detached

if TYPE_CHECKING:
    from .openai import _Call

__all__ = [
    "AsyncStreamProxy",
    "StreamProxy",
    "StreamState",
    "aclose_wrapper",
    "awatch",
    "close_wrapper",
    "header_request_id",
    "noticer_for",
    "watch",
]

_BaseProxy: Any = getattr(wrapt, "BaseObjectProxy", None) or wrapt.ObjectProxy

# Responses stream events: the terminal ones carry the full response with usage.
_RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# None: older SDKs turn an ``event: error`` SSE into an untyped object (``.event == "error"``).
_RESPONSES_WATCH = _RESPONSES_FINAL | {"response.created", "error", None}

# A noticer looks at one chunk: returns True to hide it from the caller (our injected usage chunk).
Noticer = Callable[["StreamState", Any], bool]


def header_request_id(headers: Any) -> str | None:
    """The ``x-request-id`` of a response's headers (None: none, or no headers)."""
    try:
        rid = headers.get("x-request-id")
    except Exception:
        return None
    return rid if isinstance(rid, str) else None


class StreamState:
    """One stream's bookkeeping, kept off the proxy so per-chunk updates are plain slot stores."""

    __slots__ = (
        "__weakref__",
        "call",
        "detached",
        "done",
        "error",
        "failed",
        "payload",
        "response",
        "response_id",
    )

    def __init__(self, stream: Any, call: _Call) -> None:
        self.response = getattr(stream, "response", None)  # its request id is read at the end
        self.call = call
        self.payload: Any = None  # the object holding usage, once seen
        # or what a record needs of it: read off a parsed chunk (which is then let go), or the
        # usage event's JSON, as text or as we parsed it (read on the loop)
        self.detached: Detached | dict[str, Any] | str | None = None
        self.response_id: str | None = None  # Responses: from response.created
        self.failed = False  # Responses: response.failed seen
        self.error: str | None = None  # Responses: an error event's code
        self.done = False

    def request_id(self) -> str | None:
        return header_request_id(getattr(self.response, "headers", None))

    def finalise(self, ended: bool, exc: BaseException | None = None) -> None:
        """Emit the stream's one record (only the first call does anything)."""
        if self.done:
            return
        self.done = True
        try:
            _finish_stream(self, ended, exc)
        except Exception:
            internal_error("openai stream finalise")

    def __del__(self) -> None:
        # Nothing can read the stream on: an abandoned one is recorded with what we know
        # (status "partial" when it ended before usage arrived).
        if not self.done:
            with contextlib.suppress(Exception):
                self.finalise(False)


def _finish_stream(state: StreamState, ended: bool, exc: BaseException | None) -> None:
    global _finish_stream
    from .openai import finish_stream  # the adapter imports this module: bind it late, once

    _finish_stream = finish_stream
    finish_stream(state, ended, exc)


# -- the injected usage chunk, taken off the event stream before the SDK parses it --------------
# Per event: one search for ``"usage"`` from the end (where OpenAI writes it, before at most an
# ``obfuscation`` padding), then a look at what follows it. Every chunk of a stream that asked
# for usage has ``"usage":null``; only the last has an object. We take that chunk (its text,
# parsed on the loop; see ``_took``) and the SDK builds no model for it. A spelling of null this
# does not know is parsed to be sure. So the filter sees every usage object, and the proxy of a
# filtered stream has nothing to look at per chunk. (Searching from the end, then one
# ``startswith``, took a chunk with ``"usage":null`` from 281 to 166 ns, a chunk without usage
# from 151 to 121.)
_USAGE_KEY = '"usage"'
_AFTER_NULL = (":null", ": null")  # what follows the key when it is null, compact or spaced
_KEY_END = len(_USAGE_KEY)


def _usage_chunk(data: str) -> dict[str, Any] | None:
    """The parsed chunk when ``data`` carries a usage object, else None."""
    try:
        chunk = json.loads(data)
    except ValueError:
        return None
    if type(chunk) is not dict or type(chunk.get("usage")) is not dict:
        return None
    return chunk


# The usage-only chunk as OpenAI writes it (compact), or as Python's json writes it (spaced).
_USAGE_OBJECT = ('"usage":{', '"usage": {')
_NO_CHOICES = ('"choices":[]', '"choices": []')


def _took(state: StreamState, data: str) -> bool:
    """An event naming usage: keep a usage object for the record; True to hide the event (the
    usage-only chunk; usage on a chunk with choices reaches the caller). The filter is set
    only on a stream whose usage we asked for (see :func:`watch`), so it is ours to hide.

    The usage-only chunk in a known spelling is recognised without parsing (its keys are the
    top-level ones: inside a JSON string every quote is escaped) and kept as text, which the
    background loop parses; any other is parsed here, to decide.
    """
    try:
        if (_USAGE_OBJECT[0] in data or _USAGE_OBJECT[1] in data) and (
            _NO_CHOICES[0] in data or _NO_CHOICES[1] in data
        ):
            state.detached = data
            return True
        chunk = _usage_chunk(data)
        if chunk is None:
            return False
        state.detached = chunk
        return not chunk.get("choices")
    except Exception:
        internal_error("openai usage event")
        return False


def _data_of(sse: Any) -> str:
    """The event's text through the SDK's ``data`` property, for an event without ``_data``
    (the filters read that directly: one Python call less per event)."""
    data = sse.data
    return data if type(data) is str else str(data)


_DONE = "[DONE]"
_ERROR = '{"error"'  # as OpenAI writes an error event (one spelled otherwise ends as abandoned)


def _let_go(state: StreamState, last: str) -> None:
    """The SDK let go of its events after ``last``: at ``[DONE]`` the stream ended; on an
    error event the SDK raised APIError; after any other the stream was dropped, and the
    state records it as abandoned once nothing holds it. Looking only at the last event keeps
    these checks out of the per-event loop."""
    if last.startswith(_DONE):
        state.finalise(True)
    elif last.startswith(_ERROR):
        try:
            body = json.loads(last)
        except ValueError:
            return
        if type(body) is dict and body.get("error"):
            state.error = "APIError"
            state.finalise(False)


def _hide_usage(state: StreamState, events: Iterator[Any]) -> Iterator[Any]:
    """Between the SDK's SSE decoder and its parser: per event, one search for the usage key
    from the end and one look at what follows it."""
    key, end, null = _USAGE_KEY, _KEY_END, _AFTER_NULL
    data = ""
    try:
        for sse in events:
            try:
                data = sse._data
            except AttributeError:
                data = _data_of(sse)
            at = data.rfind(key)
            if at >= 0 and not data.startswith(null, at + end) and _took(state, data):
                continue
            yield sse
    except GeneratorExit:  # the SDK let go (its generator ended, or its stream was dropped)
        _let_go(state, data)
        raise
    except BaseException as exc:
        state.finalise(False, exc)
        raise
    state.finalise(True)


class _AsyncHideUsage:
    """``_hide_usage`` for async streams, as a plain async iterator, not an async generator.

    The SDK stops reading at ``[DONE]`` and drops its events iterator suspended; a suspended
    async generator is closed by a task the event loop schedules (one more per stream, on the
    caller's loop), an iterator object is simply freed, and tells :func:`_let_go` so.
    """

    __slots__ = ("_last", "_next", "_state")

    def __init__(self, state: StreamState, events: AsyncIterator[Any]) -> None:
        self._state = state
        self._next = events.__anext__  # bound once, not per event
        self._last = ""

    def __aiter__(self) -> _AsyncHideUsage:
        return self

    async def __anext__(self) -> Any:
        state = self._state
        while True:
            try:
                sse = await self._next()
            except StopAsyncIteration:
                state.finalise(True)
                raise
            except BaseException as exc:
                state.finalise(False, exc)
                raise
            try:
                data = sse._data
            except AttributeError:
                data = _data_of(sse)
            at = data.rfind(_USAGE_KEY)
            if at >= 0 and not data.startswith(_AFTER_NULL, at + _KEY_END) and _took(state, data):
                continue
            self._last = data
            return sse

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            _let_go(self._state, self._last)


_reads_events: dict[type, bool] = {}  # stream class -> its generator reads ``_iter_events()``


def _reads_iter_events(cls: type) -> bool:
    """Whether ``cls``'s stream generator gets its events from ``self._iter_events()`` (read off
    its code once per class), so a filter set there is sure to see every event."""
    found = _reads_events.get(cls)
    if found is None:
        original = getattr(cls, "_iter_events", None)
        code = getattr(getattr(cls, "__stream__", None), "__code__", None)
        found = callable(original) and code is not None and "_iter_events" in code.co_names
        _reads_events[cls] = found
    return found


_STATE = "_ai_tokentrace_state"  # where a stream we watch without a proxy keeps its state


def _hide_usage_events(stream: Any, state: StreamState, hide: Callable[..., Any]) -> bool:
    """Watch ``stream``'s server-sent events with ``hide`` (which takes out the usage chunk we
    asked for); True when the filter is set: it then sees every usage object, the end and the
    errors, and the stream needs no proxy.

    The SDK's stream generator calls ``self._iter_events()`` once, when first advanced, so an
    instance attribute set now is what it uses. The attribute holds our state (until it hands
    it to the filter) but the stream only weakly, and removes itself when called: a strong
    reference back would make every stream a reference cycle, left for the cyclic collector
    with its response and buffers (it cost a CPU-bound caller 25 us per stream). The state is
    also kept in the stream's instance dict, where ``close()`` finds it. Where an SDK reads its
    events otherwise the proxy's noticer hides the parsed chunk instead; either way it is
    counted once.
    """
    cls = type(stream)
    values = vars(stream)
    if not _reads_iter_events(cls) or "_iter_events" in values:
        return False
    original = cls._iter_events
    try:
        stream_ref = weakref.ref(stream)
    except TypeError:
        return False

    def _iter_events() -> Any:
        owner = stream_ref()
        vars(owner).pop("_iter_events", None)
        return hide(state, original(owner))

    values["_iter_events"] = _iter_events
    values[_STATE] = state
    return True


def watch(stream: Any, call: _Call) -> Any:
    """What the caller gets for a sync SDK stream: the stream itself where our event filter
    watches it (a chat or completion stream we ask usage of), else a :class:`StreamProxy`.

    No proxy there: the caller keeps the very object the SDK made, and a sync stream runs
    about 16k instructions fewer (cachegrind, side by side over five hash seeds). The proxy stays for streams whose caller asked for
    usage itself: there the filter's step per event cost more (16k instructions a stream) than
    the proxy's noticer per chunk.
    """
    state = StreamState(stream, call)
    if call.injected and _hide_usage_events(stream, state, _hide_usage):
        return stream
    return StreamProxy(stream, state)


def awatch(stream: Any, call: _Call) -> Any:
    """:func:`watch` for an ``AsyncStream``."""
    state = StreamState(stream, call)
    if call.injected and _hide_usage_events(stream, state, _AsyncHideUsage):
        return stream
    return AsyncStreamProxy(stream, state)


def _closed(stream: Any) -> None:
    """After an SDK stream's own ``close()``: finalise the stream we watch without a proxy."""
    try:
        values = getattr(stream, "__dict__", None)
        state = values.get(_STATE) if type(values) is dict else None
        if state is not None:
            state.finalise(False)
    except Exception:
        internal_error("openai stream close")


def close_wrapper(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Stream.close`` (and so ``with``): the SDK's close, then the record, once."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        _closed(instance)


async def aclose_wrapper(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``AsyncStream.close`` (and so ``async with``): as :func:`close_wrapper`."""
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _closed(instance)


def _notice_completion(state: StreamState, chunk: Any) -> bool:
    """Chat/legacy completions: the usage chunk is the last; with injection it has no choices."""
    if getattr(chunk, "usage", None) is None:
        return False
    state.payload = chunk
    return bool(state.call.injected) and not getattr(chunk, "choices", None)


def _error_code(code: Any) -> str:
    return code if isinstance(code, str) and code else "error"


def _notice_responses(state: StreamState, chunk: Any) -> bool:
    kind = getattr(chunk, "type", None)
    if kind in _RESPONSES_WATCH:
        if kind is None:
            if getattr(chunk, "event", None) == "error":
                data = getattr(chunk, "data", None)
                state.error = _error_code(data.get("code") if isinstance(data, dict) else None)
            return False
        if kind == "error":  # the server gave up mid-stream; the SDK yields this as an event
            state.error = _error_code(getattr(chunk, "code", None))
            return False
        response = getattr(chunk, "response", None)
        if kind == "response.created":
            state.response_id = getattr(response, "id", None)
        else:
            state.payload = response
            if kind == "response.failed":
                state.failed = True
    return False


def _notice_usage(state: StreamState, chunk: Any) -> bool:
    """Images / audio streams: the ``*.completed`` / ``*.done`` event carries usage."""
    if getattr(chunk, "usage", None) is not None:
        state.payload = chunk
    return False


def noticer_for(operation: str) -> Noticer:
    if operation in ("chat.completions", "completions"):
        return _notice_completion
    if operation == "responses":
        return _notice_responses
    return _notice_usage


class _StreamProxyBase(_BaseProxy):  # type: ignore[misc]
    """What both proxies share: the stream's state, and its look at each chunk."""

    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_s = state
        self._self_notice = noticer_for(state.call.operation)


def _iter_chunks(proxy: StreamProxy, notice: Noticer) -> Iterator[Any]:
    """``for chunk in proxy`` on a stream without our event filter: one generator step a chunk.

    A generator resumes for less than a ``__next__`` method costs to call, and the SDK's own
    stream helpers iterate this way. ``GeneratorExit`` (the caller broke off) does not finalise:
    the stream may still be read on, and an abandoned one is finalised when its state is
    freed. The generator holds the proxy, and so the state, while it is read.
    """
    s = proxy._self_s
    stream = proxy.__wrapped__
    try:
        if notice is _notice_completion:  # inline: one attribute read a chunk
            for chunk in stream:
                if getattr(chunk, "usage", None) is None or not notice(s, chunk):
                    yield chunk
        else:
            for chunk in stream:
                if not notice(s, chunk):
                    yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        s.finalise(False, exc)
        raise
    s.finalise(True)


async def _aiter_chunks(proxy: AsyncStreamProxy, notice: Noticer) -> AsyncIterator[Any]:
    """``async for chunk in proxy``: the async twin of :func:`_iter_chunks`."""
    s = proxy._self_s
    stream = proxy.__wrapped__
    try:
        if notice is _notice_completion:
            async for chunk in stream:
                if getattr(chunk, "usage", None) is None or not notice(s, chunk):
                    yield chunk
        else:
            async for chunk in stream:
                if not notice(s, chunk):
                    yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        s.finalise(False, exc)
        raise
    s.finalise(True)


class StreamProxy(_StreamProxyBase):
    """Wraps ``openai.Stream``; looks and behaves like it."""

    def __iter__(self) -> Iterator[Any]:
        return _iter_chunks(self, self._self_notice)

    def __next__(self) -> Any:
        s = self._self_s
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                s.finalise(True)
                raise
            except BaseException as exc:
                s.finalise(False, exc)
                raise
            if not self._self_notice(s, chunk):
                return chunk

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_s.finalise(False)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_s.finalise(False)


class AsyncStreamProxy(_StreamProxyBase):
    """Wraps ``openai.AsyncStream``; looks and behaves like it."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return _aiter_chunks(self, self._self_notice)

    async def __anext__(self) -> Any:
        s = self._self_s
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                s.finalise(True)
                raise
            except BaseException as exc:
                s.finalise(False, exc)
                raise
            if not self._self_notice(s, chunk):
                return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_s.finalise(False)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_s.finalise(False)
