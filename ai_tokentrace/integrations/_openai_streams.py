"""One record per OpenAI ``Stream`` / ``AsyncStream``, with the caller's object unchanged.

A chat or completion stream is watched one level lower, where its body's bytes enter the SDK's
SSE decoder (:func:`_strip_usage`). When we asked for its usage, the usage-only event is taken
out (its text kept) and so is the ``"usage":null`` asking for usage adds to every chunk, so the
SDK decodes and parses exactly what it would have without us (:func:`_cleaned`); when its
caller asked, the bytes are only looked at for the usage object (:func:`_seen`). Either way the
strip also sees the end (``[DONE]``), an error event or a broken connection. The caller then
gets the SDK's own stream object (``openai._finish``); its ``close()`` (which ``with`` calls) is
wrapped on the class to finalise it, and an abandoned stream is finalised when its
:class:`StreamState` is freed: the state is held by the stream (as its decoder) and by the strip
(which the SDK's decoder holds), so it goes with the stream.

Every other stream (Responses, images, audio, or an SDK that reads its events otherwise) comes
in a transparent proxy (iteration, ``with``, ``close()``,
``.response``, the SDK's stream helpers on top) that notices the chunk carrying usage. Either
way the record is emitted once: at the end, on ``close()``, on leaving ``with``, on an error, or
when an abandoned stream is garbage-collected.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import wrapt

from .._internal import internal_error
from ._openai_extract import Detached

if TYPE_CHECKING:
    from .openai import _Call

__all__ = [
    "CHUNK_STREAMS",
    "REQUEST_ID",
    "AsyncStreamProxy",
    "StreamProxy",
    "StreamState",
    "aclose_wrapper",
    "close_wrapper",
    "noticer_for",
]

_BaseProxy: Any = getattr(wrapt, "BaseObjectProxy", None) or wrapt.ObjectProxy

# Responses stream events: the terminal ones carry the full response with usage.
_RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# None: older SDKs turn an ``event: error`` SSE into an untyped object (``.event == "error"``).
_RESPONSES_WATCH = _RESPONSES_FINAL | {"response.created", "error", None}

# The operations whose streams are chat-completion-style chunks: usage is asked for with
# ``stream_options`` and comes in a chunk of its own, and the bytes are watched (``openai._finish``).
CHUNK_STREAMS = frozenset({"chat.completions", "completions"})

# A noticer looks at one chunk: returns True to hide it from the caller (our injected usage chunk).
Noticer = Callable[["StreamState", Any], bool]


REQUEST_ID = b"x-request-id"  # httpx keeps header keys lower-cased, as bytes


# Where a proxied SDK stream keeps its state, for the SDK's ``close()`` (wrapped on the class) to
# find: a proxy hands attribute reads to its stream, so ``openai.Stream.close(proxy)`` finds it
# too. A watched stream has it as its ``_decoder`` and gets no attribute more: one more name on
# every stream cost about 2 us a stream (interleaved call by call, alternately, stop 28).
# Set and read as an attribute, never through the stream's ``__dict__``: CPython (3.11, 3.12)
# keeps a plain object's attributes inline until something asks for its ``__dict__``, which then
# makes the dict, and every attribute read of the SDK's own on that stream misses its specialised
# fast path (2 to 3 us a stream, interleaved call by call, the two versions run alternately).
_STATE = "_ai_tokentrace_state"


_reads_events: dict[type, bool] = {}  # stream class -> its events come from ``_decoder``'s bytes


def _reads_iter_events(cls: type) -> bool:
    """Whether ``cls``'s stream generator gets its events from ``self._iter_events()``, and that
    from ``self._decoder`` fed the response's bytes, and nothing else of the class but its
    ``__init__`` touches ``_decoder`` (read off their code once per class): a decoder set on
    the instance is then sure to see every byte, and to be asked for nothing but its events."""
    found = _reads_events.get(cls)
    if found is None:
        events = getattr(getattr(cls, "_iter_events", None), "__code__", None)
        code = getattr(getattr(cls, "__stream__", None), "__code__", None)
        found = (
            events is not None
            and code is not None
            and "_iter_events" in code.co_names
            and "_decoder" in events.co_names
            and bool({"iter_bytes", "aiter_bytes"} & set(events.co_names))
            and _decoder_users(cls) <= {"__init__", "_iter_events"}
        )
        _reads_events[cls] = found
    return found


def _decoder_users(cls: type) -> set[str]:
    """The names of ``cls``'s functions and properties (its bases' too) whose code reads
    ``_decoder``."""
    users = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            func = value.fget if isinstance(value, property) else value
            if "_decoder" in getattr(getattr(func, "__code__", None), "co_names", ()):
                users.add(name)
    return users


class StreamState:
    """One stream's bookkeeping, kept off the proxy so per-chunk updates are plain slot stores.
    It is kept on the stream: as its decoder, or as :data:`_STATE`.

    Where the stream's bytes are watched (a chat or completion stream, ``openai._finish``) it is
    also the stream's SSE decoder, in place of the SDK's: the same decoder, fed through our
    strip (one object a stream, not a state and a decoder). It offers only the events
    (:func:`_reads_iter_events` checks that the stream asks it for nothing else): a
    ``__getattr__`` handing the rest to the SDK's decoder would put every attribute read of
    ours on it through CPython's slow generic path. It holds the SDK's decoder, not the
    stream (a reference back would make every stream a reference cycle, left for the cyclic
    collector with its response and buffers: 25 us a stream).
    """

    __slots__ = (
        "__weakref__",
        "call",
        "decoder",
        "detached",
        "done",
        "error",
        "failed",
        "payload",
        "raised",
        "response",
        "response_id",
    )

    def __init__(self, stream: Any, call: _Call) -> None:
        self.response: Any = getattr(stream, "response", None)  # its request id: read at the end
        self.call = call
        self.payload: Any = None  # the object holding usage, once seen
        # or what a record needs of it: read off a parsed chunk (which is then let go), or the
        # usage event's JSON, as its bytes or as we parsed it (read on the loop)
        self.detached: Detached | dict[str, Any] | bytes | None = None
        self.response_id: str | None = None  # Responses: from response.created
        self.failed = False  # Responses: response.failed seen
        self.error: str | None = None  # Responses: an error event's code
        self.raised: str | None = None  # the error the caller gets, where the SDK translates ours
        self.done = False
        self.decoder: Any = None  # the SDK's SSE decoder, where we stand in for it (its bytes
        # are then watched: the caller gets the stream itself)
        # Feed a chat or completion stream's SSE decoder through our strip (:func:`_cleaned`
        # when we asked for its usage, else :func:`_seen`): it then sees every usage object,
        # the end and the errors, and the stream needs no proxy. The SDK's stream reads
        # ``self._decoder`` when first advanced, so the one set now is the one it uses, even if
        # ``uninstrument()`` comes first. Only the SDK's own text decoder is stood in for (a
        # client's own decoder may not read SSE text), and only where the stream's events come
        # from it (:func:`_reads_iter_events`); elsewhere the proxy's noticer hides the parsed
        # chunk instead. Either way it is counted once.
        if call.operation in CHUNK_STREAMS:
            cls = type(stream)
            decoder = getattr(stream, "_decoder", None)
            ours = type(decoder).__name__ == "SSEDecoder"
            if ours and (_reads_events.get(cls) or _reads_iter_events(cls)):
                try:
                    stream._decoder = self
                except Exception:
                    return
                self.decoder = decoder
                return
        # a proxied stream: as an attribute, not through __dict__ (see _STATE); an object that
        # takes no attributes is finalised by its proxy and its state alone (not with
        # ``contextlib.suppress``: an object and two frames of Python a stream)
        try:  # noqa: SIM105
            setattr(stream, _STATE, self)
        except Exception:
            pass

    def iter_bytes(self, iterator: Iterator[bytes]) -> Any:
        """As the SDK's decoder: its events, from the bytes our strip lets through."""
        look = _cleaned if self.call.injected else None
        return self.decoder.iter_bytes(_strip_usage(self, iterator, look))

    def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> Any:
        look = _cleaned if self.call.injected else _seen
        return self.decoder.aiter_bytes(_AsyncStripUsage(self, iterator, look))

    def request_id(self) -> str | None:
        """The response's ``x-request-id`` (None: none, or no headers), read as the stream
        ends, on the caller's thread: queued instead, the headers cost more while they waited
        for the loop than the read does.

        httpx's ``Headers`` keep ``(raw key, lower-cased key, value)`` triples in ``_list``;
        read there, the id costs none of the five frames of ``Headers.get`` (its key
        lower-cased and encoded, every value matched, decoded and joined). Where that list is
        not there, ``get``. ``openai.finish_stream`` has this read written out (a frame less
        at each stream's end): keep the two in step.
        """
        try:
            headers = self.response.headers
            items = getattr(headers, "_list", None)
            if type(items) is list:
                for item in items:
                    if item[1] == REQUEST_ID:
                        value = item[2]
                        return value.decode("latin-1") if type(value) is bytes else None
                return None
            rid = headers.get("x-request-id")
        except Exception:
            return None
        return rid if isinstance(rid, str) else None

    def finalise(self, ended: bool, exc: BaseException | None = None) -> None:
        """Emit the stream's one record (only the first call does anything).
        :func:`_strip_usage` has it written out where it sees OpenAI's ``[DONE]``."""
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


