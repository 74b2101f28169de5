"""Odd usage, HTTP errors, concurrency, instrument/uninstrument, decorator-only mode."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import openai
import pytest
from openai._base_client import AsyncAPIClient, SyncAPIClient

import ai_tokentrace
from ai_tokentrace.integrations import openai as openai_integration
from ai_tokentrace.testing.fake_openai import FakeOpenAI, fake_openai_client, httpx_module

from ..conftest import expected_parameters, own_parameters
from .conftest import MESSAGES, Api, method

_ORIGINAL_REQUEST = SyncAPIClient.__dict__["request"]
_ORIGINAL_AREQUEST = AsyncAPIClient.__dict__["request"]


def _client_answering(body: dict[str, Any], status: int = 200) -> openai.OpenAI:
    hx = httpx_module()

    def handler(request: Any) -> Any:
        return hx.Response(status, json=body, headers={"x-request-id": "req_odd"})

    return openai.OpenAI(
        api_key="k", http_client=hx.Client(transport=hx.MockTransport(handler)), max_retries=0
    )


def _chat_body(usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-odd",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


@pytest.mark.usefixtures("instrumented")
@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}, (5, 2, 0, 0, True)),
        (
            {
                "prompt_tokens": 5,
                "completion_tokens": 2,
                "total_tokens": 7,
                "prompt_tokens_details": None,
                "completion_tokens_details": None,
            },
            (5, 2, 0, 0, True),
        ),
        (
            {
                "prompt_tokens": 50,
                "completion_tokens": 20,
                "total_tokens": 70,
                "prompt_tokens_details": {"cached_tokens": 10, "brand_new_field": 3},
                "completion_tokens_details": {"reasoning_tokens": 4, "future_tokens": {"x": 1}},
                "surprise": "field",
            },
            (50, 20, 10, 4, True),
        ),
        ({"prompt_tokens": None, "completion_tokens": "lots"}, (0, 0, 0, 0, True)),
        (None, (0, 0, 0, 0, False)),
    ],
    ids=["no-details", "none-details", "extra-fields", "garbage-values", "usage-none"],
)
def test_odd_usage_never_breaks(usage: Any, expected: tuple[Any, ...], records) -> None:
    """Missing, None, extra or garbage usage fields give a record, never an error."""
    result = _client_answering(_chat_body(usage)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert result.id == "chatcmpl-odd"
    [rec] = records()
    got = (rec.input_tokens, rec.output_tokens, rec.cached_input_tokens, rec.reasoning_tokens)
    assert (*got, rec.usage_available) == expected


@pytest.mark.usefixtures("instrumented")
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
async def test_http_errors_pass_through_unchanged(
    api: Api, status: int, error: type, records
) -> None:
    """HTTP errors reach the caller as the SDK raises them, and nothing is recorded."""
    with pytest.raises(error) as info:
        await api.call(
            lambda c: c.chat.completions.create(model=f"fake-error-{status}", messages=MESSAGES)
        )
    assert info.value.status_code == status
    assert info.value.request_id == "req_fake_error"
    assert records() == []


@pytest.mark.usefixtures("instrumented")
async def test_streamed_http_error_passes_through_unchanged(api: Api, records) -> None:
    """An error status on a streamed call (usage injected) reaches the caller unchanged."""
    with pytest.raises(openai.RateLimitError):
        await api.call(
            lambda c: c.chat.completions.create(
                model="fake-error-429", messages=MESSAGES, stream=True
            )
        )
    assert records() == []


def test_threads_and_gather_give_exactly_300_distinct_records(instrumented, records) -> None:
    """8 threads x 25 calls plus 100 gathered async calls make 300 distinct records."""
    fake = FakeOpenAI()
    sync_client = fake_openai_client(fake=fake)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(25):
                sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()

    async def gathered() -> None:
        aclient = fake_openai_client(async_=True, fake=fake)
        await asyncio.gather(
            *(
                aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                for _ in range(100)
            )
        )

    asyncio.run(gathered())
    for t in threads:
        t.join()
    assert errors == []
    recs = records()
    assert len(recs) == 300
    assert len({r.record_id for r in recs}) == 300
    assert len({r.response_id for r in recs}) == 300


def test_instrument_twice_counts_once(memory, records) -> None:
    """Calling instrument() twice patches once: one call, one record."""
    ai_tokentrace.instrument(integrations=["openai"])
    ai_tokentrace.instrument(integrations=["openai"])
    try:
        fake_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        ai_tokentrace.uninstrument()
    assert len(records()) == 1


def test_the_async_client_request_stays_a_coroutine_function(instrumented) -> None:
    """Patched, the async client's request still looks like the SDK's coroutine function to
    whoever inspects it (frameworks branch on that)."""
    import inspect

    assert hasattr(AsyncAPIClient.__dict__["request"], "__wrapped__")  # patched
    assert inspect.iscoroutinefunction(AsyncAPIClient.request)
    assert not inspect.iscoroutinefunction(SyncAPIClient.request)


@pytest.mark.parametrize("hook_form", ["direct", "wrapper"])
@pytest.mark.parametrize("client_cls", [SyncAPIClient, AsyncAPIClient], ids=["sync", "async"])
def test_the_client_request_hook_has_the_sdks_signature(
    instrumented, client_cls: type, hook_form: str
) -> None:
    """The per-request hook is the form asked for and not a wrapt wrapper (see
    ``PatchTarget.direct`` and ``lean``), and still looks like the SDK's method to whoever
    inspects it."""
    import inspect

    import wrapt

    hook = client_cls.__dict__["request"]
    original = hook.__wrapped__
    assert not isinstance(hook, wrapt.FunctionWrapper)
    assert original is (_ORIGINAL_REQUEST if client_cls is SyncAPIClient else _ORIGINAL_AREQUEST)
    direct = openai_integration._direct_request
    if client_cls is AsyncAPIClient:
        direct = openai_integration._adirect_request
    assert own_parameters(hook) == expected_parameters(original, hook_form, direct)
    assert inspect.signature(hook) == inspect.signature(original)
    assert hook.__qualname__ == original.__qualname__


def test_the_async_streams_close_stays_a_coroutine_function(instrumented) -> None:
    """``AsyncStream.close`` is wrapped on the class (it finalises a stream we watch without a
    proxy) and still looks like the SDK's coroutine function."""
    import inspect

    assert hasattr(openai.AsyncStream.__dict__["close"], "__wrapped__")  # patched
    assert inspect.iscoroutinefunction(openai.AsyncStream.close)
    assert not inspect.iscoroutinefunction(openai.Stream.close)


