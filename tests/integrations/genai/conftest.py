"""Fixtures: a real ``google.genai.Client`` on the fake transport, instrumentation on and off.

``generate`` runs one test body over the four ways to call Gemini: sync / async x
non-stream / stream (each consumed to the end).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from google.genai import types

import ai_tokentrace
from ai_tokentrace.integrations import genai as genai_integration
from ai_tokentrace.testing import InMemoryTokenUsageService
from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client

from ..conftest import direct_hooks_declined

MODEL = "gemini-2.5-flash"
MODES = ("sync", "async", "sync-stream", "async-stream")

# Features that older google-genai releases lack (the suite also runs on the oldest supported).
_config_fields = types.GenerateContentConfig.model_fields
needs_continuation = pytest.mark.skipif(
    "automatic_continuation" not in _config_fields,
    reason="this google-genai has no automatic continuation",
)
needs_raw_http = pytest.mark.skipif(
    "should_return_http_response" not in _config_fields,
    reason="this google-genai cannot return the raw HTTP response",
)
needs_embed_usage = pytest.mark.skipif(
    "usage_metadata" not in types.EmbedContentResponse.model_fields,
    reason="this google-genai drops embedding usage",
)


@pytest.fixture
def fake() -> FakeGemini:
    return FakeGemini()


@pytest.fixture
def client(fake: FakeGemini) -> Any:
    return fake_genai_client(fake)


@pytest.fixture
def vertex_client(fake: FakeGemini) -> Any:
    return fake_genai_client(fake, vertexai=True)


@pytest.fixture
def instrumented(
    memory: InMemoryTokenUsageService, hook_form: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemoryTokenUsageService]:
    """google-genai patched, records into ``memory``; undone afterwards."""
    if hook_form == "wrapper":
        direct_hooks_declined(
            monkeypatch,
            genai_integration,
            "_direct_generate",
            "_adirect_generate",
            "_direct_stream",
            "_adirect_stream",
        )
    ai_tokentrace.instrument(integrations=["genai"])
    yield memory
    ai_tokentrace.uninstrument()


class Generate:
    """One way of calling generate_content; ``await gen(client, **kwargs)`` consumes it fully."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.streamed = mode.endswith("stream")

    async def __call__(self, client: Any, **kwargs: Any) -> list[Any]:
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("contents", "Say hello.")
        if self.mode == "sync":
            return [client.models.generate_content(**kwargs)]
        if self.mode == "async":
            return [await client.aio.models.generate_content(**kwargs)]
        if self.mode == "sync-stream":
            return list(client.models.generate_content_stream(**kwargs))
        return [c async for c in await client.aio.models.generate_content_stream(**kwargs)]

    def __repr__(self) -> str:
        return self.mode


@pytest.fixture(params=MODES)
def generate(request: pytest.FixtureRequest) -> Generate:
    return Generate(request.param)


async def run_finalizers() -> None:
    """Let the event loop run the SDK's scheduled async-generator ``aclose()`` calls.

    An async generator dropped mid-iteration is closed by a task the loop schedules; a few
    loop turns (not wall time) let those tasks run.
    """
    for _ in range(5):
        await asyncio.sleep(0)


Caller = Callable[..., Awaitable[list[Any]]]
