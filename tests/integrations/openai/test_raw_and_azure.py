"""Raw-response paths (LangChain's) and Azure OpenAI."""

from __future__ import annotations

import contextlib
import gc
import weakref
from typing import Any

import openai
import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_openai import FakeOpenAI, fake_openai_client

from .conftest import MESSAGES, Api, method


@pytest.mark.usefixtures("instrumented")
async def test_raw_response_counted_once_when_parsed(api: Api, records) -> None:
    """with_raw_response is counted at the first parse; parsing again adds nothing."""
    raw = await api.call(
        lambda c: c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    )
    assert records() == []
    first = raw.parse()
    assert raw.parse() is first
    [rec] = records()
    assert (rec.operation, rec.output_tokens, rec.request_id) == (
        "chat.completions",
        24,
        raw.headers["x-request-id"],
    )


@pytest.mark.usefixtures("instrumented")
@pytest.mark.parametrize(
    ("path", "kwargs", "operation"),
    [
        ("beta.responses", {"model": "gpt-5", "input": "Hi"}, "responses"),
        ("decisions", {"model": "gpt-6-luna", "input": "Hi", "questions": []}, "decisions"),
    ],
)
async def test_raw_response_of_the_newer_endpoints_counted_once_when_parsed(
    api: Api, records, path: str, kwargs: dict[str, Any], operation: str
) -> None:
    """The beta Responses API and decisions, through with_raw_response, count at the parse."""
    resource = method(api.client, path)
    raw = await api.call(lambda c: resource.with_raw_response.create(**kwargs))
    assert records() == []
    raw.parse()
    raw.parse()
    [rec] = records()
    assert (rec.operation, rec.model, rec.request_id) == (
        operation,
        kwargs["model"],
        raw.headers["x-request-id"],
    )


@pytest.mark.usefixtures("instrumented")
def test_a_parsed_raw_response_is_freed_without_the_cycle_collector(records) -> None:
    """Our parse hook on the raw response lets go of it once it has counted the parse: the
    response and its body go with the caller's last reference, as uninstrumented."""
    client = fake_openai_client()
    gc.collect()
    gc.disable()
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        alive = weakref.ref(raw)
        completion = raw.parse()
        assert raw.parse() is completion
        del raw
        assert alive() is None
    finally:
        gc.enable()
    assert [r.output_tokens for r in records()] == [completion.usage.completion_tokens]


@pytest.mark.usefixtures("instrumented")
async def test_raw_response_never_parsed_is_not_counted(api: Api, records) -> None:
    """A raw response whose body is never parsed yields no record (its usage was never read)."""
    raw = await api.call(lambda c: c.embeddings.with_raw_response.create(model="m", input="x"))
    assert raw.http_response.status_code == 200
    assert records() == []


@pytest.mark.usefixtures("instrumented")
async def test_raw_streamed_response_counted_once(api: Api, records) -> None:
    """A raw streamed response parses into a counted stream; parsing again returns the same one."""
    raw = await api.call(
        lambda c: c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    )
    stream = raw.parse()
    assert raw.parse() is stream
    await api.drain(stream)
    assert "stream_options" not in api.sent[-1]  # raw bodies are never altered
    [rec] = records()
    assert (rec.streamed, rec.status, rec.usage_available) == (True, "ok", False)


@pytest.mark.usefixtures("instrumented")
async def test_streaming_response_counted_once_when_parsed(api: Api, records) -> None:
    """with_streaming_response is counted once, when its body is parsed."""
    if api.is_async:
        async with api.client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response:
            await response.parse()
            await response.parse()
    else:
        with api.client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response:
            response.parse()
            response.parse()
    [rec] = records()
    assert rec.output_tokens == 24


def test_raw_wrapper_created_before_instrument_is_counted(memory, plain_api: Api, records) -> None:
    """A with_raw_response bound before instrument() still counts once (the hook is below it)."""
    bound = plain_api.client.chat.completions.with_raw_response.create
    ai_tokentrace.instrument(integrations=["openai"])
    try:
        bound(model="gpt-4o-mini", messages=MESSAGES).parse()
    finally:
        ai_tokentrace.uninstrument()
    assert len(records()) == 1