def test_uninstrument_restores_the_sdk(memory, records) -> None:
    """After uninstrument() the client's request is the SDK's own and nothing is recorded."""
    ai_tokentrace.instrument(integrations=["openai"])
    assert SyncAPIClient.__dict__["request"] is not _ORIGINAL_REQUEST
    ai_tokentrace.uninstrument()
    assert SyncAPIClient.__dict__["request"] is _ORIGINAL_REQUEST
    assert "__wrapped__" not in dir(AsyncAPIClient.__dict__["request"])
    assert "__wrapped__" not in dir(openai.Stream.__dict__["close"])
    assert "__wrapped__" not in dir(openai.AsyncStream.__dict__["close"])
    client = fake_openai_client()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "stream_options" not in client._fake.requests[-1][2]
    assert records() == []


def test_decorator_only_mode_counts_the_returned_response(memory, records) -> None:
    """Without instrument(), a traced function returning a completion yields one record."""

    @ai_tokentrace.trace_tokens("summarize")
    def summarize() -> Any:
        return fake_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    summarize()
    [rec] = records()
    assert (rec.operation, rec.model, rec.output_tokens) == ("chat.completions", "gpt-4o-mini", 24)
    assert rec.trace_name == "summarize"


@pytest.mark.parametrize(
    ("path", "kwargs", "operation"),
    [
        ("beta.responses", {"model": "gpt-5", "input": "Hi"}, "responses"),
        ("responses.compact", {"model": "gpt-5", "input": "Hi"}, "responses"),
        ("beta.responses.compact", {"model": "gpt-5", "input": "Hi"}, "responses"),
        ("decisions", {"model": "gpt-6-luna", "input": "Hi", "questions": []}, "decisions"),
    ],
)
def test_decorator_only_mode_counts_the_newer_response_types(
    memory, records, path: str, kwargs: dict[str, Any], operation: str
) -> None:
    """Without instrument(), a traced function returning a beta Response, a compacted one or
    a Decision yields one record."""
    create = method(fake_openai_client(), path if path.endswith("compact") else path + ".create")

    @ai_tokentrace.trace_tokens("judge")
    def judge() -> Any:
        return create(**kwargs)

    judge()
    [rec] = records()
    assert (rec.operation, rec.output_tokens, rec.trace_name) == (
        operation,
        24 if operation == "decisions" else 88,
        "judge",
    )


