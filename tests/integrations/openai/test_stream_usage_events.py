"""The usage chunk we ask for is taken off the body before the SDK decodes it; a stream's
record keeps no SDK object; spellings and placements the quick check misses are still counted
once."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.integrations._openai_streams import _reads_iter_events
from ai_tokentrace.testing.fake_openai import FakeOpenAI, fake_openai_client

from ..._support import call_fields, loop_held
from .conftest import MESSAGES, Api
from .test_fast_path import _pydantic_objects

pytestmark = pytest.mark.usefixtures("instrumented", "no_budget_watching")


def _stream(c: Any) -> Any:
    return c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)


def _count_parses(api: Api) -> list[Any]:
    """Every chunk the SDK builds a model for (its stream reads this off the client)."""
    parsed: list[Any] = []
    original = api.client._process_response_data

    def counting(**kwargs: Any) -> Any:
        out = original(**kwargs)
        parsed.append(out)
        return out

    api.client._process_response_data = counting
    return parsed


async def test_injected_usage_chunk_is_never_parsed_by_the_sdk(api: Api, records) -> None:
    """The SDK builds exactly the chunks the caller sees; the usage still reaches the record."""
    parsed = _count_parses(api)
    seen = await api.drain(await api.call(_stream))
    assert len(parsed) == len(seen)
    assert all(chunk.choices for chunk in parsed)
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 24)
    assert rec.response_model == "gpt-4o-mini"
    assert rec.response_id is not None


async def test_injected_usage_event_is_parsed_on_the_loop(api: Api, records) -> None:
    """The caller's thread recognises the usage-only event by its bytes and queues them; the
    background loop parses them when the record is built."""
    with loop_held() as queued:
        await api.drain(await api.call(_stream))
    [item] = queued
    [event] = [x for x in item if type(x) is bytes and b'"usage"' in x]
    assert json.loads(event)["usage"]["completion_tokens"] == 24
    [rec] = records()
    assert rec.output_tokens == 24


@pytest.mark.parametrize("ask", [False, True], ids=["injected", "asked"])
def test_a_finished_stream_is_freed_without_the_cycle_collector(ask: bool) -> None:
    """Nothing we set on the SDK's stream points back at it: a read-out stream (its response
    and buffers) goes as soon as the caller lets go, as it does uninstrumented.
    (Sync only: an async SDK stream waits for the event loop to close its generators.)"""
    client = fake_openai_client()
    extra = {"stream_options": {"include_usage": True}} if ask else {}
    gc.collect()
    gc.disable()
    try:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
        )
        raw = weakref.ref(stream)  # the SDK's own stream, asked for usage or not
        assert len(list(stream)) > 1
        del stream
        assert raw() is None
    finally:
        gc.enable()


async def test_an_injected_stream_is_read_through_the_sdks_own_iterator(api: Api, records) -> None:
    """Our strip feeds the stream's decoder: the caller holds the SDK's own stream, and its
    iterator is the SDK's, with no step of ours per chunk."""
    import openai

    stream = await api.call(_stream)
    if api.is_async:
        it = stream.__aiter__()
        assert it.ag_code is openai.AsyncStream.__aiter__.__code__
    else:
        it = iter(stream)
        assert it.gi_code is openai.Stream.__iter__.__code__
    await api.drain(it)
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 24)


