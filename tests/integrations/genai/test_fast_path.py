"""The fast path for generate_content: outside a scope the caller queues only the usage fields,
and the record matches the one made inside a scope."""

from __future__ import annotations

import contextlib

import pytest

import ai_tokentrace
from ai_tokentrace import _capture
from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client

from ..._support import REFUSALS, call_fields, loop_held, needing_a_capture_at_once
from .conftest import MODEL

pytestmark = pytest.mark.usefixtures("instrumented", "no_budget_watching")


@pytest.mark.parametrize("vertexai", [False, True], ids=["gemini", "vertex"])
def test_fast_and_scoped_records_agree(vertexai: bool, records) -> None:
    """The same call outside and inside a scope gives records that differ only in labels."""
    client = fake_genai_client(FakeGemini(thoughts_tokens=7), vertexai=vertexai)
    client.models.generate_content(model=MODEL, contents="Say hello.")
    with ai_tokentrace.trace_tokens("scoped"):
        client.models.generate_content(model=MODEL, contents="Say hello.")
    fast, scoped = records()
    assert (fast.trace_name, scoped.trace_name) == (None, "scoped")
    assert call_fields(fast) == call_fields(scoped)
    assert fast.provider == ("gcp.vertex_ai" if vertexai else "gcp.gemini")
    assert fast.reasoning_tokens == 7
    # the ids differ per response; older google-genai releases drop it on the Gemini API path
    assert (fast.response_id is None) == (scoped.response_id is None)


def test_fast_path_queues_only_usage_fields(records) -> None:
    """What waits in the queue is a tuple holding the usage fields, with no SDK object in it
    (the per-modality lists counted), not the response."""
    client = fake_genai_client(FakeGemini())
    with loop_held() as queued:
        client.models.generate_content(model=MODEL, contents="Say hello.")
    [item] = queued
    assert type(item) is tuple
    assert _no_sdk_objects(item)
    [kept] = [x for x in item if type(x) is dict]
    assert kept["prompt_token_count"] == 10
    assert kept["prompt_tokens_details"] == ("TEXT", 10)  # one flat tuple a list
    [rec] = records()
    assert rec.usage_details["prompt_tokens_details"] == {"TEXT": 10}


def test_fast_path_keeps_a_modality_list_as_one_flat_tuple(records) -> None:
    """Several modalities are kept as ``(modality, count, modality, count)``: one object for
    the collector to count, not one a modality and one more around them."""
    usage = {
        "promptTokenCount": 268,
        "candidatesTokenCount": 2,
        "totalTokenCount": 270,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 10},
            {"modality": "IMAGE", "tokenCount": 258},
        ],
    }
    client = fake_genai_client(FakeGemini(usage=usage))
    with loop_held() as queued:
        client.models.generate_content(model=MODEL, contents="Say hello.")
    [item] = queued
    [kept] = [x for x in item if type(x) is dict]
    assert kept["prompt_tokens_details"] == ("TEXT", 10, "IMAGE", 258)
    [rec] = records()
    assert rec.usage_details["prompt_tokens_details"] == {"TEXT": 10, "IMAGE": 258}


async def test_async_fast_path_counts_like_the_sync_one(records) -> None:
    """The async twin of the fast path gives the same record."""
    client = fake_genai_client(FakeGemini())
    client.models.generate_content(model=MODEL, contents="Say hello.")
    await client.aio.models.generate_content(model=MODEL, contents="Say hello.")
    sync_rec, async_rec = records()
    assert call_fields(sync_rec) == call_fields(async_rec)


@pytest.mark.parametrize("condition", REFUSALS)
@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
async def test_a_call_needing_a_capture_at_once_is_never_queued_as_a_snapshot(
    aio: bool, condition: str, monkeypatch, records
) -> None:
    """Our own traffic, and calls a budget must settle as they happen, stay off the fast path
    (the hooks write those checks out themselves)."""
    client = fake_genai_client(FakeGemini())

    async def call() -> None:
        if aio:
            await client.aio.models.generate_content(model=MODEL, contents="Say hello.")
        else:
            client.models.generate_content(model=MODEL, contents="Say hello.")

    with loop_held() as queued:
        await call()
    assert [type(item) for item in queued] == [tuple]  # the fast path, when nothing refuses it
    with contextlib.ExitStack() as stack:
        needing_a_capture_at_once(condition, stack, monkeypatch)
        with loop_held() as queued:
            await call()
    assert not [item for item in queued if type(item) in (tuple, _capture.LazyCapture)]
    if condition == "suppressed":
        assert queued == []


