"""OpenAI scenarios for bench/overhead.py: real SDK clients on a canned mock transport.

The transport answers from pre-built bytes, so the timing is the SDK's own work plus whatever
instrumentation adds. The peer is OpenTelemetry's ``opentelemetry-instrumentation-openai-v2``.
Chunks are written as OpenAI writes them: compact JSON with an ``obfuscation`` padding, and
``"usage":null`` on each once usage is asked for. "openai chat stream" is a stream whose caller
did not ask for usage: ai-tokentrace asks for it, so the server also sends those nulls and the
usage event (the peer records no usage there). "... include_usage" is the same traffic for
both: the caller asked for usage itself. "..., event a read" is the first with the body read
one event at a time, as from a server that flushes each (the mock otherwise gives it at once).
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


def _headers(content_type: str) -> list[tuple[str, str]]:
    """The headers OpenAI answers a chat request with (25, the request id 17th), as the SDK
    and our stream end read them: two bare headers made the id's read look cheaper than it is."""
    return [
        ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("content-type", content_type),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("access-control-expose-headers", "X-Request-ID"),
        ("openai-organization", "org-bench"),
        ("openai-processing-ms", "312"),
        ("openai-project", "proj_bench"),
        ("openai-version", "2020-10-01"),
        ("x-envoy-upstream-service-time", "316"),
        ("x-ratelimit-limit-requests", "30000"),
        ("x-ratelimit-limit-tokens", "150000000"),
        ("x-ratelimit-remaining-requests", "29999"),
        ("x-ratelimit-remaining-tokens", "149999990"),
        ("x-ratelimit-reset-requests", "2ms"),
        ("x-ratelimit-reset-tokens", "0s"),
        ("x-request-id", "req_bench"),
        ("x-openai-proxy-wasm", "v0.1"),
        ("cf-cache-status", "DYNAMIC"),
        ("set-cookie", "__cf_bm=bench; path=/; domain=.api.openai.com; HttpOnly; Secure"),
        ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
        ("x-content-type-options", "nosniff"),
        ("server", "cloudflare"),
        ("cf-ray", "8f0000000000bench-SJC"),
        ("alt-svc", 'h3=":443"; ma=86400'),
    ]


def _events(body: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in body.split(b"\n\n") if event]


def _handler(hx: Any, by_event: bool = False) -> Callable[[Any], Any]:
    """The canned server. ``by_event``: a stream's body comes one event a read, as from a server
    that flushes each event (the mock transport otherwise hands the whole body over at once)."""
    from ai_tokentrace.testing.fake_openai import _event_by_event

    json_headers = _headers("application/json")
    sse_headers = _headers("text/event-stream; charset=utf-8")
    asked, plain = _STREAM_USAGE + _USAGE_CHUNK + _DONE, _STREAM + _DONE
    reads = {asked: _events(asked), plain: _events(plain)}

    def handle(request: Any) -> Any:
        content = request.content
        if b'"stream":true' in content.replace(b" ", b""):
            body = asked if b"include_usage" in content else plain
            if by_event:
                return hx.Response(
                    200, headers=sse_headers, stream=_event_by_event(hx, reads[body])
                )
            return hx.Response(200, headers=sse_headers, content=body)
        return hx.Response(200, headers=json_headers, content=_CHAT)

    return handle


def _clients(by_event: bool = False, wrap: Callable[[type], type] | None = None) -> tuple[Any, Any]:
    """A sync and an async client on the canned server; ``wrap`` turns each client class into
    another (overhead.py's ``unhooked_class``)."""
    import openai

    from ai_tokentrace.testing.fake_openai import httpx_module

    hx = httpx_module()
    transport = hx.MockTransport(_handler(hx, by_event))
    sync_cls: type = openai.OpenAI
    async_cls: type = openai.AsyncOpenAI
    if wrap is not None:
        sync_cls, async_cls = wrap(sync_cls), wrap(async_cls)
    sync = sync_cls(api_key="sk-bench", http_client=hx.Client(transport=transport), max_retries=0)
    aclient = async_cls(
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


def _calls(sync: Any, aclient: Any, by_event: Any) -> dict[str, Callable[[], Any]]:
    """The timed calls, by scenario name, on the given clients (``by_event``: a sync client
    whose server sends one event a read)."""

    def chat_sync() -> Any:
        return sync.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES)

    def read(client: Any, **options: Any) -> Callable[[], int]:
        def chat_stream() -> int:
            n = 0
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", messages=_MESSAGES, stream=True, **options
            ):
                n += 1
            return n

        return chat_stream

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

    return {
        "openai chat sync": chat_sync,
        "openai chat stream": read(sync),
        "openai chat stream include_usage": read(sync, stream_options={"include_usage": True}),
        "openai chat stream, event a read": read(by_event),
        "openai chat async": chat_async,
        "openai chat stream async": chat_stream_async,
    }