# -- the injected usage chunk, taken off the bytes before the SDK's SSE decoder reads them -------
# A stream whose usage we ask for is watched where its body's bytes enter the SDK's decoder
# (:func:`_strip_usage`). The SDK then never decodes or parses the usage-only event, and the
# ``"usage":null`` the server adds to every other chunk because we asked is cut out too: the
# caller's chunks are the ones it would have had (``to_dict()`` included). Searching bytes is
# C; the SDK's line splitter is a regex run over every byte and its parser builds a model field
# per chunk. Per network read of one chunk (the usual read): one split at OpenAI's null, two
# checks that nothing else names usage, and one join.
_KEY = b'"usage"'
_KEY_END = len(_KEY)
_CR = b"\r"
_END = b"\n\n"  # an event's end once line ends are LF: its last line's LF, then a blank line
_NULL = (b":null", b": null")  # the value after the key, compact (OpenAI) or spaced
# OpenAI's null, after the choices: ``,"usage":`` can only start a member (no JSON value follows
# a comma and a string with a colon), and a null is a whole value
_NULL_MEMBER = b',"usage":null'
_USAGE_OBJECT = b'"usage":{'  # OpenAI's usage object, compact
_OBJECT = (b":{", b": {")
_VALUE = re.compile(rb"[ \t]*:[ \t]*(\{|null(?=[ \t]*[,}]))")  # any other spacing of the two
_NO_CHOICES = (b'"choices":[]', b'"choices": []')
_DONE = (b"data: [DONE]", b"data:[DONE]")
_DONE_LAST = b"data: [DONE]\n\n"  # how OpenAI ends a body: found without a search
_ERROR = b'data: {"error"'  # as OpenAI writes an error event (one spelled otherwise: abandoned)
_DATA = b"data: "  # how OpenAI starts an event's one line
_ERROR_AT = 8  # where a read starting with an error event has the ``e`` of ``error``