async def test_usage_asked_for_by_the_caller_is_parsed_as_before(api: Api, records) -> None:
    """No injection, and the strip only looks: the caller's own usage chunk reaches it as a
    parsed model, every chunk parsed once."""
    parsed = _count_parses(api)
    seen = await api.drain(
        await api.call(
            lambda c: c.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    )
    assert len(parsed) == len(seen)
    assert seen[-1].usage is not None
    [rec] = records()
    assert rec.output_tokens == 24


async def test_finished_stream_queues_no_sdk_object(api: Api, records) -> None:
    """What waits in the queue for a stream is numbers and strings, as for a plain call."""
    with loop_held() as queued:
        await api.drain(await api.call(_stream))
    [item] = queued
    assert type(item) is tuple
    assert _pydantic_objects(item[1:]) == []
    [rec] = records()
    assert (rec.streamed, rec.output_tokens) == (True, 24)


class _OddlySpelled(FakeOpenAI):
    """Writes the usage chunk as ``"usage" :  {`` (valid JSON the quick check does not know)."""

    def _chat_chunks(self, *args: Any) -> Iterator[tuple[str | None, Any]]:
        for event, data in super()._chat_chunks(*args):
            if isinstance(data, dict) and isinstance(data.get("usage"), dict):
                data = json.dumps(data).replace('"usage": {', '"usage" :  {')
            yield event, data


class _Compact(FakeOpenAI):
    """Writes every chunk as OpenAI does: compact JSON (``"usage":null``, ``"choices":[]``)."""

    def _chat_chunks(self, *args: Any) -> Iterator[tuple[str | None, Any]]:
        for event, data in super()._chat_chunks(*args):
            if isinstance(data, dict):
                data = json.dumps(data, separators=(",", ":"))
            yield event, data


class _OddNulls(FakeOpenAI):
    """Writes every chunk's ``"usage": null`` as ``"usage" : null`` (valid JSON, unknown to the
    quick check: each such event is parsed to be sure, and passed on)."""

    def _chat_chunks(self, *args: Any) -> Iterator[tuple[str | None, Any]]:
        for event, data in super()._chat_chunks(*args):
            if isinstance(data, dict) and "usage" in data and data["usage"] is None:
                data = json.dumps(data).replace('"usage": null', '"usage" : null')
            yield event, data


class _AsOpenAIWritesIt(FakeOpenAI):
    """Compact JSON with ``"usage":null`` followed by an ``obfuscation`` padding on every chunk,
    as OpenAI streams by default, and a reply whose first word is ``usage``: the key's text
    then also appears inside a chunk's choices."""

    def _chat_chunks(self, cid: str, model: str, text: str, *rest: Any) -> Any:
        for event, data in super()._chat_chunks(cid, model, "usage is " + text, *rest):
            if isinstance(data, dict):
                data = json.dumps({**data, "obfuscation": "Zx81q"}, separators=(",", ":"))
            yield event, data


class _UsageOnLastChoice(FakeOpenAI):
    """Puts usage on the last content chunk instead of a chunk of its own (some servers do)."""

    def _chat_chunks(self, *args: Any) -> Iterator[tuple[str | None, Any]]:
        events = list(super()._chat_chunks(*args))
        usage_at = next(
            (
                i
                for i, (_, d) in enumerate(events)
                if isinstance(d, dict) and d.get("choices") == []
            ),
            None,
        )
        if usage_at is not None:
            _, usage_only = events.pop(usage_at)
            _, last = events[usage_at - 1]
            events[usage_at - 1] = (None, {**last, "usage": usage_only["usage"]})
        yield from events


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_usage_chunk_spelled_otherwise_is_hidden_and_counted_once(
    kind: str, instrumented, records
) -> None:
    api = Api(kind, _OddlySpelled())
    seen = await api.drain(await api.call(_stream))
    assert all(chunk.choices for chunk in seen)
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens) == (True, 24)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_compact_usage_chunk_is_hidden_unparsed_and_counted_once(
    kind: str, instrumented, records
) -> None:
    """OpenAI's own spelling: the caller sees only chunks with choices, the record has the
    usage, and the caller's thread queued the usage event as its bytes, unparsed."""
    api = Api(kind, _Compact())
    with loop_held() as queued:
        seen = await api.drain(await api.call(_stream))
    assert seen
    assert all(chunk.choices for chunk in seen)
    [item] = queued
    assert [x for x in item if type(x) is bytes and x.startswith(b'{"id"')]
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens, rec.response_model) == (True, 24, "gpt-4o-mini")


async def _bare_then_instrumented(
    kind: str, fake: Callable[[], FakeOpenAI], stream: Callable[[Any], Any] = _stream
) -> tuple[list[Any], Api, list[Any]]:
    """The chunks of one stream from a fresh fake, first uninstrumented, then instrumented:
    ``(bare chunks, the instrumented Api, its chunks)``."""
    ai_tokentrace.uninstrument()
    plain = Api(kind, fake())
    bare = await plain.drain(await plain.call(stream))
    ai_tokentrace.instrument(integrations=["openai"])
    api = Api(kind, fake())
    return bare, api, await api.drain(await api.call(stream))


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_usage_null_spelled_otherwise_hides_no_chunk(
    kind: str, instrumented, records
) -> None:
    bare, _, seen = await _bare_then_instrumented(kind, _OddNulls)
    assert [c.choices[0].delta.content for c in seen] == [c.choices[0].delta.content for c in bare]
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens) == (True, 24)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_usage_written_as_openai_does_is_hidden_and_counted_once(
    kind: str, instrumented, records
) -> None:
    """The caller sees the chunks it would have seen without us (the word ``usage`` in a
    reply included), and the usage chunk we asked for is counted once."""
    bare, api, seen = await _bare_then_instrumented(
        kind,
        lambda: _AsOpenAIWritesIt(latency_chunks=1000),  # a chunk a word
    )
    assert seen[1].choices[0].delta.content == "usage"
    assert [c.model_dump(exclude={"id"}) for c in seen] == [
        c.model_dump(exclude={"id"}) for c in bare
    ]
    assert api.sent[0]["stream_options"] == {"include_usage": True}
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens, rec.status) == (True, 24, "ok")


