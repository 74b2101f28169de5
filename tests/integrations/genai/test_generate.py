"""generate_content over sync/async x stream/non-stream: one record per HTTP round trip."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from ai_tokentrace.testing.fake_genai import FakeGemini

from .conftest import MODEL, Generate, needs_continuation, needs_raw_http
from .tools import get_weather

pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture(params=["direct", "wrapper"])
def hook_form(request: pytest.FixtureRequest) -> str:
    """Every case through both forms of the generate hook (see conftest's ``hook_form``)."""
    return str(request.param)


async def test_one_call_gives_one_record_with_gemini_buckets(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """input = prompt + tool-use prompt, output = candidates + thoughts; cached, reasoning kept."""
    fake.cached_tokens = 4
    fake.tool_use_prompt_tokens = 5
    await generate(client)
    [rec] = records()
    assert (rec.input_tokens, rec.output_tokens, rec.total_tokens) == (15, 26, 41)
    assert (rec.cached_input_tokens, rec.reasoning_tokens) == (4, 6)
    assert rec.provider_total_tokens is None
    assert rec.provider == "gcp.gemini"
    assert rec.operation == "generate_content"
    assert rec.streamed is generate.streamed
    assert rec.status == "ok"
    assert rec.usage_available


async def test_model_is_the_requested_one_and_response_fields_come_from_the_provider(
    generate: Generate, client: Any, records: Any
) -> None:
    """model is what the caller asked for; response_model and response_id are the provider's."""
    responses = await generate(client, model=MODEL)
    [rec] = records()
    assert rec.model == MODEL
    assert rec.response_model == "gemini-fake-001"
    assert rec.response_id == responses[-1].response_id  # None where an old SDK drops it


async def test_per_modality_details_are_kept(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """The per-modality breakdowns land in usage_details by SDK field name."""
    fake.cached_tokens = 4
    await generate(client)
    [rec] = records()
    assert rec.usage_details["prompt_tokens_details"] == {"TEXT": 10}
    assert rec.usage_details["candidates_tokens_details"] == {"TEXT": 20}
    assert rec.usage_details["cache_tokens_details"] == {"TEXT": 4}


async def test_modality_items_missing_a_field_are_kept_as_far_as_they_go(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """An item without a modality counts as UNSPECIFIED, one without a count keeps None, and
    two items of one modality add up; the rest of the record is unaffected."""
    fake.usage = {
        "promptTokenCount": 9,
        "candidatesTokenCount": 2,
        "totalTokenCount": 11,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 4},
            {"modality": "TEXT", "tokenCount": 2},
            {"tokenCount": 3},
            {"modality": "IMAGE"},
        ],
        "candidatesTokensDetails": [],
    }
    await generate(client)
    [rec] = records()
    assert (rec.input_tokens, rec.output_tokens, rec.status) == (9, 2, "ok")
    assert rec.usage_details["prompt_tokens_details"] == {
        "TEXT": 6,
        "UNSPECIFIED": 3,
        "IMAGE": None,
    }
    assert "candidates_tokens_details" not in rec.usage_details


async def test_function_calling_counts_both_hops(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """Automatic function calling sends two requests; both are recorded and add up to the bill."""
    config = types.GenerateContentConfig(tools=[get_weather])
    await generate(client, contents="Weather in Paris?", config=config)
    recs = records()
    assert len(recs) == 2 == len(fake.requests)
    assert sum(r.total_tokens for r in recs) == fake.billed_total


async def test_function_calling_records_more_than_the_public_result_reports(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """The public result carries only the last hop's usage; the records carry both hops."""
    config = types.GenerateContentConfig(tools=[get_weather])
    response = client.models.generate_content(model=MODEL, contents="Paris?", config=config)
    total = sum(r.total_tokens for r in records())
    assert response.usage_metadata.total_token_count < total == fake.billed_total


@needs_continuation
async def test_automatic_continuation_counts_every_hop(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """Automatic continuation makes one request per hop; each hop is one record."""
    fake.continuation_hops = 2
    await generate(client)
    recs = records()
    assert len(recs) == 3 == len(fake.requests)
    assert sum(r.total_tokens for r in recs) == fake.billed_total


async def test_vertex_mode_is_recorded_as_vertex_ai(
    generate: Generate, vertex_client: Any, fake: FakeGemini, records: Any
) -> None:
    """A client built with vertexai=True records provider gcp.vertex_ai with the same buckets."""
    await generate(vertex_client)
    [rec] = records()
    assert rec.provider == "gcp.vertex_ai"
    assert (rec.input_tokens, rec.output_tokens) == (10, 26)
    assert "/projects/fake-project/" in fake.requests[0][0]


async def test_missing_usage_metadata_gives_a_record_without_usage(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """No usage_metadata at all: still one record, zero tokens, usage_available False."""
    fake.omit_usage = True
    await generate(client)
    [rec] = records()
    assert rec.total_tokens == 0
    assert not rec.usage_available


async def test_partial_usage_metadata_counts_what_is_there(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """Fields the provider leaves out count as zero; the ones present are used."""
    fake.usage = {"promptTokenCount": 7}
    await generate(client)
    [rec] = records()
    assert (rec.input_tokens, rec.output_tokens, rec.cached_input_tokens) == (7, 0, 0)
    assert rec.usage_available


async def test_provider_total_is_kept_when_it_differs(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """A provider total that disagrees with input + output is kept in provider_total_tokens."""
    fake.usage = {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 12}
    await generate(client)
    [rec] = records()
    assert rec.total_tokens == 10
    assert rec.provider_total_tokens == 12


async def test_http_error_gives_no_record_and_the_sdk_error_passes_through(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """A request the server rejects reports no usage: no record, and the error is unchanged."""
    from google.genai import errors

    fake.status_code = 500
    with pytest.raises(errors.ServerError):
        await generate(client)
    assert records() == []


async def test_fifty_concurrent_async_calls_give_fifty_records(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """asyncio.gather of 50 calls: exactly 50 records, each response counted once."""
    import asyncio

    responses = await asyncio.gather(
        *(client.aio.models.generate_content(model=MODEL, contents="hi") for _ in range(50))
    )
    recs = records()
    assert len(recs) == 50
    assert sorted(map(str, (r.response_id for r in recs))) == sorted(
        map(str, (r.response_id for r in responses))
    )
    assert sum(r.total_tokens for r in recs) == fake.billed_total


async def test_count_tokens_is_not_counted(client: Any, records: Any) -> None:
    """count_tokens is a pre-flight count, not usage: no record."""
    client.models.count_tokens(model=MODEL, contents="hi")
    await client.aio.models.count_tokens(model=MODEL, contents="hi")
    assert records() == []


@needs_raw_http
async def test_raw_http_response_mode_reads_usage_from_the_body(client: Any, records: Any) -> None:
    """should_return_http_response gives only the raw body; usage is read off it."""
    config = types.GenerateContentConfig(should_return_http_response=True)
    client.models.generate_content(model=MODEL, contents="hi", config=config)
    [rec] = records()
    assert (rec.input_tokens, rec.output_tokens) == (10, 26)