def _lf(data: bytes) -> bytes:
    """CRLF and CR line ends made LF: the SSE decoder reads all three as one line end."""
    return data.replace(b"\r\n", b"\n").replace(_CR, b"\n")


def _whole_events(data: bytes) -> tuple[bytes, bytes]:
    """``(whole events, the rest)``: line ends made LF (the decoder reads CR, LF and CRLF as one
    line end), a last CR held back (an LF may follow it), and an event not yet ended held back
    until it is (the decoder could not have handed it on before its end either)."""
    tail = b""
    if _CR in data:
        if data.endswith(_CR):
            data, tail = data[:-1], _CR
        data = _lf(data)
    if data.endswith(_END):
        return data, tail
    end = data.rfind(_END) + 2
    if end == 1:
        return b"", data + tail
    return data[:end], data[end:] + tail


def _event_data(event: bytes) -> bytes:
    """The data of one whole event, as the SSE decoder joins its ``data`` lines."""
    if event.startswith(b"data: ") and event.find(b"\n") == len(event) - 2:
        return event[6:-2]
    lines = []
    for line in event.split(b"\n"):
        field, _, value = line.partition(b":")
        if field == b"data":
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines)


def _took(state: StreamState, data: bytes) -> bool:
    """An event carrying a usage object: keep it for the record; True to hide the event (the
    usage-only chunk: it is ours, as only a stream we asked usage of is watched here; usage on
    a chunk with choices reaches the caller). The usage-only chunk in a known spelling is kept
    as its text, which the background loop parses; any other is parsed here, to decide."""
    if _NO_CHOICES[0] in data or _NO_CHOICES[1] in data:
        state.detached = data
        return True
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    if type(chunk) is not dict or type(chunk.get("usage")) is not dict:
        return False
    state.detached = chunk
    return not chunk.get("choices")