def test_the_sdk_streams_read_their_bytes_where_the_strip_sits() -> None:
    """The strip stands in for the stream's ``_decoder``; it is only relied on (and the proxy
    spared its per-chunk look) where the stream's generator reads its events from
    ``_iter_events``, that feeds ``_decoder`` the response's bytes, and no other method of the
    stream's asks its decoder for anything."""
    import openai

    class ReadsElsewhere:
        def _iter_events(self) -> Iterator[Any]:
            yield from ()

        def __stream__(self) -> Iterator[Any]:
            yield from ()

    class DecodesElsewhere:
        def _iter_events(self) -> Iterator[Any]:
            yield from ()

        def __stream__(self) -> Iterator[Any]:
            yield from self._iter_events()

    class AsksItsDecoderMore(openai.Stream):  # type: ignore[type-arg]
        def decoder_state(self) -> Any:
            return self._decoder._data

    class ShowsItsDecoder(openai.Stream):  # type: ignore[type-arg]
        @property
        def decoder(self) -> Any:
            return self._decoder

    assert _reads_iter_events(openai.Stream)
    assert _reads_iter_events(openai.AsyncStream)
    assert not _reads_iter_events(ReadsElsewhere)
    assert not _reads_iter_events(DecodesElsewhere)
    assert not _reads_iter_events(AsksItsDecoderMore)
    assert not _reads_iter_events(ShowsItsDecoder)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_usage_on_a_chunk_with_choices_reaches_the_caller_and_the_record(
    kind: str, instrumented, records
) -> None:
    api = Api(kind, _UsageOnLastChoice())
    seen = await api.drain(await api.call(_stream))
    assert seen[-1].choices
    assert seen[-1].usage is not None
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens) == (True, 24)


@pytest.mark.parametrize("asked", [False, True], ids=["injected", "asked-by-caller"])
async def test_stream_records_outside_and_inside_a_scope_agree(
    api: Api, asked: bool, records
) -> None:
    """A stream handed off as a snapshot and one emitted into a scope give the same record."""
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if asked else {}

    def stream(c: Any) -> Any:
        return c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
        )

    await api.drain(await api.call(stream))
    with ai_tokentrace.trace_tokens("scoped"):
        await api.drain(await api.call(stream))
    fast, scoped = records()
    assert (fast.trace_name, scoped.trace_name) == (None, "scoped")
    assert call_fields(fast) == call_fields(scoped)
    assert fast.request_id is not None


def _asked(c: Any) -> Any:
    return c.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(
    "fake",
    [
        FakeOpenAI,
        _Compact,
        _OddlySpelled,
        _OddNulls,
        lambda: _AsOpenAIWritesIt(latency_chunks=1000),
        _UsageOnLastChoice,
    ],
    ids=["spaced", "compact", "oddly-spelled", "odd-nulls", "as-openai-writes-it", "on-a-choice"],
)
async def test_a_stream_whose_caller_asked_for_usage_is_unchanged_and_counted_once(
    kind: str, fake: Callable[[], FakeOpenAI], instrumented, records
) -> None:
    """However the server spells and places usage, the caller who asked for it gets the chunks
    (the usage chunk included) a bare caller gets, and the record has that usage."""
    bare, api, seen = await _bare_then_instrumented(kind, fake, _asked)
    assert [c.model_dump(exclude={"id"}) for c in seen] == [
        c.model_dump(exclude={"id"}) for c in bare
    ]
    assert seen[-1].usage is not None
    assert api.sent[0]["stream_options"] == {"include_usage": True}  # as the caller sent it
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 24)
    assert rec.response_model == "gpt-4o-mini"


