"""Chats and embeddings: counted through the same per-request hooks."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from ai_tokentrace.testing.fake_genai import FakeGemini

from .conftest import MODEL, needs_embed_usage
from .tools import get_weather

pytestmark = pytest.mark.usefixtures("instrumented")


async def test_sync_chat_counts_each_message(client: Any, fake: FakeGemini, records: Any) -> None:
    """Two chat turns, one of them streamed: two records adding up to the bill."""
    chat = client.chats.create(model=MODEL)
    chat.send_message("hello")
    list(chat.send_message_stream("and again"))
    recs = records()
    assert [r.streamed for r in recs] == [False, True]
    assert sum(r.total_tokens for r in recs) == fake.billed_total
    assert {r.model for r in recs} == {MODEL}


async def test_async_chat_counts_each_message(client: Any, fake: FakeGemini, records: Any) -> None:
    """The async chat twin: send_message and send_message_stream each give one record."""
    chat = client.aio.chats.create(model=MODEL)
    await chat.send_message("hello")
    async for _ in await chat.send_message_stream("and again"):
        pass
    recs = records()
    assert [r.streamed for r in recs] == [False, True]
    assert sum(r.total_tokens for r in recs) == fake.billed_total


async def test_chat_with_function_calling_counts_both_hops(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """A chat turn that calls a tool automatically makes two requests: two records."""
    chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(tools=[get_weather]))
    chat.send_message("Weather in Paris?")
    recs = records()
    assert len(recs) == 2
    assert sum(r.total_tokens for r in recs) == fake.billed_total


@needs_embed_usage
async def test_embed_content_is_recorded_as_embed_content(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """Gemini API embeddings: prompt tokens are input, nothing is output."""
    client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    [rec] = records()
    assert rec.operation == "embed_content"
    assert rec.provider == "gcp.gemini"
    assert rec.model == "gemini-embedding-001"
    assert (rec.input_tokens, rec.output_tokens) == (8, 0)


@needs_embed_usage
async def test_async_embed_content_is_recorded(client: Any, records: Any) -> None:
    """The async embed_content gives the same record."""
    await client.aio.models.embed_content(model="gemini-embedding-001", contents=["a"])
    [rec] = records()
    assert (rec.operation, rec.input_tokens) == ("embed_content", 4)


async def test_vertex_predict_embeddings_sum_per_embedding_statistics(
    vertex_client: Any, records: Any
) -> None:
    """Vertex text-embedding models report tokens per embedding; the record sums them."""
    vertex_client.models.embed_content(model="text-embedding-004", contents=["a", "b", "c"])
    [rec] = records()
    assert rec.provider == "gcp.vertex_ai"
    assert rec.input_tokens == 15
    assert rec.usage_details["billable_character_count"] == 42


async def test_embed_content_without_usage_gives_a_record_without_usage(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """An embedding response with no usage at all is still one record, marked as such."""
    fake.omit_usage = True
    client.models.embed_content(model="gemini-embedding-001", contents=["a"])
    [rec] = records()
    assert not rec.usage_available