def test_raw_wrapper_created_after_instrument_is_counted(memory, plain_api: Api, records) -> None:
    """A with_raw_response bound after instrument() counts once too."""
    ai_tokentrace.instrument(integrations=["openai"])
    try:
        bound = plain_api.client.chat.completions.with_raw_response.create
        bound(model="gpt-4o-mini", messages=MESSAGES).parse()
    finally:
        ai_tokentrace.uninstrument()
    assert len(records()) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_azure_records_deployment_and_real_model(azure: Api, stream: bool, records) -> None:
    """Azure: provider azure.ai.openai, model is the deployment, response_model the real model."""
    result = await azure.call(
        lambda c: c.chat.completions.create(model="prod-chat", messages=MESSAGES, stream=stream)
    )
    if stream:
        chunks = await azure.drain(result)
        assert all(ch.choices for ch in chunks)
    [rec] = records()
    assert (rec.provider, rec.model, rec.response_model) == (
        "azure.ai.openai",
        "prod-chat",
        "gpt-4o-2024-11-20",
    )
    assert rec.output_tokens == 24
    assert rec.cost_usd is not None


@pytest.mark.usefixtures("instrumented")
def test_azure_old_api_version_is_not_sent_stream_options(records) -> None:
    """Azure api-versions before 2024-09-01 reject stream_options, so none is injected."""
    from ai_tokentrace.testing.fake_openai import fake_azure_openai_client

    client = fake_azure_openai_client(api_version="2024-06-01")
    list(client.chat.completions.create(model="d", messages=MESSAGES, stream=True))
    assert "stream_options" not in client._fake.requests[-1][2]
    [rec] = records()
    assert rec.usage_available is False


def _refusing_stream_options(client_cls: Any, monkeypatch: Any, seen: list[bytes]) -> Any:
    """A client of ``client_cls`` (seen as OpenAI's) whose transport answers as the fake,
    except that a request naming ``stream_options`` is refused, as some servers do; each
    request's body goes to ``seen``."""
    from ai_tokentrace.integrations import openai as adapter

    monkeypatch.setitem(adapter._provider_by_type, client_cls, "openai")
    monkeypatch.setattr(adapter, "_no_inject", set())
    fake = FakeOpenAI()
    hx = __import__("ai_tokentrace.testing.fake_openai").testing.fake_openai.httpx_module()

    def handler(request):  # type: ignore[no-untyped-def]
        seen.append(request.content)
        if b"stream_options" in request.content:
            return hx.Response(
                400, json={"error": {"message": "Unrecognized argument: stream_options"}}
            )
        return fake(request)

    http = hx.AsyncClient if client_cls is openai.AsyncOpenAI else hx.Client
    return client_cls(
        api_key="k",
        base_url="http://strict.example/v1",
        http_client=http(transport=hx.MockTransport(handler)),
        max_retries=0,
    )


@pytest.mark.parametrize("begin", ["fast", "general"])
@pytest.mark.usefixtures("instrumented", "no_budget_watching")
def test_server_rejecting_stream_options_gets_the_callers_request(
    begin: str, records, monkeypatch
) -> None:
    """A server that refuses stream_options gets the request again, as the caller made it
    (a stream begun on the fast path, or on the general one while a budget watches)."""
    seen: list[bytes] = []
    client = _refusing_stream_options(openai.OpenAI, monkeypatch, seen)
    with contextlib.ExitStack() as stack:
        if begin == "general":
            budget = ai_tokentrace.Budget(limit_usd=100.0)
            stack.enter_context(ai_tokentrace.trace_tokens("budgeted", budget=budget))
        chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        assert chunks
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert [b"stream_options" in body for body in seen] == [True, False, False]
    assert [r.usage_available for r in records()] == [False, False]


@pytest.mark.usefixtures("instrumented", "no_budget_watching")
async def test_server_rejecting_stream_options_gets_the_callers_async_request(
    records, monkeypatch
) -> None:
    """The same for an async stream begun on the fast path (the async hook's own branch)."""
    seen: list[bytes] = []
    client = _refusing_stream_options(openai.AsyncOpenAI, monkeypatch, seen)
    for _ in range(2):
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert [chunk async for chunk in stream]
    assert [b"stream_options" in body for body in seen] == [True, False, False]
    assert [r.usage_available for r in records()] == [False, False]
