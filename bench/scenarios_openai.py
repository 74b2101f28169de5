"""OpenAI scenarios for bench/overhead.py: real SDK clients on a canned mock transport.

The transport answers from pre-built bytes, so the timing is the SDK's own work plus whatever
instrumentation adds. The peer is OpenTelemetry's ``opentelemetry-instrumentation-openai-v2``.
Chunks are written as OpenAI writes them: compact JSON with an ``obfuscation`` padding, and
``"usage":null`` on each once usage is asked for. "openai chat stream" is a stream whose caller
did not ask for usage: ai-tokentrace asks for it, so the server also sends those nulls and the
usage event (the peer records no usage there). "... include_usage" is the same traffic for
both: the caller asked for usage itself.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["scenarios"]

_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 40,
    "total_tokens": 1240,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
_CHAT = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, how can I help?"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _USAGE,
    }
).encode()


_COMPACT = (",", ":")  # chunks are written as OpenAI writes them: compact JSON, ...
_PAD = "d41Xq"  # ... each with an ``obfuscation`` padding, and ``"usage":null`` when usage is asked


def _chunk(delta: dict[str, Any], finish: str | None, usage: bool) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = None
    body["obfuscation"] = _PAD
    return b"data: " + json.dumps(body, separators=_COMPACT).encode() + b"\n\n"


def _stream(usage: bool) -> bytes:
    words = ["Hello", " there", ",", " how", " can", " I", " help?"]
    return (
        _chunk({"role": "assistant", "content": ""}, None, usage)
        + b"".join(_chunk({"content": w}, None, usage) for w in words)
        + _chunk({}, "stop", usage)
    )


_STREAM = _stream(usage=False)
_STREAM_USAGE = _stream(usage=True)
_USAGE_CHUNK = (
    b"data: "
    + json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_767_225_600,
            "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
            "choices": [],
            "usage": _USAGE,
            "obfuscation": _PAD,
        },
        separators=_COMPACT,
    ).encode()
    + b"\n\n"
)
_DONE = b"data: [DONE]\n\n"
_MESSAGES = [{"role": "user", "content": "Say hello."}]


def _handler(hx: Any) -> Callable[[Any], Any]:
    json_headers = {"content-type": "application/json", "x-request-id": "req_bench"}
    sse_headers = {"content-type": "text/event-stream", "x-request-id": "req_bench"}

    def handle(request: Any) -> Any:
        content = request.content
        if b'"stream":true' in content.replace(b" ", b""):
            body = (
                _STREAM_USAGE + _USAGE_CHUNK + _DONE
                if b"include_usage" in content
                else _STREAM + _DONE
            )
            return hx.Response(200, headers=sse_headers, content=body)
        return hx.Response(200, headers=json_headers, content=_CHAT)

    return handle


def _clients() -> tuple[Any, Any]:
    import openai

    from ai_tokentrace.testing.fake_openai import httpx_module

    hx = httpx_module()
    transport = hx.MockTransport(_handler(hx))
    sync = openai.OpenAI(
        api_key="sk-bench", http_client=hx.Client(transport=transport), max_retries=0
    )
    aclient = openai.AsyncOpenAI(
        api_key="sk-bench", http_client=hx.AsyncClient(transport=transport), max_retries=0
    )
    return sync, aclient


@contextlib.contextmanager
def _otel_peer() -> Iterator[None]:
    """OpenTelemetry's openai-v2 instrumentation on, with an SDK tracer provider (no exporter)."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=_PROVIDER.setdefault("tp", TracerProvider()))
    try:
        yield
    finally:
        inst.uninstrument()


_PROVIDER: dict[str, Any] = {}


def _peer_factory() -> Callable[[], contextlib.AbstractContextManager[None]] | None:
    try:
        import opentelemetry.instrumentation.openai_v2
        import opentelemetry.sdk.trace  # noqa: F401
    except Exception:
        return None
    return _otel_peer


