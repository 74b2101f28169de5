"""google-genai on aiohttp (its async default when aiohttp is installed) is counted the same.

aiohttp traffic cannot be faked at an httpx transport, so the fake answers from a local aiohttp
test server. Skipped where aiohttp is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ai_tokentrace.testing.fake_genai import FakeGemini

from ..._support import aiohttp_server
from .conftest import MODEL

aiohttp = pytest.importorskip("aiohttp")

pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture
async def aiohttp_client(fake: FakeGemini) -> AsyncIterator[Any]:
    """A real google.genai.Client whose async calls go over aiohttp to the fake."""
    import httpx2
    from google import genai
    from google.genai import types

    def answer(method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
        return fake.respond(httpx2.Request(method, url, content=body), http=httpx2)

    async with aiohttp_server(answer) as server:
        client = genai.Client(
            api_key="fake-key",
            http_options=types.HttpOptions(base_url=str(server.make_url("/"))),
        )
        if not hasattr(client._api_client, "_use_aiohttp"):
            pytest.skip("this google-genai has no aiohttp transport")
        try:
            yield client
        finally:
            await client.aio.aclose()


async def test_async_calls_over_aiohttp_are_counted(
    aiohttp_client: Any, fake: FakeGemini, records: Any
) -> None:
    """A non-streamed and a streamed async call over aiohttp: two records adding up to the bill."""
    assert aiohttp_client._api_client._use_aiohttp()
    await aiohttp_client.aio.models.generate_content(model=MODEL, contents="hi")
    async for _ in await aiohttp_client.aio.models.generate_content_stream(
        model=MODEL, contents="hi"
    ):
        pass
    recs = records()
    assert [r.streamed for r in recs] == [False, True]
    assert sum(r.total_tokens for r in recs) == fake.billed_total == 72
