"""openai's aiohttp client (``DefaultAioHttpClient``, its advice for many concurrent async
calls) is counted the same: our hooks sit above the transport, and a stream's bytes reach the
strip in aiohttp's reads, wherever they split.

aiohttp traffic cannot be faked at an httpx transport, so the fake answers from a local aiohttp
test server. Skipped where this openai has no aiohttp client or aiohttp is not installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_openai import FakeOpenAI, httpx_module

from ..._support import aiohttp_server
from .conftest import MESSAGES

aiohttp = pytest.importorskip("aiohttp")

pytestmark = pytest.mark.usefixtures("instrumented", "no_budget_watching")


def _has_aiohttp_client() -> bool:
    factory = getattr(openai, "DefaultAioHttpClient", None)
    if factory is None:
        return False
    try:
        asyncio.run(_made_and_closed(factory))
    except RuntimeError:  # the SDK's stand-in when its aiohttp extra is missing
        return False
    return True


async def _made_and_closed(factory: Any) -> None:
    await factory().aclose()


needs_aiohttp_client = pytest.mark.skipif(
    not _has_aiohttp_client(),
    reason="this openai has no DefaultAioHttpClient, or not its aiohttp extra",
)


@pytest.fixture
async def server(fake: FakeOpenAI) -> AsyncIterator[str]:
    """The fake, answering over loopback HTTP; its bodies written 37 bytes at a time, reads
    that cut events anywhere."""
    hx = httpx_module()

    def answer(method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
        kind = {"content-type": headers.get("Content-Type", "application/json")}
        return fake(hx.Request(method, url, content=body, headers=kind))

    async with aiohttp_server(answer, piece=37) as test_server:
        yield str(test_server.make_url("/v1"))


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


def _content(chunk: Any) -> dict[str, Any]:
    """A chunk as the caller sees it, but for the fake's running count in its id."""
    return {k: v for k, v in chunk.to_dict().items() if k != "id"}


async def _calls(base_url: str) -> list[Any]:
    """A chat call, a stream we ask usage of, one whose caller asked, and an embedding."""
    client = openai.AsyncOpenAI(
        api_key="sk-test", base_url=base_url, http_client=openai.DefaultAioHttpClient()
    )
    async with client:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        injected = [
            _content(chunk)
            async for chunk in await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
        ]
        asked = [
            _content(chunk)
            async for chunk in await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        ]
        await client.embeddings.create(model="text-embedding-3-small", input="hello")
    return [injected, asked]


@needs_aiohttp_client
async def test_calls_over_aiohttp_are_counted_once_each(server: str, records: Any) -> None:
    await _calls(server)
    recs = records()
    assert [(r.operation, r.streamed, r.status) for r in recs] == [
        ("chat.completions", False, "ok"),
        ("chat.completions", True, "ok"),
        ("chat.completions", True, "ok"),
        ("embeddings", False, "ok"),
    ]
    assert all(r.usage_available and r.input_tokens > 0 for r in recs)
    assert all(r.output_tokens > 0 for r in recs[:3])


@needs_aiohttp_client
async def test_a_stream_over_aiohttp_gives_the_chunks_it_would_without_us(server: str) -> None:
    """The usage-only chunk we asked for is hidden, whatever aiohttp's reads cut; the one the
    caller asked for reaches them."""
    ours = await _calls(server)
    ai_tokentrace.uninstrument()
    bare = await _calls(server)
    ai_tokentrace.instrument(integrations=["openai"])
    assert ours[0] == bare[0]
    assert all(chunk["choices"] for chunk in ours[0])
    assert ours[1] == bare[1]
    assert ours[1][-1]["usage"]