def _event_at(data: bytes, at: int) -> tuple[int, int]:
    """``(start, end)`` of the whole event holding ``data[at]``. A one-line event (all OpenAI
    writes) is found with two searches for a single byte; any other with two for its ends."""
    line = data.rfind(b"\n", 0, at) + 1
    nl = data.find(b"\n", at)
    if data[nl + 1 : nl + 2] == b"\n" and (line < 2 or data[line - 2] == 10):
        return line, nl + 2
    start = data.rfind(_END, 0, at)
    return (0 if start < 0 else start + 2), data.find(_END, at) + 2


def _value_at(data: bytes, after: int) -> tuple[bytes, int]:
    """What follows a usage key ending at ``after``: ``(b"n", the null's end)``, ``(b"{",
    after)`` for an object, or ``(b"", after)`` for anything else (the key's text as a value)."""
    if data.startswith(_NULL, after):
        return b"n", after + (5 if data[after + 1] == 110 else 6)
    if data.startswith(_OBJECT, after):
        return b"{", after
    found = _VALUE.match(data, after)
    return (found.group(1)[:1], found.end()) if found else (b"", after)


def _through(state: StreamState, data: bytes) -> bytes:
    """One read's whole events naming usage, on their way to the decoder: without
    ``"usage":null`` and without the usage-only event (our code only: never raises).

    From the end: OpenAI writes usage last in a chunk (but for a padding), and the usage-only
    chunk last in a stream. The key's text is the key (inside a JSON string every quote is
    escaped); a null goes with the comma before it (no member can be first there: OpenAI
    writes the choices first); a usage object's event goes to :func:`_took`. What this cannot
    place is left as it is, for the SDK. OpenAI's nulls go in one pass of C, and what is left
    naming usage (the usage object, another spelling) is looked at one by one (the usual read,
    one chunk with OpenAI's null, is cut by :func:`_cleaned` without coming here).
    """
    try:
        if _CR in data:  # whole events all the same
            data = _lf(data)
        data = data.replace(_NULL_MEMBER, b"")  # the rest of OpenAI's nulls, in one pass of C
        at = data.rfind(_KEY)
        pieces = []
        end = len(data)  # what follows ``end`` is in ``pieces`` (last first)
        while at >= 0:
            kind, stop = _value_at(data, at + _KEY_END)
            if kind == b"n":
                cut = at - 1 if data[at - 1] == 44 else at - 2 if data[at - 2 : at] == b", " else -1
                if cut >= 0 and stop <= end:
                    pieces.append(data[stop:end])
                    end = cut
            elif kind == b"{":
                begin, stop = _event_at(data, at)
                if stop <= end and _took(state, _event_data(data[begin:stop])):
                    pieces.append(data[stop:end])
                    end = at = begin
            at = data.rfind(_KEY, 0, at)
        if end == len(data):
            return data
        pieces.append(data[:end])
        pieces.reverse()
        return b"".join(pieces)
    except Exception:
        internal_error("openai usage event")
        return data


