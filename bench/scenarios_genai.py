"""google-genai scenarios for ``bench/overhead.py``: bare vs instrumented, on the fake transport.

Each ``call`` makes one real ``google.genai.Client`` call whose HTTP is answered in-process by
:class:`ai_tokentrace.testing.fake_genai.FakeGemini`, so the timings are the SDK's own work plus
ours, with no network.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client

__all__ = ["scenarios"]

MODEL = "gemini-2.5-flash"


def _calls(models: Any, amodels: Any) -> dict[str, Callable[[], Any]]:
    """The timed calls, by scenario name, on these ``Models`` and ``AsyncModels``."""

    def generate() -> None:
        models.generate_content(model=MODEL, contents="Say hello.")

    def stream() -> None:
        for _ in models.generate_content_stream(model=MODEL, contents="Say hello."):
            pass

    def agenerate() -> Awaitable[Any]:
        return amodels.generate_content(model=MODEL, contents="Say hello.")

    async def _astream() -> None:
        async for _ in await amodels.generate_content_stream(model=MODEL, contents="Say hello."):
            pass

    def astream() -> Awaitable[None]:
        return _astream()

    return {
        "genai generate_content": generate,
        "genai generate_content_stream (3 chunks)": stream,
        "genai async generate_content": agenerate,
        "genai async generate_content_stream (3 chunks)": astream,
    }


def scenarios() -> list[dict[str, Any]]:
    """Bare ``generate_content`` (sync and async) and a streamed call of three chunks."""
    client = fake_genai_client(FakeGemini(stream_chunks=3))
    models, amodels = client.models, client.aio.models

    def unhooked(name: str) -> Callable[[], Callable[[], Any]]:
        """The factory of scenario ``name``'s call on ``Models`` that skip our hooks (see
        overhead.py), on the same API client."""

        def make() -> Callable[[], Any]:
            from overhead import unhooked_class

            bare = unhooked_class(type(models))(models._api_client)
            abare = unhooked_class(type(amodels))(amodels._api_client)
            return _calls(bare, abare)[name]

        return make

    return [
        {"name": name, "call": call, "unhooked": unhooked(name)}
        for name, call in _calls(models, amodels).items()
    ]
