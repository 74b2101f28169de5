"""A chat stream is watched where its bytes enter the SDK's SSE decoder: stripped when we asked
for its usage, looked at when its caller did. Wherever the network splits the body, and
whichever line ends the server writes, the caller gets the chunks it would have had without
us, and the record gets the usage once."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ai_tokentrace
from ai_tokentrace.integrations._openai_streams import StreamProxy
from ai_tokentrace.testing.fake_openai import _event_by_event, httpx_module

from .conftest import MESSAGES

pytestmark = pytest.mark.usefixtures("instrumented", "no_budget_watching")

_USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
_COMPACT = (",", ":")


def _chunk(delta: dict[str, Any], finish: str | None, asked: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if asked:
        body["usage"] = None
    body["obfuscation"] = "Zq1"
    return body


def _wire(asked: bool, end: str = "\n", done: bool = True) -> bytes:
    """A chat stream as OpenAI writes it (compact JSON), with usage when ``asked`` (``done``:
    ended by ``[DONE]``, which some OpenAI-compatible servers leave out)."""
    chunks = [
        _chunk({"role": "assistant", "content": ""}, None, asked),
        _chunk({"content": "Hi"}, None, asked),
        _chunk({"content": " there"}, None, asked),
        _chunk({}, "stop", asked),
    ]
    if asked:
        chunks.append({**_chunk({}, None, False), "choices": [], "usage": _USAGE})
    events = [json.dumps(c, separators=_COMPACT) for c in chunks] + (["[DONE]"] if done else [])
    return "".join(f"data: {e}{end}{end}" for e in events).encode()


def _client(kind: str, reads: Callable[[bytes], list[bytes]]) -> Any:
    """A real client whose server answers as OpenAI does (usage only when asked), in ``reads``."""
    hx = httpx_module()

    def handle(request: Any) -> Any:
        asked = b"include_usage" in request.content
        body = _wire(asked, handle.end, handle.done)  # type: ignore[attr-defined]
        headers = {"content-type": "text/event-stream"}
        return hx.Response(200, headers=headers, stream=_event_by_event(hx, reads(body)))

    handle.end = "\n"  # type: ignore[attr-defined]
    handle.done = True  # type: ignore[attr-defined]
    transport = hx.MockTransport(handle)
    if kind == "async":
        http: Any = hx.AsyncClient(transport=transport)
        client: Any = openai.AsyncOpenAI(api_key="sk-test", http_client=http, max_retries=0)
    else:
        client = openai.OpenAI(api_key="sk-test", http_client=hx.Client(transport=transport))
    client.handle = handle
    return client


_ASKED = {"stream_options": {"include_usage": True}}
_WHO_ASKS = pytest.mark.parametrize("asked", [False, True], ids=["injected", "caller-asked"])


def _read(
    kind: str, client: Any, stop_after: int | None = None, asked: bool = False
) -> list[dict[str, Any]]:
    """The caller's chunks, as ``to_dict()`` gives them (``asked``: the caller asks for usage)."""
    extra = _ASKED if asked else {}

    def create() -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
        )

    if kind == "sync":
        out = []
        for chunk in create():
            out.append(chunk.to_dict())
            if stop_after is not None and len(out) == stop_after:
                break
        return out

    async def drain() -> list[dict[str, Any]]:
        got = []
        async for chunk in await create():
            got.append(chunk.to_dict())
            if stop_after is not None and len(got) == stop_after:
                break
        return got

    return asyncio.run(drain())


def _bare(kind: str, end: str = "\n", asked: bool = False) -> list[dict[str, Any]]:
    ai_tokentrace.uninstrument()
    client = _client(kind, lambda body: [body])
    client.handle.end = end
    try:
        return _read(kind, client, asked=asked)
    finally:
        ai_tokentrace.instrument(integrations=["openai"])


def _in_two(at: int) -> Callable[[bytes], list[bytes]]:
    return lambda body: [body[:at], body[at:]]


@_WHO_ASKS
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_chunks_and_record_are_right_wherever_the_body_splits_in_two(
    end: str, asked: bool, records
) -> None:
    """Every split point of the body into two reads (every seventh for CR line ends)."""
    bare = _bare("sync", end, asked)
    size = len(_wire(True, end))
    points = range(1, size) if end == "\n" else range(1, size, 7)
    for at in points:
        client = _client("sync", _in_two(at))
        client.handle.end = end
        assert _read("sync", client, asked=asked) == bare, f"split at {at}"
    recs = records()
    assert len(recs) == len(points)
    assert {(r.status, r.input_tokens, r.output_tokens) for r in recs} == {("ok", 12, 3)}


