"""Every covered endpoint yields exactly one record with the right numbers, sync and async."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_openai import FakeOpenAI

from .conftest import MESSAGES, Api, method, require


def _background(api: Api) -> dict[str, Any]:
    """``background=True``, through extra_body on SDKs that predate the parameter."""
    if "background" in inspect.signature(api.client.responses.create).parameters:
        return {"background": True}
    return {"extra_body": {"background": True}}


pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture(params=["direct", "wrapper"])
def hook_form(request: pytest.FixtureRequest) -> str:
    """Every endpoint through both forms of the request hook (see conftest's ``hook_form``)."""
    return str(request.param)


LONG = [{"role": "user", "content": "word " * 1500}]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_chat_completion_counted_once(api: Api, stream: bool, records) -> None:
    """A chat completion, plain or streamed, gives one record with cached tokens split out."""
    result = await api.call(
        lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=LONG, stream=stream)
    )
    if stream:
        await api.drain(result)
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model) == ("openai", "chat.completions", "gpt-4o-mini")
    assert rec.streamed is stream
    assert rec.status == "ok"
    assert rec.usage_available
    assert rec.input_tokens == 1882
    assert rec.cached_input_tokens == 896
    assert rec.output_tokens == 24
    assert rec.total_tokens == 1906
    assert str(rec.response_id).startswith("chatcmpl_")
    assert (rec.cost_usd or 0) > 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_reasoning_tokens_counted_in_output(api: Api, stream: bool, records) -> None:
    """Reasoning tokens are part of the output and reported apart as a subset."""
    result = await api.call(
        lambda c: c.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=stream)
    )
    if stream:
        await api.drain(result)
    [rec] = records()
    assert rec.output_tokens == 88
    assert rec.reasoning_tokens == 64


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_responses_create_counted_once(
    api: Api, responses: Callable[[Any], Any], stream: bool, records
) -> None:
    """responses.create (and the beta API's), plain or streamed, gives one record from
    ResponseUsage."""
    result = await api.call(
        lambda c: responses(c).create(model="gpt-5", input="Hello", stream=stream)
    )
    if stream:
        await api.drain(result)
    [rec] = records()
    assert (rec.operation, rec.model, rec.response_model) == ("responses", "gpt-5", "gpt-5")
    assert rec.streamed is stream
    assert (rec.input_tokens, rec.output_tokens, rec.reasoning_tokens) == (8, 88, 64)
    assert str(rec.response_id).startswith("resp_")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_legacy_completions_counted_once(api: Api, stream: bool, records) -> None:
    """The legacy completions endpoint gives one record, streamed usage included."""
    result = await api.call(
        lambda c: c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=stream)
    )
    if stream:
        await api.drain(result)
    [rec] = records()
    assert (rec.operation, rec.streamed, rec.input_tokens, rec.output_tokens) == (
        "completions",
        stream,
        8,
        24,
    )


async def test_embeddings_counted_once(api: Api, records) -> None:
    """Embeddings record input tokens and no output."""
    await api.call(
        lambda c: c.embeddings.create(model="text-embedding-3-small", input=["a b c d", "e"])
    )
    [rec] = records()
    assert (rec.operation, rec.model, rec.input_tokens, rec.output_tokens) == (
        "embeddings",
        "text-embedding-3-small",
        2,
        0,
    )


async def test_chat_parse_counted_once(api: Api, records) -> None:
    """chat.completions.parse (which skips create) is counted once."""
    parse = method(api.client, "chat.completions.parse", "beta.chat.completions.parse")
    await api.call(lambda c: parse(model="gpt-4o", messages=MESSAGES))
    [rec] = records()
    assert (rec.operation, rec.model, rec.streamed) == ("chat.completions", "gpt-4o", False)


async def test_responses_parse_counted_once(api: Api, records) -> None:
    """responses.parse is counted once."""
    require(api, "responses")
    parse = method(api.client, "responses.parse")
    await api.call(lambda c: parse(model="gpt-5", input="Hello"))
    [rec] = records()
    assert rec.operation == "responses"


