"""The Gemini part of ``ai-tokentrace demo``: a few real google-genai calls, counted as usual.

Offline (the default) the client talks to :mod:`ai_tokentrace.testing.fake_genai` in-process;
live it uses the Gemini API key from ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``. Records go
wherever the demo already configured the pipeline; nothing is configured here.
"""

# No ``from __future__ import annotations``: older google-genai releases read the tool's
# annotations at runtime (automatic function calling) and cannot resolve strings.
import os
from typing import Any

from ._scope import trace_tokens

__all__ = ["available", "has_interactions", "run"]

MODEL = "gemini-2.5-flash"
EMBED_MODEL = "gemini-embedding-001"


def available(live: bool) -> bool:
    """True when google-genai is installed (and, live, an API key is set)."""
    try:
        import google.genai  # noqa: F401
    except ImportError:
        return False
    return not live or bool(os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY"))


def has_interactions() -> bool:
    """True when this google-genai has the Interactions API (2.x and later)."""
    from google import genai

    return hasattr(genai.Client, "interactions")


def get_weather(city: str) -> str:
    """Today's weather in a city (a local tool the model may call)."""
    return f"Sunny and 21 C in {city}."


def _client(live: bool) -> Any:
    if live:
        from google import genai

        return genai.Client()
    from .testing.fake_genai import FakeGemini, fake_genai_client

    return fake_genai_client(FakeGemini(cached_tokens=4, tool_use_prompt_tokens=0))


def run(live: bool) -> None:
    """Generate, stream, embed, chat (with automatic function calling) and interact once
    each."""
    from google.genai import types

    client = _client(live)
    with trace_tokens("demo.gemini", tags=["demo"]):
        client.models.generate_content(model=MODEL, contents="Name a flower, in one word.")
        for _ in client.models.generate_content_stream(
            model=MODEL, contents="Count from one to five."
        ):
            pass
        client.models.embed_content(model=EMBED_MODEL, contents=["tokens", "cost"])
        chat = client.chats.create(
            model=MODEL, config=types.GenerateContentConfig(tools=[get_weather])
        )
        chat.send_message("What is the weather in Paris?")  # two requests: two records
        if has_interactions():
            client.interactions.create(model=MODEL, input="Say hello in French.")