def _unparsable_usage_read() -> bytes:
    """One read whose usage event, a chunk with choices, nests too deep for ``json`` to parse
    (it raises RecursionError, not the ValueError of bad JSON)."""
    deep = "[" * 100_000 + "]" * 100_000
    return (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"}}],'
        b'"usage":{"completion_tokens":3,"x":' + deep.encode() + b"}}\n\n"
    )


def _state() -> Any:
    from ai_tokentrace.integrations._openai_streams import StreamState
    from ai_tokentrace.integrations.openai import _Call

    return StreamState(None, _Call("openai", "chat.completions", "gpt-4o-mini", 0.0, None))


# The asked look (_seen) keeps a one-line usage event as its text, unparsed: its failure is the
# loop's (test_a_usage_event_too_deep_to_parse_is_recorded_without_usage_and_logged_once).
@pytest.mark.parametrize("look", ["_cleaned"], ids=["injected"])
def test_a_read_the_strip_cannot_look_at_goes_to_the_sdk_unchanged_and_is_logged_once(
    look: str, lenient: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Our failure is not the caller's: the SDK gets the bytes the server sent, and the error is
    one ERROR on our logger (a second such read logs at DEBUG)."""
    from ai_tokentrace.integrations import _openai_streams

    caplog.set_level("DEBUG", logger="ai_tokentrace")
    state = _state()
    data = _unparsable_usage_read()
    try:
        assert getattr(_openai_streams, look)(state, data) == data
        assert getattr(_openai_streams, look)(state, data) == data
        assert state.detached is None
    finally:
        state.done = True  # nothing to record for a state with no stream
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "ai-tokentrace internal error in openai usage event (the traced call was not affected)"
    ]
    assert isinstance(errors[0].exc_info[1], RecursionError)  # type: ignore[index]


@pytest.mark.parametrize("look", ["_cleaned"], ids=["injected"])
def test_a_read_the_strip_cannot_look_at_raises_in_our_strict_suite(look: str) -> None:
    """So a bug in the strip fails our own tests instead of passing as a logged line."""
    from ai_tokentrace.integrations import _openai_streams

    state = _state()
    try:
        with pytest.raises(RecursionError):
            getattr(_openai_streams, look)(state, _unparsable_usage_read())
    finally:
        state.done = True


def _detached_capture(state: Any) -> Any:
    """The Capture the loop builds from what the strip kept of a finished stream."""
    from ai_tokentrace.integrations.openai import _detached_capture_of

    item = (None, state.call, 1.0, state.detached, "ok", None, None, None, True)
    return _detached_capture_of(item)


def test_a_caller_asked_usage_event_is_kept_as_its_text_and_read_on_the_loop() -> None:
    """The asked look does not parse the usage event on the caller's thread, even one with
    choices (which the helpers parse there); the record has its counts all the same."""
    from ai_tokentrace.integrations._openai_streams import _seen

    state = _state()
    event = b'{"id":"c1","choices":[{"index":0,"delta":{}}],"usage":{"completion_tokens":3}}'
    data = b'data: {"id":"c1","choices":[{"index":0}],"usage":null}\n\ndata: ' + event + b"\n\n"
    try:
        assert _seen(state, data) == data
        assert state.detached == event
        capture = _detached_capture(state)
    finally:
        state.done = True
    assert (capture.usage_available, capture.status) == (True, "ok")
    assert capture.record().output_tokens == 3


def test_a_usage_event_too_deep_to_parse_is_recorded_without_usage_and_logged_once(
    lenient: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller's stream is the SDK's to fail; ours is one ERROR on our logger, on the loop,
    and the record is kept, without usage."""
    from ai_tokentrace.integrations._openai_streams import _seen

    caplog.set_level("DEBUG", logger="ai_tokentrace")
    state = _state()
    data = _unparsable_usage_read()
    try:
        assert _seen(state, data) == data  # the SDK gets the bytes the server sent
        capture = _detached_capture(state)
    finally:
        state.done = True
    record = capture.record()
    assert (record.usage_available, record.output_tokens) == (False, 0)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "ai-tokentrace internal error in openai usage event (the traced call was not affected)"
    ]
    assert isinstance(errors[0].exc_info[1], RecursionError)  # type: ignore[index]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"x-request-id": "req_1"}, "req_1"), ({}, None)],
    ids=["with an id", "without"],
)
def test_a_stream_whose_headers_are_not_httpxs_gives_their_request_id(
    records, headers: dict[str, str], expected: str | None
) -> None:
    """Headers without httpx's list of triples are asked with their ``get``."""
    from types import SimpleNamespace

    from ai_tokentrace.integrations._openai_streams import StreamState
    from ai_tokentrace.integrations.openai import _Call

    stream = SimpleNamespace(response=SimpleNamespace(headers=headers))
    state = StreamState(stream, _Call("openai", "chat.completions", "gpt-4o-mini", 0.0, None))
    assert state.request_id() == expected
    state.detached = b'{"id":"c1","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}'
    state.finalise(True)
    [rec] = records()
    assert (rec.request_id, rec.output_tokens) == (expected, 3)