async def test_responses_compact_counted_once(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    """responses.compact (and the beta API's) is counted as a responses call with its own
    usage."""
    compact = getattr(responses(api.client), "compact", None)
    if compact is None:
        pytest.skip("this openai version has no responses.compact")
    await api.call(lambda c: compact(model="gpt-5", input="Hello there"))
    [rec] = records()
    assert (rec.operation, rec.model, rec.output_tokens) == ("responses", "gpt-5", 88)


async def test_decisions_counted_once_with_the_responses_usage(api: Api, records) -> None:
    """decisions.create gives one record, its usage read as the Responses API's (cache writes
    kept apart)."""
    decisions = method(api.client, "decisions")
    await api.call(
        lambda c: decisions.create(
            model="gpt-6-luna", input="I love it", questions=[{"type": "score", "name": "mood"}]
        )
    )
    [rec] = records()
    assert (rec.operation, rec.model, rec.response_model, rec.streamed) == (
        "decisions",
        "gpt-6-luna",
        "gpt-6-luna",
        False,
    )
    assert (rec.input_tokens, rec.output_tokens, rec.total_tokens) == (9, 24, 33)
    assert rec.usage_details["cache_write_tokens"] == 16


async def test_images_take_the_model_from_the_request(api: Api, records) -> None:
    """Image responses name no model: the record takes it from the request."""
    await api.call(lambda c: c.images.generate(model="gpt-image-1", prompt="a red cat"))
    [rec] = records()
    assert (rec.operation, rec.model, rec.output_tokens) == ("images", "gpt-image-1", 1056)


async def test_transcription_token_usage(api: Api, records) -> None:
    """Transcriptions with token usage record audio input tokens."""
    await api.call(
        lambda c: c.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", b"RIFF"))
    )
    [rec] = records()
    assert (rec.operation, rec.model, rec.input_tokens, rec.output_tokens) == (
        "audio.transcriptions",
        "gpt-4o-transcribe",
        70,
        12,
    )
    assert rec.usage_details["input_audio_tokens"] == 70
    assert rec.cost_usd == pytest.approx(70 * 6e-6 + 12 * 10e-6)  # audio in at its own rate


async def test_transcription_duration_usage_kept_as_seconds(api: Api, records) -> None:
    """Duration-billed transcriptions keep their seconds and count no tokens."""
    await api.call(
        lambda c: c.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"))
    )
    [rec] = records()
    assert rec.total_tokens == 0
    assert rec.usage_details == {"audio_seconds": 7}


async def test_a_transcription_billed_by_duration_is_priced_per_audio_hour(
    api: Api, records
) -> None:
    await api.call(
        lambda c: c.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"))
    )
    [rec] = records()
    assert rec.cost_usd == pytest.approx(7 * 0.36 / 3600)  # whisper-1: $0.36 an hour


async def test_chat_stream_helper_counted_once(api: Api, records) -> None:
    """client.chat.completions.stream() is counted once and its final completion still builds."""
    helper = method(api.client, "chat.completions.stream", "beta.chat.completions.stream")
    if api.is_async:
        async with helper(model="gpt-4o", messages=MESSAGES) as s:
            final = await s.get_final_completion()
    else:
        with helper(model="gpt-4o", messages=MESSAGES) as s:
            final = s.get_final_completion()
    assert final.choices[0].message.content
    [rec] = records()
    assert (rec.operation, rec.streamed, rec.output_tokens) == ("chat.completions", True, 24)


async def test_responses_stream_helper_counted_once(api: Api, records) -> None:
    """client.responses.stream() is counted once and its final response is intact."""
    require(api, "responses")
    if api.is_async:
        async with api.client.responses.stream(model="gpt-5", input="Hi") as s:
            final = await s.get_final_response()
    else:
        with api.client.responses.stream(model="gpt-5", input="Hi") as s:
            final = s.get_final_response()
    assert final.usage is not None
    [rec] = records()
    assert (rec.operation, rec.streamed, rec.output_tokens) == ("responses", True, 88)


async def test_retrieve_list_cancel_and_input_tokens_not_counted(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    """Reads, cancels and pre-flight token counts are not usage."""
    count = getattr(getattr(responses(api.client), "input_tokens", None), "count", None)
    if count is not None:
        await api.call(lambda c: count(model="gpt-5", input="Hi"))
    calls = [
        lambda c: responses(c).retrieve("resp_unknown"),
        lambda c: responses(c).cancel("resp_unknown"),
    ]
    if hasattr(api.client.chat.completions, "list"):
        calls.append(lambda c: c.chat.completions.list())
    for call in calls:
        with pytest.raises(Exception):  # noqa: B017 - the fake answers 404; only the count matters
            await api.call(call)
    assert records() == []


async def test_background_response_counted_once_when_usage_arrives(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    """A background response is counted once, at the first retrieve that carries usage (the
    beta API's retrieve path ends in ``?beta=true``)."""
    queued = await api.call(
        lambda c: responses(c).create(model="gpt-5", input="Hi", **_background(api))
    )
    assert queued.usage is None
    assert records() == []
    await api.call(lambda c: responses(c).retrieve(queued.id))
    await api.call(lambda c: responses(c).retrieve(queued.id))
    [rec] = records()
    assert (rec.response_id, rec.model, rec.output_tokens) == (queued.id, "gpt-5", 88)


async def test_a_spent_budget_does_not_refuse_reading_a_background_response(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    """Its retrieve reads what was billed: a budget refuses new work, not that."""
    queued = await api.call(
        lambda c: responses(c).create(model="gpt-5", input="Hi", **_background(api))
    )
    with ai_tokentrace.trace_tokens("capped", budget=ai_tokentrace.Budget(limit_usd=0.0)):
        got = await api.call(lambda c: responses(c).retrieve(queued.id))
    assert got.status == "completed"
    [rec] = records()
    assert rec.response_id == queued.id


@pytest.mark.parametrize("path", ["responses", "beta.responses"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_background_response_polled_while_running_is_counted_once_when_done(
    kind: str, path: str, instrumented, records
) -> None:
    """Retrieves that find it still running (no usage yet) count nothing and keep waiting;
    the first that finds it done counts it, once."""
    api = Api(kind, FakeOpenAI(background_polls=2))
    resource = method(api.client, path)
    queued = await api.call(
        lambda c: resource.create(model="gpt-5", input="Hi", **_background(api))
    )
    statuses = []
    for _ in range(4):
        got = await api.call(lambda c: resource.retrieve(queued.id))
        statuses.append(got.status)
    assert statuses == ["in_progress", "in_progress", "completed", "completed"]
    [rec] = records()
    assert (rec.response_id, rec.model, rec.output_tokens, rec.status) == (
        queued.id,
        "gpt-5",
        88,
        "ok",
    )


async def test_a_failed_response_is_recorded_with_its_usage_as_an_error(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    got = await api.call(lambda c: responses(c).create(model="fake-failed", input="Hi"))
    assert got.status == "failed"
    [rec] = records()
    assert (rec.status, rec.usage_available) == ("error", True)
    assert rec.input_tokens > 0


async def test_background_response_counted_by_retrieve_stream(
    api: Api, responses: Callable[[Any], Any], records
) -> None:
    """A background response retrieved as a stream is counted once, from response.completed."""
    if "stream" not in inspect.signature(responses(api.client).retrieve).parameters:
        pytest.skip("this openai version cannot stream a retrieve")
    queued = await api.call(
        lambda c: responses(c).create(model="gpt-5", input="Hi", **_background(api))
    )
    await api.drain(await api.call(lambda c: responses(c).retrieve(queued.id, stream=True)))
    await api.call(lambda c: responses(c).retrieve(queued.id))
    [rec] = records()
    assert (rec.response_id, rec.streamed) == (queued.id, True)