@_WHO_ASKS
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(1, len(_wire(True)) - 1), unique=True, max_size=12))
def test_chunks_and_record_are_right_however_many_reads_the_body_comes_in(
    asked: bool, records, cuts: list[int]
) -> None:
    """Any number of reads, each cut anywhere: several chunks with their nulls in one read,
    the usage chunk with the chunks before it or after them, alone, or split."""
    bare = _bare("sync", "\n", asked)
    points = [0, *sorted(cuts)]
    client = _client(
        "sync", lambda body: [body[a:b] for a, b in zip(points, [*points[1:], None], strict=True)]
    )
    before = len(records())
    assert _read("sync", client, asked=asked) == bare
    [rec] = records()[before:]
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 3)


@_WHO_ASKS
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_body_read_byte_by_byte_gives_the_same_chunks(
    kind: str, end: str, asked: bool, records
) -> None:
    bare = _bare(kind, end, asked)
    client = _client(kind, lambda body: [body[i : i + 1] for i in range(len(body))])
    client.handle.end = end
    assert _read(kind, client, asked=asked) == bare
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 3)


@_WHO_ASKS
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("split", ["whole", "bytes"])
def test_a_stream_read_to_its_end_is_counted_while_the_caller_still_holds_it(
    split: str, end: str, kind: str, asked: bool, records
) -> None:
    """The record is made at ``[DONE]``, not when the SDK lets go of the body (an async SDK
    does so a loop iteration later) or the stream is freed: a body whose line ends are CR
    keeps its last CR back until the body ends, since an LF may follow it, and the
    ``[DONE]`` behind it is looked at then."""
    client = _client(kind, (lambda body: [body]) if split == "whole" else _byte_by_byte)
    client.handle.end = end
    extra = _ASKED if asked else {}

    async def adrain() -> tuple[Any, int, list[Any]]:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
        )
        read = len([chunk async for chunk in stream])
        return stream, read, records()  # before the loop runs anything else

    if kind == "sync":
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
        )
        read, recs = len(list(stream)), records()
    else:
        stream, read, recs = asyncio.run(adrain())
    assert read == (5 if asked else 4)
    [rec] = recs
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 3)
    del stream


@_WHO_ASKS
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("end", ["\n", "\r"], ids=["lf", "cr"])
def test_a_body_without_done_gives_the_same_chunks_and_counts_its_usage(
    end: str, kind: str, asked: bool, records
) -> None:
    """Its usage-only chunk is the body's last event: with CR line ends, its last CR is held
    back until the body ends, and it is looked at (stripped, when we asked) then, as any
    other read is."""
    ai_tokentrace.uninstrument()
    bare_client = _client(kind, lambda body: [body])
    bare_client.handle.end, bare_client.handle.done = end, False
    bare = _read(kind, bare_client, asked=asked)
    ai_tokentrace.instrument(integrations=["openai"])
    client = _client(kind, lambda body: [body])
    client.handle.end, client.handle.done = end, False
    assert _read(kind, client, asked=asked) == bare
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 3)


def _byte_by_byte(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def _on_two_data_lines(body: bytes) -> list[bytes]:
    """Every JSON event's data on two ``data:`` lines, split after its first member (SSE joins
    them with a line end, which JSON reads as whitespace), in one read."""
    return [body.replace(b'"chatcmpl-1",', b'"chatcmpl-1",\ndata: ')]


@_WHO_ASKS
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_events_on_several_data_lines_give_the_same_chunks_and_the_usage(
    kind: str, asked: bool, records
) -> None:
    ai_tokentrace.uninstrument()
    bare = _read(kind, _client(kind, _on_two_data_lines), asked=asked)
    ai_tokentrace.instrument(integrations=["openai"])
    assert bare  # the SDK's own decoder reads the spelling
    assert _read(kind, _client(kind, _on_two_data_lines), asked=asked) == bare
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 3)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_injected_chunks_carry_no_usage_field(kind: str, records) -> None:
    """The ``"usage":null`` asking for usage adds to every chunk is cut out with the usage-only
    chunk: ``to_dict()`` has no ``usage`` key, as without us."""
    seen = _read(kind, _client(kind, lambda body: [body]))
    assert seen == _bare(kind)
    assert all("usage" not in chunk for chunk in seen)
    [rec] = records()
    assert rec.output_tokens == 3


