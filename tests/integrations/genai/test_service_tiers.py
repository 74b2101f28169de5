"""The tier that served a call is kept, and the call priced at its rates: the Gemini API says
it in a response header (an interaction in its ``service_tier``), Vertex AI in usage_metadata's
``traffic_type``."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import types

from ai_tokentrace.testing.fake_genai import FakeGemini

from ..._support import genai_prices_cost, priced_apart
from .conftest import Generate

pytestmark = [
    pytest.mark.usefixtures("instrumented"),
    pytest.mark.skipif(
        "service_tier" not in types.GenerateContentConfig.model_fields,
        reason="this google-genai has no service tiers",
    ),
]

MODEL = "gemini-4-argon"  # a model genai-prices prices apart on flex and priority


@pytest.fixture(params=["direct", "wrapper"])
def hook_form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("tier", ["flex", "priority"])
async def test_a_gemini_api_call_is_priced_at_the_tier_that_served_it(
    generate: Generate, client: Any, tier: str, records: Any
) -> None:
    if not priced_apart(MODEL, "google", {"service_tier": tier}):
        pytest.skip(f"this genai-prices has no service_tier={tier} price for {MODEL}")
    await generate(client, model=MODEL, config=types.GenerateContentConfig(service_tier=tier))
    [rec] = records()
    assert rec.usage_details["service_tier"] == tier
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google", {"service_tier": tier}))
    assert rec.cost_usd != pytest.approx(genai_prices_cost(rec, "google"))


@pytest.mark.parametrize("tier", ["flex", "priority"])
async def test_a_vertex_call_is_priced_at_the_tier_its_traffic_type_names(
    generate: Generate, vertex_client: Any, tier: str, records: Any
) -> None:
    await generate(
        vertex_client, model=MODEL, config=types.GenerateContentConfig(service_tier=tier)
    )
    [rec] = records()
    assert rec.usage_details["traffic_type"] == f"ON_DEMAND_{tier.upper()}"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google", {"service_tier": tier}))


async def test_a_standard_call_costs_the_standard_price(
    generate: Generate, vertex_client: Any, records: Any
) -> None:
    await generate(vertex_client, model=MODEL)
    [rec] = records()
    assert rec.usage_details["traffic_type"] == "ON_DEMAND"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google"))


async def test_a_priority_call_served_as_standard_costs_the_standard_price(
    generate: Generate, client: Any, fake: FakeGemini, records: Any
) -> None:
    """Over its priority limit the API serves a call as standard, and says so."""
    fake.downgrade_priority = True
    config = types.GenerateContentConfig(service_tier="priority")
    await generate(client, model=MODEL, config=config)
    [rec] = records()
    assert rec.usage_details["service_tier"] == "standard"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google"))


needs_interactions = pytest.mark.skipif(
    not hasattr(genai.Client, "interactions"),
    reason="this google-genai has no Interactions API",
)


@needs_interactions
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_interaction_is_priced_at_the_tier_that_served_it(
    client: Any, kind: str, stream: bool, records: Any
) -> None:
    interactions = client.interactions if kind == "sync" else client.aio.interactions
    result = interactions.create(model=MODEL, input="Hi", service_tier="flex", stream=stream)
    if kind == "async":
        result = await result
    if stream:
        if kind == "sync":
            list(result)
        else:
            [event async for event in result]
    [rec] = records()
    assert rec.usage_details["service_tier"] == "flex"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google", {"service_tier": "flex"}))


@pytest.mark.parametrize("hook_form", ["direct"])
def test_the_defensive_extractor_reads_the_tier_header_too(hook_form: str) -> None:
    """Decorator-only mode and odd responses go through it."""
    from ai_tokentrace.integrations.genai import TIER_HEADER, extract_generate_content

    response = types.GenerateContentResponse(
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=10, candidates_token_count=5
        ),
        sdk_http_response=types.HttpResponse(headers={TIER_HEADER: "flex"}),
    )
    raw, _, _ = extract_generate_content(response)
    assert raw is not None
    assert raw.details["service_tier"] == "flex"
