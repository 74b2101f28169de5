"""Batches: one record per batch, when a retrieve finds it ended with usage, at batch rates."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.integrations import openai as openai_integration
from ai_tokentrace.testing.fake_openai import FakeOpenAI

from ..._support import genai_prices_cost
from .conftest import Api

pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture(params=["direct", "wrapper"])
def hook_form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def create(api: Api) -> Any:
    return api.call(
        lambda c: c.batches.create(
            input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
        )
    )


async def test_a_batch_is_counted_once_when_a_retrieve_finds_it_ended(api: Api, records) -> None:
    batch = await create(api)
    statuses = [(await api.call(lambda c: c.batches.retrieve(batch.id))).status for _ in range(3)]
    assert statuses == ["in_progress", "completed", "completed"]
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.response_id) == (
        "openai",
        "batches",
        "gpt-5-mini",
        batch.id,
    )
    assert (rec.status, rec.streamed, rec.usage_available) == ("ok", False, True)


async def test_a_batch_record_holds_the_usage_of_all_its_requests(api: Api, records) -> None:
    batch = await create(api)
    await api.call(lambda c: c.batches.retrieve(batch.id))
    ended = await api.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    usage = ended.usage  # an SDK older than the field keeps it as the JSON it was
    usage = usage if isinstance(usage, dict) else usage.model_dump()
    assert (rec.input_tokens, rec.output_tokens, rec.total_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
        usage["total_tokens"],
    )
    assert rec.reasoning_tokens == usage["output_tokens_details"]["reasoning_tokens"]
    assert rec.cached_input_tokens == usage["input_tokens_details"]["cached_tokens"] > 0
    assert rec.usage_details == {
        "processing": "batch",
        "batch_requests": 3,
        "batch_endpoint": "/v1/chat/completions",
    }


async def test_a_batch_is_dated_and_timed_by_the_batch_itself(api: Api, records) -> None:
    """Its timestamp is when it ended and its latency how long it ran, not the retrieve's."""
    batch = await create(api)
    await api.call(lambda c: c.batches.retrieve(batch.id))
    ended = await api.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    assert rec.timestamp == datetime.fromtimestamp(ended.completed_at, tz=timezone.utc)
    assert rec.latency_ms == (ended.completed_at - ended.created_at) * 1000.0


async def test_a_batch_is_priced_at_batch_rates(api: Api, records) -> None:
    """Half the standard price on gpt-5-mini (genai-prices' batch rates)."""
    batch = await create(api)
    for _ in range(2):
        await api.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai", {"processing": "batch"}))
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai") / 2)


async def test_a_batch_counts_in_the_scope_it_was_created_in(api: Api, records) -> None:
    with ai_tokentrace.trace_tokens("nightly-eval") as made:
        batch = await create(api)
    with ai_tokentrace.trace_tokens("poller") as polled:
        for _ in range(2):
            await api.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    assert rec.trace_name == "nightly-eval"
    assert made.records == (rec,)
    assert polled.records == ()


async def test_a_batch_created_elsewhere_counts_in_the_retrieving_scope(api: Api, records) -> None:
    batch = await create(api)
    await api.call(lambda c: c.batches.retrieve(batch.id))
    with ai_tokentrace.trace_tokens("poller") as polled:
        await api.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    assert polled.records == (rec,)


async def test_a_batch_counted_in_two_processes_has_one_record_id(
    api: Api, records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores keyed on record_id (Firestore) keep it once: the id comes from the batch's."""
    batch = await create(api)
    for _ in range(2):
        await api.call(lambda c: c.batches.retrieve(batch.id))
    # a second process knows nothing of the first one's counting
    monkeypatch.setattr(openai_integration, "_batches_counted", {})
    await api.call(lambda c: c.batches.retrieve(batch.id))
    first, second = records()
    assert first.record_id == second.record_id
    other = await create(api)
    for _ in range(2):
        await api.call(lambda c: c.batches.retrieve(other.id))
    assert records()[-1].record_id != first.record_id


@pytest.mark.parametrize("end", ["expired", "cancelled"])
async def test_a_batch_that_ended_early_is_partial_with_the_usage_it_billed(
    end: str, instrumented, records
) -> None:
    api = Api("sync", FakeOpenAI(batch_end=end))
    batch = await create(api)
    for _ in range(2):
        await api.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    assert (rec.status, rec.usage_details["batch_requests"]) == ("partial", 1)
    assert rec.input_tokens > 0


async def test_a_failed_batch_without_usage_makes_no_record(instrumented, records) -> None:
    api = Api("sync", FakeOpenAI(batch_end="failed"))
    batch = await create(api)
    for _ in range(2):
        got = await api.call(lambda c: c.batches.retrieve(batch.id))
    assert got.status == "failed"
    assert records() == []


async def test_creating_listing_and_cancelling_count_nothing(api: Api, records) -> None:
    batch = await create(api)
    await api.call(lambda c: c.batches.cancel(batch.id))
    page = await api.call(lambda c: c.batches.list())
    assert [b.id for b in page.data] == [batch.id]
    assert records() == []


async def test_a_raw_retrieve_is_counted_when_parsed(api: Api, records) -> None:
    batch = await create(api)
    await api.call(lambda c: c.batches.retrieve(batch.id))
    raw = await api.call(lambda c: c.batches.with_raw_response.retrieve(batch.id))
    assert records() == []
    parsed = raw.parse()
    if hasattr(parsed, "__await__"):
        parsed = await parsed
    assert parsed.status == "completed"
    [rec] = records()
    assert rec.response_id == batch.id


def test_threads_retrieving_one_ended_batch_count_it_once(instrumented, records) -> None:
    api = Api("sync", FakeOpenAI(batch_polls=0))
    batch = api.client.batches.create(
        input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
    )
    start = threading.Barrier(8)

    def poll() -> None:
        start.wait()
        for _ in range(5):
            api.client.batches.retrieve(batch.id)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.response_id for r in records()] == [batch.id]


def test_a_spent_budget_refuses_a_new_batch_but_not_reading_one(records) -> None:
    api = Api("sync", FakeOpenAI(batch_polls=0))
    batch = api.client.batches.create(
        input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
    )
    with ai_tokentrace.trace_tokens("capped", budget=ai_tokentrace.Budget(limit_usd=0.0)):
        assert api.client.batches.retrieve(batch.id).status == "completed"
        with pytest.raises(ai_tokentrace.BudgetExceededError):
            api.client.batches.create(
                input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
            )
    assert [r.response_id for r in records()] == [batch.id]


async def test_an_azure_batch_is_counted_as_azure(azure: Api, records) -> None:
    batch = await create(azure)
    for _ in range(2):
        await azure.call(lambda c: c.batches.retrieve(batch.id))
    [rec] = records()
    assert (rec.provider, rec.operation) == ("azure.ai.openai", "batches")


def test_decorator_only_mode_counts_a_returned_ended_batch_once(records) -> None:
    """Without instrument(), a traced function returning the batch counts it when it has
    ended, once however often it returns it."""
    ai_tokentrace.uninstrument()
    api = Api("sync", FakeOpenAI(batch_polls=0))
    batch = api.client.batches.create(
        input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
    )

    @ai_tokentrace.trace_tokens("poll")
    def poll() -> Any:
        return api.client.batches.retrieve(batch.id)

    poll()
    poll()
    [rec] = records()
    assert (rec.operation, rec.trace_name, rec.response_id) == ("batches", "poll", batch.id)