def scenarios() -> list[dict[str, Any]]:
    sync, aclient = _clients()
    peer = _peer_factory()

    def chat_sync() -> Any:
        return sync.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES)

    def chat_stream() -> int:
        n = 0
        for _ in sync.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES, stream=True):
            n += 1
        return n

    def chat_stream_usage() -> int:
        n = 0
        for _ in sync.chat.completions.create(
            model="gpt-4o-mini",
            messages=_MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        ):
            n += 1
        return n

    async def chat_async() -> Any:
        return await aclient.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES)

    async def chat_stream_async() -> int:
        n = 0
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=_MESSAGES, stream=True
        )
        async for _ in stream:
            n += 1
        return n

    return [
        {"name": "openai chat sync", "call": chat_sync, "peer": peer},
        {"name": "openai chat stream", "call": chat_stream, "peer": peer},
        {"name": "openai chat stream include_usage", "call": chat_stream_usage, "peer": peer},
        {"name": "openai chat async", "call": chat_async, "peer": peer},
        {"name": "openai chat stream async", "call": chat_stream_async, "peer": peer},
    ]


class _Response:
    headers: dict[str, str] = {"x-request-id": "req_bench"}


_RESPONSE = _Response()


class _FakeEvent:
    """A server-sent event as the SDK's decoder hands it over."""

    __slots__ = ("_data",)

    def __init__(self, data: str) -> None:
        self._data = data

    @property
    def data(self) -> str:
        return self._data


class _FakeRawStream:
    """Stands in for ``openai.Stream``: its generator reads its events through ``_iter_events``,
    as the SDK's does, and yields a pre-parsed chunk for each (no HTTP, no JSON parsing)."""

    def __init__(self, events: list[_FakeEvent], chunks: list[Any]) -> None:
        self._events = events
        self._chunks = chunks
        self.response = _RESPONSE
        self._iterator = self.__stream__()

    def __iter__(self) -> Any:
        yield from self._iterator

    def __next__(self) -> Any:
        return next(self._iterator)

    def _iter_events(self) -> Any:
        return iter(self._events)

    def __stream__(self) -> Any:
        chunks = iter(self._chunks)
        for sse in self._iter_events():
            if sse.data.startswith("[DONE]"):
                break
            yield next(chunks)

    def close(self) -> None:
        pass


def hot_path() -> list[dict[str, Any]]:
    """The caller-thread cost alone: our wrapper around a stub ``request`` returning parsed data.

    ``bare`` calls the stub; ``ours`` calls the adapter's wrapper with the same stub. Records are
    queued as usual but the background loop is kept out of the timing (see bench/overhead.py).
    """
    import openai
    from openai._models import FinalRequestOptions
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from ai_tokentrace.integrations import _openai_streams
    from ai_tokentrace.integrations import openai as adapter

    adapter._resolve_types()
    client = openai.OpenAI(api_key="sk-bench")
    completion = ChatCompletion.construct(**json.loads(_CHAT))
    completion._request_id = "req_bench"  # as the SDK sets it on every parsed response
    options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": "gpt-4o-mini"}
    )
    args = (ChatCompletion, options)
    kwargs: dict[str, Any] = {"stream": False, "stream_cls": None}

    def stub(*a: Any, **k: Any) -> Any:
        return completion

    lines = [
        line[6:].decode() for line in (_STREAM_USAGE + _USAGE_CHUNK + _DONE).split(b"\n\n") if line
    ]
    events = [_FakeEvent(line) for line in lines]
    chunks = [ChatCompletionChunk.construct(**json.loads(line)) for line in lines[:-1]]

    def bare_call() -> Any:
        return stub(*args, **kwargs)

    def ours_call() -> Any:
        return adapter._sync_request(stub, client, args, kwargs)

    call = adapter._Call("openai", "chat.completions", "gpt-4o-mini", 0.0, None)
    call.injected = True

    def bare_stream() -> int:
        return sum(1 for _ in _FakeRawStream(events, chunks))

    def ours_stream() -> int:
        return sum(1 for _ in _openai_streams.watch(_FakeRawStream(events, chunks), call))

    return [
        {"name": "openai create (wrapper + emit)", "bare": bare_call, "ours": ours_call},
        {"name": "openai stream of 10 chunks (watched)", "bare": bare_stream, "ours": ours_stream},
    ]
