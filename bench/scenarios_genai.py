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


def scenarios() -> list[dict[str, Any]]:
    """Bare ``generate_content`` (sync and async) and a streamed call of three chunks."""
    client = fake_genai_client(FakeGemini(stream_chunks=3))
    models, amodels = client.models, client.aio.models

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

    def unhooked(aio: bool) -> Callable[[], Any]:
        """``generate_content`` on a ``Models`` that skips our hooks (see overhead.py)."""
        from overhead import unhooked_class

        own = amodels if aio else models
        bare = unhooked_class(type(own))(own._api_client)
        return lambda: bare.generate_content(model=MODEL, contents="Say hello.")

    calls: list[tuple[str, Callable[[], Any]]] = [
        ("genai generate_content", generate),
        ("genai generate_content_stream (3 chunks)", stream),
        ("genai async generate_content", agenerate),
        ("genai async generate_content_stream (3 chunks)", astream),
    ]
    unhooked_for = {
        "genai generate_content": lambda: unhooked(False),
        "genai async generate_content": lambda: unhooked(True),
    }
    return [
        {"name": name, "call": call, "unhooked": unhooked_for.get(name)} for name, call in calls
    ]