# -- the strip let go: what it looks at once the SDK stops reading --------------------------------
_USUAL_BODY = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}\n\n'
    b"data: [DONE]\n\n"
)
_FIRST_CHUNK = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'


def _let_go_spy(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every read ``_let_go`` is asked about, in order (it still does its work)."""
    from ai_tokentrace.integrations import _openai_streams

    asked: list[bytes] = []
    real = _openai_streams._let_go

    def spy(state: Any, last: bytes) -> None:
        asked.append(last)
        real(state, last)

    monkeypatch.setattr(_openai_streams, "_let_go", spy)
    return asked


def test_a_sync_strip_closed_after_done_does_not_look_at_its_last_read_again(
    records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record was made as ``[DONE]`` passed: the SDK letting go has nothing to add. (No
    look: a caller-asked sync stream's, written out in the strip.)"""
    from ai_tokentrace.integrations._openai_streams import _strip_usage

    asked = _let_go_spy(monkeypatch)
    strip = _strip_usage(_state(), iter([_USUAL_BODY]), None)
    assert next(strip) == _USUAL_BODY
    strip.close()
    assert asked == []
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 3)


def test_a_sync_strip_closed_before_the_end_looks_at_its_last_read(
    records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropped mid-body: the last read is looked at once, and the stream stays unfinished
    (recorded as abandoned once nothing holds it)."""
    from ai_tokentrace.integrations._openai_streams import _strip_usage

    asked = _let_go_spy(monkeypatch)
    state = _state()
    strip = _strip_usage(state, iter([_FIRST_CHUNK, _USUAL_BODY]), None)
    assert next(strip) == _FIRST_CHUNK
    strip.close()
    assert (asked, state.done) == ([_FIRST_CHUNK], False)
    state.done = True  # nothing to record for a state with no stream


async def _one_read(strip: Any) -> bytes:
    return bytes(await strip.__anext__())


async def _reads(*data: bytes) -> Any:
    for read in data:
        yield read


async def test_an_async_strip_freed_after_done_does_not_look_at_its_last_read_again(
    records, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ai_tokentrace.integrations._openai_streams import _AsyncStripUsage, _seen

    asked = _let_go_spy(monkeypatch)
    strip = _AsyncStripUsage(_state(), _reads(_USUAL_BODY), _seen)
    assert await _one_read(strip) == _USUAL_BODY
    del strip
    gc.collect()
    assert asked == []
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 3)


async def test_an_async_strip_freed_on_an_error_event_records_the_error(records) -> None:
    """The SDK raises APIError on an error event and drops its decoder: the strip, freed, sees
    the event as its last read and the record says so."""
    from ai_tokentrace.integrations._openai_streams import _AsyncStripUsage, _seen

    error = b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
    strip = _AsyncStripUsage(_state(), _reads(_FIRST_CHUNK + error), _seen)
    assert await _one_read(strip) == _FIRST_CHUNK + error
    del strip
    gc.collect()
    [rec] = records()
    assert (rec.status, rec.error_type) == ("partial", "APIError")


async def test_an_async_strip_whose_look_at_the_end_fails_logs_it_once(
    monkeypatch: pytest.MonkeyPatch, lenient: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Freed by the collector or the SDK, the strip cannot raise to anyone: our failure is one
    ERROR on our logger."""
    from ai_tokentrace.integrations import _openai_streams

    def broken(state: Any, last: bytes) -> None:
        raise RuntimeError("bug in ai-tokentrace")

    monkeypatch.setattr(_openai_streams, "_let_go", broken)
    caplog.set_level("DEBUG", logger="ai_tokentrace")
    state = _state()
    strip = _openai_streams._AsyncStripUsage(state, _reads(_FIRST_CHUNK), _openai_streams._seen)
    assert await _one_read(strip) == _FIRST_CHUNK
    del strip
    gc.collect()
    state.done = True
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "ai-tokentrace internal error in openai stream let go (the traced call was not affected)"
    ]
