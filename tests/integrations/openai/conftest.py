"""Fixtures: real OpenAI clients on the fake transport, instrumented into the in-memory service."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.integrations import openai as openai_integration
from ai_tokentrace.testing import InMemoryTokenUsageService
from ai_tokentrace.testing.fake_openai import (
    FakeOpenAI,
    fake_azure_openai_client,
    fake_openai_client,
)

from ..conftest import direct_hooks_declined

MESSAGES = [{"role": "user", "content": "Say hello in five words."}]
LONG_MESSAGES = [{"role": "user", "content": "word " * 1500}]  # long enough for a cache hit


def method(client: Any, *paths: str) -> Any:
    """The first of ``paths`` this SDK version has (older ones keep helpers under ``beta``)."""
    for path in paths:
        obj = client
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    pytest.skip(f"this openai version has none of {paths}")


def websocket_client(port: int, is_async: bool = False) -> Any:
    """A real OpenAI client whose websockets (Realtime, Live, Responses) go to a loopback port."""
    import openai

    factory = openai.AsyncOpenAI if is_async else openai.OpenAI
    return factory(api_key="sk-test", websocket_base_url=f"ws://127.0.0.1:{port}/v1")


def read_until(conn: Any, kind: str, times: int = 1) -> list[Any]:
    """A websocket connection's events, read up to the ``times``-th of type ``kind``."""
    got = []
    for event in conn:
        got.append(event)
        if event.type == kind:
            times -= 1
            if times == 0:
                return got
    return got


def require(api: Api, resource: str) -> None:
    """Skip on SDK versions that predate a resource (e.g. ``responses`` before openai 1.66)."""
    if not hasattr(api.client, resource):
        pytest.skip(f"this openai version has no client.{resource}")


class Api:
    """One test body for sync and async clients: ``await api.call(fn)``, ``await api.drain(s)``."""

    def __init__(self, kind: str, fake: FakeOpenAI, azure: bool = False) -> None:
        self.kind = kind
        self.is_async = kind == "async"
        self.fake = fake
        factory = fake_azure_openai_client if azure else fake_openai_client
        self.client = factory(async_=self.is_async, fake=fake)

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        result = fn(self.client)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def drain(self, stream: Any) -> list[Any]:
        if self.is_async:
            return [chunk async for chunk in stream]
        return list(stream)

    async def close(self, stream: Any) -> None:
        result = stream.close()
        if inspect.isawaitable(result):
            await result

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Bodies of the requests the fake server received."""
        return [body for _, _, body in self.fake.requests]


@pytest.fixture
def instrumented(
    memory: InMemoryTokenUsageService, hook_form: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemoryTokenUsageService]:
    """OpenAI instrumented into the in-memory service, undone afterwards."""
    if hook_form == "wrapper":
        direct_hooks_declined(
            monkeypatch, openai_integration, "_direct_request", "_adirect_request"
        )
    ai_tokentrace.instrument(integrations=["openai"])
    yield memory
    ai_tokentrace.uninstrument()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, instrumented: InMemoryTokenUsageService) -> Api:
    """A sync or an async OpenAI client on the fake transport, instrumented."""
    return Api(request.param, FakeOpenAI())


@pytest.fixture(params=["sync", "async"])
def azure(request: pytest.FixtureRequest, instrumented: InMemoryTokenUsageService) -> Api:
    """A sync or an async AzureOpenAI client on the fake transport, instrumented."""
    return Api(request.param, FakeOpenAI(), azure=True)


@pytest.fixture
def plain_api() -> Api:
    """A sync client on the fake transport, for building raw wrappers before instrumenting."""
    return Api("sync", FakeOpenAI())


@pytest.fixture(params=["responses", "beta.responses"])
def responses(request: pytest.FixtureRequest, api: Api) -> Callable[[Any], Any]:
    """The Responses API, and the beta one (``?beta=true`` in its paths), on a client."""
    path = str(request.param)
    resource = method(api.client, path)  # skips on SDKs without it
    assert resource is not None
    names = path.split(".")

    def of(client: Any) -> Any:
        for name in names:
            client = getattr(client, name)
        return client

    return of