def test_decorator_with_instrumentation_does_not_double_count(instrumented, records) -> None:
    """With instrument() on, the traced function's returned response is not counted again."""

    @ai_tokentrace.trace_tokens("summarize")
    def summarize() -> Any:
        return fake_openai_client().embeddings.create(model="text-embedding-3-small", input="Hi")

    summarize()
    assert len(records()) == 1


@pytest.mark.parametrize(
    ("broken_steps", "stream"),
    [
        (("_is_plain", "_provider"), False),
        (("_fast_stream_begin", "_begin_request"), True),
        (("StreamState",), True),
    ],
    ids=["fast path", "general path", "fast stream path"],
)
def test_internal_bug_never_reaches_the_caller(
    instrumented, records, monkeypatch, caplog, broken_steps: tuple[str, ...], stream: bool
) -> None:
    """Outside strict mode, a bug in our code (fast or general path) is logged once and the
    caller's call still succeeds."""
    from ai_tokentrace import _internal
    from ai_tokentrace.integrations import openai as adapter

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in ai-tokentrace")

    monkeypatch.setattr(_internal, "_strict", False)
    monkeypatch.setattr(adapter, "_plain", {})
    monkeypatch.setitem(adapter._provider_by_type, openai.OpenAI, "openai")  # streams: fast
    for step in broken_steps:
        monkeypatch.setattr(adapter, step, broken)
    caplog.set_level(logging.DEBUG, logger="ai_tokentrace")
    result = fake_openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=stream
    )
    if stream:
        assert [c for c in result if c.choices]
    else:
        assert result.choices[0].message.content
    assert records() == []
    assert len([r for r in caplog.records if "bug in ai-tokentrace" in str(r.exc_info)]) == 1


def test_fake_server_answers_realistic_usage() -> None:
    """The shipped fake transport reports cached and reasoning tokens like the real API."""
    client = fake_openai_client(fake=FakeOpenAI(output_tokens=10))
    result = client.chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "x " * 3000}]
    )
    assert result.usage is not None
    usage = result.usage.model_dump()
    assert usage["prompt_tokens_details"]["cached_tokens"] > 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 64
    assert usage["completion_tokens"] == 74
    json.dumps(result.model_dump())


@pytest.mark.subprocess
def test_instrument_before_openai_is_imported() -> None:
    """instrument() before ``import openai`` patches the SDK when it is imported later."""
    import subprocess
    import sys

    code = """
import sys
import ai_tokentrace
from ai_tokentrace.testing import InMemoryTokenUsageService
memory = InMemoryTokenUsageService()
ai_tokentrace.instrument(service=memory)
assert "openai" not in sys.modules
from ai_tokentrace.testing.fake_openai import fake_openai_client
client = fake_openai_client()
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
assert ai_tokentrace.flush(10.0)
print(len(memory.records))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_public_method_fallback_counts_once(memory, records, kind: str) -> None:
    """If the client's request() ever moves, the public-method fallback still counts once."""
    import wrapt

    from ai_tokentrace.integrations import openai as adapter

    adapter._resolve_types()  # as ``patch_targets`` does first (run alone, nothing else has)
    applied = []
    for target in adapter._fallback_targets():
        parent, attribute, original = wrapt.resolve_path(target.module, target.attribute)
        wrapt.apply_patch(parent, attribute, wrapt.FunctionWrapper(original, target.wrapper))
        applied.append((parent, attribute, original))
    try:
        api = Api(kind, FakeOpenAI())
        await api.call(lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))
        await api.drain(
            await api.call(
                lambda c: c.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, stream=True
                )
            )
        )
        await api.call(lambda c: c.embeddings.create(model="text-embedding-3-small", input="x"))
        newer = []  # on SDKs that have them
        if hasattr(api.client.beta, "responses"):
            await api.call(lambda c: c.beta.responses.create(model="gpt-5", input="x"))
            newer.append("responses")
        if hasattr(api.client, "decisions"):
            await api.call(
                lambda c: c.decisions.create(model="gpt-6-luna", input="x", questions=[])
            )
            newer.append("decisions")
    finally:
        for parent, attribute, original in reversed(applied):
            setattr(parent, attribute, original)
    assert [(r.operation, r.streamed) for r in records()] == [
        ("chat.completions", False),
        ("chat.completions", True),
        ("embeddings", False),
        *((op, False) for op in newer),
    ]