@_WHO_ASKS
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_usage_that_arrived_counts_though_the_caller_stopped_early(
    kind: str, asked: bool, records
) -> None:
    """The whole body came in one read: its usage reached the client, so the record is whole
    even if the caller stops after one chunk."""
    client = _client(kind, lambda body: [body])
    assert len(_read(kind, client, stop_after=1, asked=asked)) == 1
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 3)


@_WHO_ASKS
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_caller_stopping_before_usage_arrived_is_partial(kind: str, asked: bool, records) -> None:
    def event_by_event(body: bytes) -> list[bytes]:
        return [e + b"\n\n" for e in body.split(b"\n\n") if e]

    assert len(_read(kind, _client(kind, event_by_event), stop_after=1, asked=asked)) == 1
    gc.collect()  # the SDK's stream and its suspended generator hold each other
    [rec] = records()
    assert (rec.status, rec.usage_available) == ("partial", False)


def test_a_client_with_its_own_sse_decoder_keeps_it_and_gets_the_proxy(records) -> None:
    """Only the SDK's own text decoder is fed through the strip; with another, the proxy hides
    the usage chunk after parsing, and the count is the same."""
    from openai._streaming import SSEDecoder

    class OwnDecoder(SSEDecoder):
        pass

    client = _client("sync", lambda body: [body])
    client._make_sse_decoder = OwnDecoder
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, StreamProxy)
    assert type(stream._decoder) is OwnDecoder
    assert all(chunk.choices for chunk in stream)
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 3)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_stream_made_before_uninstrument_is_still_stripped(kind: str, records) -> None:
    """The strip is the stream's own decoder from the start: ``uninstrument()`` between
    ``create()`` and the first chunk leaves the caller's chunks as a bare caller's."""
    client = _client(kind, lambda body: [body])
    create = client.chat.completions.create

    async def adrain() -> list[dict[str, Any]]:
        stream = await create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        ai_tokentrace.uninstrument()
        return [chunk.to_dict() async for chunk in stream]

    if kind == "sync":
        stream = create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        ai_tokentrace.uninstrument()
        seen = [chunk.to_dict() for chunk in stream]
    else:
        seen = asyncio.run(adrain())
    ai_tokentrace.instrument(integrations=["openai"])
    assert seen == _bare(kind)
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 3)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_caller_asking_for_usage_gets_every_chunk_with_its_usage_field(
    kind: str, records
) -> None:
    """Looked at, not stripped: the ``"usage":null`` of every chunk and the usage-only chunk
    reach the caller as they would without us."""
    seen = _read(kind, _client(kind, lambda body: [body]), asked=True)
    assert seen == _bare(kind, asked=True)
    assert [chunk["usage"] for chunk in seen[:-1]] == [None] * (len(seen) - 1)
    assert seen[-1]["usage"] == _USAGE
    [rec] = records()
    assert (rec.status, rec.input_tokens, rec.output_tokens) == ("ok", 12, 3)


def test_a_reply_saying_usage_after_the_usage_chunk_leaves_the_usage_counted(records) -> None:
    """The key's text as a value (a reply of the one word ``usage``, quotes and all) is passed
    over, back to the usage object before it in the same read."""
    hx = httpx_module()
    events = [
        {**_chunk({}, None, False), "choices": [], "usage": _USAGE},
        _chunk({"content": "usage"}, None, True),
    ]
    body = b"".join(
        b"data: " + json.dumps(e, separators=_COMPACT).encode() + b"\n\n" for e in events
    )
    body += b"data: [DONE]\n\n"
    assert body.rfind(b'"content":"usage"') > body.rfind(b'"usage":{')  # the word comes last
    transport = hx.MockTransport(
        lambda request: hx.Response(
            200, headers={"content-type": "text/event-stream"}, content=body
        )
    )
    client = openai.OpenAI(api_key="sk-test", http_client=hx.Client(transport=transport))
    seen = _read("sync", client, asked=True)
    assert seen[1]["choices"][0]["delta"]["content"] == "usage"
    [rec] = records()
    assert (rec.status, rec.input_tokens, rec.output_tokens) == ("ok", 12, 3)