def _let_go(state: StreamState, last: bytes) -> None:
    """``last`` is the last read the SDK was given, or one that may end the body: past
    ``[DONE]`` the stream ended; on an error event the SDK raised APIError; after any other
    the stream was dropped, and the state records it as abandoned once nothing holds it.
    The loops ask only of a read ending in ``]`` or starting with ``{"e``, and once more when
    the SDK lets go, which keeps these searches out of the per-read work."""
    if state.done:  # seen as it passed: the SDK letting go has nothing to add
        return
    if last.endswith(_DONE_LAST) or _DONE[0] in last or _DONE[1] in last:
        state.finalise(True)
        return
    at = last.find(_ERROR)
    if at < 0:
        return
    end = last.find(_END, at)
    try:
        body = json.loads(last[at + 6 : end if end >= 0 else len(last)])
    except ValueError:
        return
    if type(body) is dict and body.get("error"):
        state.error = "APIError"
        state.finalise(False)


def _broken(state: StreamState, exc: BaseException) -> None:
    """The body broke off with ``exc``: newer SDKs raise their own error from it (``_iter_events``
    turns httpx's timeouts and transport errors into ``APITimeoutError`` and
    ``APIConnectionError``), and the record names the one the caller gets."""
    module = sys.modules.get("openai._streaming")
    for kinds, name in (
        ("timeout_exceptions", "APITimeoutError"),
        ("request_exceptions", "APIConnectionError"),
    ):
        try:
            if isinstance(exc, getattr(module, kinds)()):
                state.raised = name
                break
        except Exception:  # an SDK without them lets httpx's error through as it is
            continue
    state.finalise(False, exc)


def _cleaned(state: StreamState, data: bytes) -> bytes:
    """One read of whole events as the decoder is to get it, from a stream we asked usage of.

    The reads OpenAI sends are cut here, in a few passes of C: each usage key is OpenAI's
    null (every chunk's), or one more is the usage-only chunk's, one line as OpenAI writes it,
    after the last null: a read of one chunk, of the usage chunk alone, or of several chunks
    with the usage chunk last (a whole body). Any other read naming usage goes to
    :func:`_through`, which places each key in turn."""
    keys = data.count(_KEY)
    if not keys:
        return data
    parts = data.split(_NULL_MEMBER)
    nulls = len(parts) - 1
    if nulls == keys:
        return b"".join(parts)
    if nulls == keys - 1:
        last = parts[-1]
        at = last.find(_USAGE_OBJECT)
        if at >= 0:
            line = last.rfind(b"\n", 0, at) + 1
            nl = last.find(b"\n", at)
            if (  # one line, a whole event (the test :func:`_seen` and :func:`_event_at` make)
                last.startswith(_DATA, line)
                and last[nl + 1 : nl + 2] == b"\n"
                and (last[line - 2 : line] == b"\n\n" if line else not nulls)
                and last.find(_NO_CHOICES[0], line, nl) >= 0
            ):
                # kept as its text (as :func:`_took` keeps it), parsed on the loop
                state.detached = last[line + 6 : nl]
                parts[-1] = last[:line] + last[nl + 2 :]
                return b"".join(parts)
    return _through(state, data)


