"""google-genai on aiohttp (its async default when aiohttp is installed) is counted the same.

aiohttp traffic cannot be faked at an httpx transport, so the fake answers from a local aiohttp
test server. Skipped where aiohttp is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ai_tokentrace.testing.fake_genai import FakeGemini

from .conftest import MODEL

aiohttp = pytest.importorskip("aiohttp")

pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture
async def aiohttp_client(fake: FakeGemini) -> AsyncIterator[Any]:
    """A real google.genai.Client whose async calls go over aiohttp to the fake."""
    import httpx2
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from google import genai
    from google.genai import types

    async def handle(request: Any) -> Any:
        body = await request.read()
        http_request = httpx2.Request(request.method, str(request.url), content=body)
        answer = fake.respond(http_request, http=httpx2)
        out = web.StreamResponse(
            status=answer.status_code,
            headers={"content-type": answer.headers["content-type"]},
        )
        await out.prepare(request)
        for piece in answer.iter_bytes():
            await out.write(piece)
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    client = genai.Client(
        api_key="fake-key",
        http_options=types.HttpOptions(base_url=str(server.make_url("/"))),
    )
    if not hasattr(client._api_client, "_use_aiohttp"):
        await server.close()
        pytest.skip("this google-genai has no aiohttp transport")
    try:
        yield client
    finally:
        await client.aio.aclose()
        await server.close()


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