def _unhooked(name: str) -> Callable[[], Callable[[], Any]]:
    """The factory of scenario ``name``'s call on clients that skip our hooks (see overhead.py).
    A stream's ``close`` is wrapped on the SDK's class, which they share, but a stream read to
    its end never calls it: the bare side runs none of our code."""

    def make() -> Callable[[], Any]:
        from overhead import unhooked_class

        sync, aclient = _clients(wrap=unhooked_class)
        by_event, _ = _clients(by_event=True, wrap=unhooked_class)
        return _calls(sync, aclient, by_event)[name]

    return make


def scenarios() -> list[dict[str, Any]]:
    sync, aclient = _clients()
    by_event, _ = _clients(by_event=True)
    peer = _peer_factory()
    return [
        {"name": name, "call": call, "peer": peer, "unhooked": _unhooked(name)}
        for name, call in _calls(sync, aclient, by_event).items()
    ]


class _Response:
    """The httpx response a stream reads its body from: one read, as the mock transport gives."""

    headers: dict[str, str] = {"x-request-id": "req_bench"}

    def __init__(self, body: bytes) -> None:
        self._body = body

    def iter_bytes(self) -> Iterator[bytes]:
        return iter((self._body,))


class _FakeRawStream:
    """Stands in for ``openai.Stream``: its generator reads its events through ``_iter_events``,
    which feeds the SDK's own SSE decoder the response's bytes, as the SDK's does, and yields a
    pre-parsed chunk for each event (no HTTP, no JSON parsing)."""

    def __init__(self, body: bytes, chunks: list[Any]) -> None:
        from openai._streaming import SSEDecoder

        self._decoder = SSEDecoder()
        self._chunks = chunks
        self.response = _Response(body)
        self._iterator = self.__stream__()

    def __iter__(self) -> Any:
        yield from self._iterator

    def __next__(self) -> Any:
        return next(self._iterator)

    def _iter_events(self) -> Any:
        yield from self._decoder.iter_bytes(self.response.iter_bytes())

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

    # what a bare caller is sent, and what the SDK parses of it (also all it parses of ours)
    bare_body, ours_body = _STREAM + _DONE, _STREAM_USAGE + _USAGE_CHUNK + _DONE
    chunks = [
        ChatCompletionChunk.construct(**json.loads(line[6:]))
        for line in bare_body.split(b"\n\n")
        if line and not line.endswith(b"[DONE]")
    ]

    def bare_call() -> Any:
        return stub(*args, **kwargs)

    def ours_call() -> Any:
        return adapter._sync_request(stub, client, args, kwargs)

    call = adapter._Call("openai", "chat.completions", "gpt-4o-mini", 0.0, None)
    call.injected = True

    def bare_stream() -> int:
        return sum(1 for _ in _FakeRawStream(bare_body, chunks))

    def ours_stream() -> int:
        raw = _FakeRawStream(ours_body, chunks)
        _openai_streams.StreamState(raw, call)  # stands in for its decoder, as on an SDK stream
        return sum(1 for _ in raw)

    return [
        {"name": "openai create (wrapper + emit)", "bare": bare_call, "ours": ours_call},
        {
            "name": "openai stream of 9 chunks, SSE decoded (watched)",
            "bare": bare_stream,
            "ours": ours_stream,
        },
    ]