def _seen(state: StreamState, data: bytes) -> bytes:
    """One read of whole events of a stream whose caller asked for usage, passed on as it is:
    the usage chunk is the caller's. The last usage object in it is kept for the record, found
    from the end past the ``"usage":null`` every other chunk carries (one search a read when,
    as OpenAI writes, each read is one chunk). Our code only: never raises.

    The event holding it, one line as OpenAI writes it, is kept as its text here, in place:
    :func:`_event_at`, :func:`_event_data` and :func:`_took` (which only decides whether to
    hide it, and never does here) cost a stream three cold frames, 1.2 to 3.7 us (interleaved,
    CPU clock, alternately); the loop parses the text. Any other event takes those three.
    A sync stream's usual reads (a chunk's null; the usage chunk, one line) are written out in
    :func:`_strip_usage`, which calls this for any other: keep the two in step."""
    try:
        at = data.rfind(_KEY)
        while at >= 0:
            after = at + _KEY_END
            # past a null (every chunk's) or the key's text as a value (a reply saying
            # "usage"), further back; OpenAI's spellings are told without a call
            if not data.startswith(_NULL, after) and (
                data.startswith(_OBJECT, after) or _value_at(data, after)[0] == b"{"
            ):
                line = data.rfind(b"\n", 0, at) + 1
                nl = data.find(b"\n", at)
                if (  # a one-line event: as in _event_at, with its data line's prefix
                    data.startswith(_DATA, line)
                    and data[nl + 1 : nl + 2] == b"\n"
                    and (line < 2 or data[line - 2] == 10)
                ):
                    state.detached = data[line + 6 : nl]
                else:
                    begin, stop = _event_at(data, at)
                    _took(state, _event_data(data[begin:stop]))
                break
            at = data.rfind(_KEY, 0, at)
    except Exception:
        internal_error("openai usage event")
    return data


_Look = Callable[[StreamState, bytes], bytes]  # one read of whole events, as the decoder gets it


def _strip_usage(state: StreamState, reads: Iterator[bytes], look: _Look | None) -> Iterator[bytes]:
    """Between the response's bytes and the SDK's SSE decoder: whole events only, through
    ``look`` (:func:`_cleaned`; None: :func:`_seen`, its usual reads written out here). A read
    of whole LF-ended events (every one OpenAI sends) goes as it is.

    Each frame of ours a stream enters is cold cache lines, and so is each one it leaves out
    here: the caller-asked look's usual reads (a chunk with ``"usage":null``; the usage chunk,
    one line as OpenAI writes it), the stream's end at ``[DONE]`` (``StreamState.finalise``)
    and the request id at the end (``finish_stream``), written out together, took a
    caller-asked stream from +21.2 to +17.8 us (the mean of twelve alternate runs, lower in
    all twelve; stop 30); a stream we asked usage of, +31.4 to +29.9 (three runs)."""
    held = last = b""
    try:
        for data in reads:
            if held or data[-2:] != _END:
                data, held = _whole_events(held + data)
                if not data:
                    continue
            if look is not None:
                data = look(state, data)
            elif (at := data.rfind(_KEY)) >= 0:  # _seen: the last usage key, if an object
                after = at + _KEY_END
                if data.startswith(_OBJECT, after):
                    line = data.rfind(b"\n", 0, at) + 1
                    nl = data.find(b"\n", at)
                    if (  # one line, a whole event: kept as its text (as :func:`_seen` does)
                        data.startswith(_DATA, line)
                        and data[nl + 1 : nl + 2] == b"\n"
                        and (line < 2 or data[line - 2] == 10)
                    ):
                        state.detached = data[line + 6 : nl]
                    else:
                        _seen(state, data)
                elif not data.startswith(_NULL, after) or data.rfind(_KEY, 0, at) >= 0:
                    _seen(state, data)  # another spelling, or a key further back
            last = data
            # a read that may end the body (ending in ``]``, starting with ``{"e``), looked at
            # as it passes: an async SDK lets go of its decoder only a loop iteration later.
            # OpenAI's end, found here, saves every stream the frame of :func:`_let_go`, and
            # the record is made here (``StreamState.finalise``, written out).
            if len(data) > _ERROR_AT and (data[-3] == 93 or data[_ERROR_AT] == 101):
                if data.endswith(_DONE_LAST):
                    if not state.done:
                        state.done = True
                        try:
                            _finish_stream(state, True, None)
                        except Exception:
                            internal_error("openai stream finalise")
                else:
                    _let_go(state, data)
            yield data
        if held:  # an event not ended by a blank line, or a last CR (the body's end ends it)
            last = data = _held_at_end(state, held, look)
            yield data
    except GeneratorExit:  # the SDK let go (its generator ended, or its stream was dropped)
        if not state.done:  # ``_let_go``'s first test, without its frame
            _let_go(state, last)
        raise
    except BaseException as exc:
        _broken(state, exc)
        raise
    state.finalise(True)