def _no_sdk_objects(item: object) -> bool:
    """Nothing in ``item``, however deep, is an SDK (pydantic) object: held in the queue for a
    batch of calls, those age into the collector's old generation."""
    import pydantic

    stack = [item]
    while stack:
        x = stack.pop()
        if isinstance(x, pydantic.BaseModel):
            return False
        if isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return True


def test_finished_stream_queues_only_usage_fields(records) -> None:
    """A stream's last usage-bearing chunk is not kept either: only its usage field dict."""
    client = fake_genai_client(FakeGemini())
    with loop_held() as queued:
        chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello."))
    [item] = queued
    assert type(item) is tuple
    assert _no_sdk_objects(item)
    [kept] = [x for x in item if type(x) is dict]
    assert kept["total_token_count"] == chunks[-1].usage_metadata.total_token_count
    [rec] = records()
    assert rec.streamed
    assert rec.status == "ok"


def test_fast_and_scoped_streams_agree(records) -> None:
    """The same stream outside and inside a scope gives records that differ only in labels."""
    client = fake_genai_client(FakeGemini(thoughts_tokens=7))
    list(client.models.generate_content_stream(model=MODEL, contents="Say hello."))
    with ai_tokentrace.trace_tokens("scoped"):
        list(client.models.generate_content_stream(model=MODEL, contents="Say hello."))
    fast, scoped = records()
    assert (fast.trace_name, scoped.trace_name) == (None, "scoped")
    assert call_fields(fast) == call_fields(scoped)
    assert fast.reasoning_tokens == 7


def test_scoped_call_keeps_no_sdk_object(records, no_budget_watching) -> None:
    """Inside a scope the call is a snapshot the scope shares with the queue: it holds the
    usage fields (no SDK object among them), not the response."""
    from ai_tokentrace._capture import LazyCapture, as_capture

    client = fake_genai_client(FakeGemini())
    with loop_held() as queued, ai_tokentrace.trace_tokens("scoped") as scope:
        response = client.models.generate_content(model=MODEL, contents="Say hello.")
    [lazy] = queued
    assert type(lazy) is LazyCapture
    payload = as_capture(lazy).payload
    assert _no_sdk_objects(payload)
    assert payload["total_token_count"] == response.usage_metadata.total_token_count
    assert scope.usage.total_tokens == response.usage_metadata.total_token_count
    assert len(records()) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_an_empty_model_version_is_recorded_as_none(streamed: bool, records) -> None:
    """The record names no response model rather than an empty one (plain call and stream)."""
    client = fake_genai_client(FakeGemini(model_version=""))
    if streamed:
        list(client.models.generate_content_stream(model=MODEL, contents="Say hello."))
    else:
        client.models.generate_content(model=MODEL, contents="Say hello.")
    [rec] = records()
    assert rec.response_model is None
    assert rec.model == MODEL


def test_a_usage_object_the_fast_path_cannot_keep_goes_to_the_defensive_extractor(
    records,
) -> None:
    """A per-modality item that is no SDK object (the fast path reads ``.modality`` off each)
    sends the response to the general extractor: the call is counted all the same."""
    from google.genai import types

    from ai_tokentrace.integrations import genai as adapter

    usage = types.GenerateContentResponseUsageMetadata.model_construct(
        prompt_token_count=9,
        candidates_token_count=2,
        total_token_count=11,
        prompt_tokens_details=[{"modality": "TEXT", "token_count": 9}],
    )
    response = types.GenerateContentResponse.model_construct(
        usage_metadata=usage, model_version="gemini-fake-001"
    )

    def original(self: object, *, model: object, contents: object, config: object = None) -> object:
        return response

    hook = adapter._direct_generate(original)
    models = fake_genai_client(FakeGemini()).models
    assert hook(models, model=MODEL, contents="Say hello.") is response
    [rec] = records()
    assert (rec.input_tokens, rec.output_tokens, rec.status) == (9, 2, "ok")
    assert (rec.model, rec.response_model) == (MODEL, "gemini-fake-001")
