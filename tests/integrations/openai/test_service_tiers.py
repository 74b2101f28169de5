"""The service tier a response says served it is kept, and the call priced at its rates."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from ..._support import genai_prices_cost
from .conftest import MESSAGES, Api

pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture(params=["direct", "wrapper"])
def hook_form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tier(fn: Any, name: str) -> dict[str, Any]:
    """``service_tier=name``, through extra_body on SDKs that predate the parameter."""
    if "service_tier" in inspect.signature(fn).parameters:
        return {"service_tier": name}
    return {"extra_body": {"service_tier": name}}


CHAT_WAYS = ["plain", "stream", "stream asking usage"]


async def chat(api: Api, way: str, asked: str) -> None:
    create = api.client.chat.completions.create
    kw = tier(create, asked)
    if way == "stream asking usage":
        kw["stream_options"] = {"include_usage": True}
    result = await api.call(
        lambda c: c.chat.completions.create(
            model="gpt-5-mini", messages=MESSAGES, stream=way != "plain", **kw
        )
    )
    if way != "plain":
        await api.drain(result)


@pytest.mark.parametrize("way", CHAT_WAYS)
@pytest.mark.parametrize(("asked", "served"), [("flex", "flex"), ("fast", "priority")])
async def test_a_chat_call_is_priced_at_the_tier_that_served_it(
    api: Api, way: str, asked: str, served: str, records
) -> None:
    """Flex costs half the standard price on gpt-5-mini, priority more (genai-prices' rates)."""
    await chat(api, way, asked)
    [rec] = records()
    assert rec.usage_details["service_tier"] == served
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai", {"service_tier": served}))
    assert rec.cost_usd != pytest.approx(genai_prices_cost(rec, "openai"))


@pytest.mark.parametrize("way", CHAT_WAYS)
async def test_a_chat_call_served_by_default_costs_the_standard_price(
    api: Api, way: str, records
) -> None:
    await chat(api, way, "auto")
    [rec] = records()
    assert rec.usage_details["service_tier"] == "default"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai"))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_response_is_priced_at_the_tier_that_served_it(
    api: Api, responses: Callable[[Any], Any], stream: bool, records
) -> None:
    kw = tier(responses(api.client).create, "flex")
    result = await api.call(
        lambda c: responses(c).create(model="gpt-5", input="Hello", stream=stream, **kw)
    )
    if stream:
        await api.drain(result)
    [rec] = records()
    assert rec.usage_details["service_tier"] == "flex"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai", {"service_tier": "flex"}))


async def test_a_background_response_keeps_its_tier_until_its_usage_arrives(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    create = responses(api.client).create
    kw = tier(create, "flex")
    if "background" in inspect.signature(create).parameters:
        kw["background"] = True
    else:
        kw.setdefault("extra_body", {})["background"] = True
    queued = await api.call(lambda c: responses(c).create(model="gpt-5", input="Hi", **kw))
    await api.call(lambda c: responses(c).retrieve(queued.id))
    [rec] = records()
    assert rec.usage_details["service_tier"] == "flex"
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai", {"service_tier": "flex"}))