def _held_at_end(state: StreamState, held: bytes, look: _Look | None) -> bytes:
    """What was held back when the body ended (a last CR, which an LF might have followed; an
    event without its blank line), looked at as any read is: a server ending its lines with
    CR ends ``[DONE]`` so too, and the record is made here. At most once a stream, so a frame
    of its own."""
    data = look(state, _lf(held)) if look is not None else _seen(state, _lf(held))
    if not state.done:
        _let_go(state, data)
    return data


class _AsyncStripUsage:
    """:func:`_strip_usage` for async streams, as a plain async iterator, not an async generator.

    The SDK stops reading at ``[DONE]`` and drops its decoder suspended; a suspended async
    generator is closed by a task the event loop schedules (one more per stream, on the
    caller's loop), an iterator object is simply freed, and tells :func:`_let_go` so.
    """

    __slots__ = ("_held", "_last", "_look", "_next", "_state")

    def __init__(self, state: StreamState, reads: AsyncIterator[bytes], look: _Look) -> None:
        self._state = state
        self._next = reads.__aiter__().__anext__  # bound once, not per read
        self._look = look
        self._held = self._last = b""

    def __aiter__(self) -> _AsyncStripUsage:
        return self

    async def __anext__(self) -> bytes:
        state = self._state
        while True:
            try:
                data = await self._next()
            except StopAsyncIteration:
                held, self._held = self._held, b""
                if held:
                    self._last = data = _held_at_end(state, held, self._look)
                    return data
                state.finalise(True)
                raise
            except BaseException as exc:
                _broken(state, exc)
                raise
            if self._held or data[-2:] != _END:
                data, self._held = _whole_events(self._held + data)
                if not data:
                    continue
            self._last = data = self._look(state, data)
            if len(data) > _ERROR_AT and (data[-3] == 93 or data[_ERROR_AT] == 101):
                if data.endswith(_DONE_LAST):  # as in :func:`_strip_usage`
                    state.finalise(True)
                else:
                    _let_go(state, data)
            return data

    def __del__(self) -> None:
        # Most streams ended at ``[DONE]``: nothing to do, and no ``contextlib.suppress`` (an
        # object and two frames of Python) to do it in: 444 -> 164 ns to make and free one,
        # timed alone. A failure of ours is logged: a finaliser has no caller to raise to.
        state = self._state
        if not state.done:
            try:
                _let_go(state, self._last)
            except Exception:
                internal_error("openai stream let go")


def _closed(stream: Any) -> None:
    """After an SDK stream's own ``close()``: finalise the stream (watched: its decoder is the
    state; or through a proxy, which reads its stream's attributes)."""
    try:
        state = getattr(stream, "_decoder", None)
        if type(state) is not StreamState:
            state = getattr(stream, _STATE, None)
        if type(state) is StreamState:
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
    """``for chunk in proxy`` on a stream without our strip: one generator step a chunk.

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
