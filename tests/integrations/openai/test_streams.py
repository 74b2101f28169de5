"""Streams: the caller's object behaves as before; one record per stream, finalised once."""

from __future__ import annotations

import gc

import openai
import pytest

import ai_tokentrace

from .conftest import MESSAGES, Api, require

pytestmark = pytest.mark.usefixtures("instrumented")


def _chat(stream_options: dict | None = None, model: str = "gpt-4o-mini"):  # type: ignore[no-untyped-def]
    kwargs = {} if stream_options is None else {"stream_options": stream_options}
    return lambda c: c.chat.completions.create(
        model=model, messages=MESSAGES, stream=True, **kwargs
    )


def _fields(chunks: list) -> list:  # type: ignore[type-arg]
    """Every field of every chunk but its id (the fake numbers its responses)."""
    return [{k: v for k, v in ch.model_dump().items() if k != "id"} for ch in chunks]


async def test_caller_sees_the_chunks_it_would_have_seen(api: Api, records) -> None:
    """With usage injected, the usage-only chunk is hidden: every chunk still has a choice."""
    ai_tokentrace.uninstrument()
    bare = await api.drain(await api.call(_chat()))
    ai_tokentrace.instrument(integrations=["openai"])
    seen = await api.drain(await api.call(_chat()))
    assert _fields(seen) == _fields(bare)
    assert all(ch.choices for ch in seen)
    assert api.sent[-1]["stream_options"] == {"include_usage": True}
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens) == (True, 24)


async def test_stream_iterated_without_a_reference_is_counted_whole(api: Api, records) -> None:
    """``for chunk in client...create(stream=True)`` holds no name for the stream: its record
    still has the usage and status ok (the iterator keeps the proxy alive)."""
    seen = 0
    if api.is_async:
        async for chunk in await api.call(_chat()):
            seen += len(chunk.choices)
    else:
        for chunk in api.client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ):
            seen += len(chunk.choices)
    assert seen > 0
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.output_tokens) == ("ok", True, 24)


async def test_request_untouched_when_caller_asked_for_usage(api: Api, records) -> None:
    """A caller asking for usage gets its request as sent and sees the usage chunk itself."""
    options = {"include_usage": True}
    chunks = await api.drain(await api.call(_chat(options)))
    assert options == {"include_usage": True}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert api.sent[-1]["stream_options"] == {"include_usage": True}
    [rec] = records()
    assert rec.output_tokens == 24


async def test_callers_stream_options_are_not_mutated(api: Api, records) -> None:
    """Injection works on a copy: the caller's stream_options dict is left as it was."""
    options = {"include_obfuscation": False}
    await api.drain(await api.call(_chat(options)))
    assert options == {"include_obfuscation": False}
    assert api.sent[-1]["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert records()[0].usage_available


async def test_stream_options_given_through_extra_body_are_sent_with_ours(
    api: Api, records
) -> None:
    """``extra_body`` is laid over the body, so its stream options are the ones the server
    gets: ours join them there, and the caller's dicts are left as they were."""
    extra = {"stream_options": {"include_obfuscation": False}, "user": "u-1"}
    chunks = await api.drain(
        await api.call(
            lambda c: c.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_body=extra
            )
        )
    )
    assert extra == {"stream_options": {"include_obfuscation": False}, "user": "u-1"}
    sent = api.sent[-1]
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert sent["user"] == "u-1"
    assert all(chunk.choices for chunk in chunks)  # the usage-only chunk we asked for is ours
    [rec] = records()
    assert (rec.usage_available, rec.output_tokens) == (True, 24)


def test_request_options_made_by_the_caller_are_given_back_as_they_were(records) -> None:
    """Usage is asked for on the request options in place, for the one call: options the
    caller made for the client's low-level ``request`` have their own body again afterwards."""
    from openai._models import FinalRequestOptions
    from openai.types.chat import ChatCompletionChunk

    from ai_tokentrace.testing.fake_openai import fake_openai_client

    client = fake_openai_client()
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)
    own = options.json_data
    stream = client.request(
        ChatCompletionChunk, options, stream=True, stream_cls=openai.Stream[ChatCompletionChunk]
    )
    assert list(stream)
    assert options.json_data is own
    assert "stream_options" not in own
    assert client._fake.requests[-1][2]["stream_options"] == {"include_usage": True}
    [rec] = records()
    assert rec.output_tokens == 24


def test_request_options_are_given_back_when_a_budget_refuses_the_call(records) -> None:
    """A budget refusing the call before it is sent leaves the options as the caller made them."""
    from openai._models import FinalRequestOptions
    from openai.types.chat import ChatCompletionChunk

    from ai_tokentrace.testing.fake_openai import fake_openai_client

    client = fake_openai_client()
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)
    own = options.json_data
    with (
        ai_tokentrace.trace_tokens("capped", budget=ai_tokentrace.Budget(limit_usd=0.0)),
        pytest.raises(ai_tokentrace.BudgetExceededError),
    ):
        client.request(
            ChatCompletionChunk, options, stream=True, stream_cls=openai.Stream[ChatCompletionChunk]
        )
    assert options.json_data is own
    assert "stream_options" not in own
    assert client._fake.requests == []


async def test_injection_off_records_usage_unavailable(api: Api, memory, records) -> None:
    """With inject_stream_usage off the request is untouched and the record says so."""
    ai_tokentrace.configure(service=memory, inject_stream_usage=False)
    await api.drain(await api.call(_chat()))
    assert "stream_options" not in api.sent[-1]
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.total_tokens) == ("ok", False, 0)


async def test_a_reconfigured_pipelines_injection_setting_decides_the_next_stream(
    api: Api, memory, records
) -> None:
    """The hot path reads the setting the active pipeline bound, not the one it first saw."""
    ai_tokentrace.configure(service=memory, inject_stream_usage=False)
    await api.drain(await api.call(_chat()))
    assert "stream_options" not in api.sent[-1]
    ai_tokentrace.configure(service=memory, inject_stream_usage=True)
    await api.drain(await api.call(_chat()))
    assert api.sent[-1]["stream_options"] == {"include_usage": True}
    assert [r.usage_available for r in records()] == [False, True]


@pytest.mark.parametrize("ask", [False, True], ids=["injected", "asked"])
async def test_stream_is_still_an_sdk_stream(api: Api, records, ask: bool) -> None:
    """Ours or proxied, the stream passes isinstance checks and exposes the SDK stream's
    attributes."""
    stream = await api.call(_chat({"include_usage": True} if ask else None))
    assert isinstance(stream, openai.AsyncStream if api.is_async else openai.Stream)
    assert stream.response.status_code == 200
    await api.drain(stream)
    assert len(records()) == 1


async def test_a_stream_we_ask_usage_of_is_the_sdks_own_object(api: Api, records) -> None:
    """Where our strip feeds the stream's decoder, the caller gets the very object the SDK made
    (no proxy): its type, its identity, its methods."""
    stream = await api.call(_chat())
    assert type(stream) is (openai.AsyncStream if api.is_async else openai.Stream)
    await api.drain(stream)
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 24)


async def test_a_stream_whose_caller_asked_for_usage_is_the_sdks_own(api: Api, records) -> None:
    """A stream whose caller asked for usage comes as the SDK made it, too: the strip notices
    the usage event in the bytes without taking it out."""
    stream = await api.call(_chat({"include_usage": True}))
    assert type(stream) is (openai.AsyncStream if api.is_async else openai.Stream)
    await api.drain(stream)
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 24)


@pytest.mark.parametrize("ask", [False, True], ids=["injected", "asked"])
async def test_a_watched_stream_has_only_the_attributes_the_sdk_gave_it(
    api: Api, records, ask: bool
) -> None:
    """Our state stands in for the stream's decoder and is kept nowhere else on it: the
    caller's object has the names a bare stream has, and no other."""
    options = {"include_usage": True} if ask else None
    ai_tokentrace.uninstrument()
    bare = await api.call(_chat(options))
    ai_tokentrace.instrument(integrations=["openai"])
    stream = await api.call(_chat(options))
    assert vars(stream).keys() == vars(bare).keys()
    await api.close(bare)
    await api.drain(stream)
    [rec] = records()
    assert (rec.status, rec.output_tokens) == ("ok", 24)


async def test_stream_closed_through_the_class_is_partial(api: Api, records) -> None:
    """``openai.Stream.close(stream)`` finalises as ``stream.close()`` does."""
    stream = await api.call(_chat())
    if api.is_async:
        await openai.AsyncStream.close(stream)
    else:
        openai.Stream.close(stream)
    [rec] = records()
    assert rec.status == "partial"


async def test_closing_a_stream_made_before_instrument_adds_nothing(api: Api, records) -> None:
    """The SDK's close() is wrapped on the class: a stream that is not ours closes as before."""
    ai_tokentrace.uninstrument()
    stream = await api.call(_chat())
    ai_tokentrace.instrument(integrations=["openai"])
    await api.close(stream)
    assert stream.response.is_closed
    assert records() == []


async def test_an_error_from_the_sdks_close_reaches_the_caller_and_the_record_is_kept(
    api: Api, records, monkeypatch
) -> None:
    """Our close() wrapper never swallows the SDK's own exception, and still finalises."""
    stream = await api.call(_chat())

    def refuse(*args: object) -> None:
        raise OSError("socket already gone")

    monkeypatch.setattr(stream.response, "aclose" if api.is_async else "close", refuse)
    with pytest.raises(OSError, match="socket already gone"):
        await api.close(stream)
    [rec] = records()
    assert rec.status == "partial"


async def test_stream_used_as_context_manager(api: Api, records) -> None:
    """Leaving ``with`` on a stream read to the end gives one ok record."""
    if api.is_async:
        async with await api.call(_chat()) as stream:
            chunks = [c async for c in stream]
    else:
        with await api.call(_chat()) as stream:
            chunks = list(stream)
    assert chunks
    [rec] = records()
    assert rec.status == "ok"


async def test_stream_left_early_through_with_is_partial(api: Api, records) -> None:
    """Leaving ``with`` after the first chunk records a partial stream, once."""
    if api.is_async:
        async with await api.call(_chat()) as stream:
            await stream.__anext__()
    else:
        with await api.call(_chat()) as stream:
            next(stream)
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.streamed) == ("partial", False, True)


async def test_stream_closed_early_is_partial(api: Api, records) -> None:
    """close() before usage arrived records one partial stream; closing again adds nothing."""
    stream = await api.call(_chat())
    await api.close(stream)
    await api.close(stream)
    [rec] = records()
    assert rec.status == "partial"


def test_stream_broken_off_and_dropped_is_partial(records) -> None:
    """A loop broken off and the stream dropped records one partial stream when collected."""
    api = Api(
        "sync", __import__("ai_tokentrace.testing.fake_openai").testing.fake_openai.FakeOpenAI()
    )
    stream = api.client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    del stream
    gc.collect()
    [rec] = records()
    assert rec.status == "partial"


async def test_stream_dropped_unconsumed_is_partial(api: Api, records) -> None:
    """A stream never iterated and then dropped still gives one partial record."""
    stream = await api.call(_chat())
    del stream
    gc.collect()
    [rec] = records()
    assert (rec.status, rec.streamed) == ("partial", True)


async def test_chat_stream_error_passes_through_and_is_recorded(api: Api, records) -> None:
    """An error mid-stream reaches the caller unchanged; the record is partial with its type."""
    stream = await api.call(_chat(model="fake-stream-error"))
    with pytest.raises(openai.APIError, match="fake stream broken off"):
        await api.drain(stream)
    [rec] = records()
    assert (rec.status, rec.error_type) == ("partial", "APIError")


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
async def test_a_stream_cut_off_passes_the_error_through_and_is_recorded(
    api: Api, records, endpoint: str
) -> None:
    """A connection lost mid-stream: the SDK's error reaches the caller after the chunks that
    arrived; the record is partial with that error's type (a chat stream is watched in its
    bytes, a Responses one through our proxy)."""
    from ai_tokentrace.testing.fake_openai import httpx_module

    request = _chat(model="fake-stream-cut")
    if endpoint == "responses":
        require(api, "responses")

        def request(c):  # type: ignore[no-untyped-def]
            return c.responses.create(model="fake-stream-cut", input="Hi", stream=True)

    got: list = []  # type: ignore[type-arg]
    # newer SDKs wrap the transport's ReadError in APIConnectionError; 1.x let it through
    lost = (openai.APIConnectionError, httpx_module().ReadError)
    with pytest.raises(lost) as raised:  # noqa: PT012 - raised by the iteration
        stream = await api.call(request)
        if api.is_async:
            async for chunk in stream:
                got.append(chunk)
        else:
            for chunk in stream:
                got.append(chunk)
    assert len(got) == 2
    [rec] = records()
    assert (rec.status, rec.error_type, rec.usage_available) == (
        "partial",
        type(raised.value).__name__,
        False,
    )


async def test_responses_error_event_records_partial(api: Api, records) -> None:
    """A Responses stream that ends on an error event is recorded partial with the error code."""
    require(api, "responses")
    stream = await api.call(
        lambda c: c.responses.create(model="fake-stream-error", input="x", stream=True)
    )
    assert await api.drain(stream)
    [rec] = records()
    assert (rec.status, rec.error_type, rec.usage_available) == ("partial", "server_error", False)


async def test_responses_stream_chunks_unchanged(api: Api, records) -> None:
    """Responses streams are passed through event for event."""
    require(api, "responses")
    ai_tokentrace.uninstrument()
    bare = await api.drain(
        await api.call(lambda c: c.responses.create(model="gpt-5", input="Hi", stream=True))
    )
    ai_tokentrace.instrument(integrations=["openai"])
    seen = await api.drain(
        await api.call(lambda c: c.responses.create(model="gpt-5", input="Hi", stream=True))
    )
    assert [e.type for e in seen] == [e.type for e in bare]
    assert len(records()) == 1


async def test_scope_is_the_one_active_when_the_stream_started(api: Api, records) -> None:
    """A stream consumed outside its scope is still attributed to the scope it started in."""
    with ai_tokentrace.trace_tokens("chat-step", user_id="u1") as scope:
        stream = await api.call(_chat())
    await api.drain(stream)
    [rec] = records()
    assert (rec.trace_name, rec.user_id) == ("chat-step", "u1")
    assert scope.usage.output_tokens == 24


# -- the same lifecycle on a stream the caller holds through our proxy (Responses) ------------
def _responses(c):  # type: ignore[no-untyped-def]
    return c.responses.create(model="gpt-5", input="Hi", stream=True)


async def _proxied(api: Api):  # type: ignore[no-untyped-def]
    require(api, "responses")
    stream = await api.call(_responses)
    assert type(stream) is not (openai.AsyncStream if api.is_async else openai.Stream)
    return stream


async def test_a_proxied_stream_read_with_next_to_its_end_is_ok(api: Api, records) -> None:
    """``next()`` / ``__anext__()`` one event at a time, as far as StopIteration: one ok record."""
    stream = await _proxied(api)
    events = []
    try:
        while True:
            events.append(await stream.__anext__() if api.is_async else next(stream))
    except (StopIteration, StopAsyncIteration):
        pass
    assert events[-1].type == "response.completed"
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.streamed) == ("ok", True, True)


async def test_a_proxied_stream_used_as_context_manager_is_ok(api: Api, records) -> None:
    stream = await _proxied(api)
    if api.is_async:
        async with stream as entered:
            assert entered is stream
            events = [e async for e in stream]
    else:
        with stream as entered:
            assert entered is stream
            events = list(stream)
    assert events
    [rec] = records()
    assert (rec.status, rec.usage_available) == ("ok", True)


async def test_a_proxied_stream_left_early_through_with_is_partial(api: Api, records) -> None:
    stream = await _proxied(api)
    if api.is_async:
        async with stream:
            await stream.__anext__()
    else:
        with stream:
            next(stream)
    assert stream.response.is_closed
    [rec] = records()
    assert (rec.status, rec.usage_available) == ("partial", False)


async def test_a_proxied_stream_closed_early_is_partial_once(api: Api, records) -> None:
    stream = await _proxied(api)
    await api.close(stream)
    await api.close(stream)
    assert stream.response.is_closed
    [rec] = records()
    assert rec.status == "partial"


async def test_an_error_leaving_with_on_a_proxied_stream_is_the_callers(api: Api, records) -> None:
    """The caller's own exception leaves ``with`` unchanged; the stream is recorded partial."""
    stream = await _proxied(api)
    with pytest.raises(LookupError, match="the caller's own"):  # noqa: PT012
        if api.is_async:
            async with stream:
                await stream.__anext__()
                raise LookupError("the caller's own")
        else:
            with stream:
                next(stream)
                raise LookupError("the caller's own")
    [rec] = records()
    assert rec.status == "partial"


async def test_a_proxied_stream_dropped_unconsumed_is_partial(api: Api, records) -> None:
    stream = await _proxied(api)
    del stream
    gc.collect()
    [rec] = records()
    assert (rec.status, rec.streamed) == ("partial", True)


async def test_a_proxied_stream_closed_through_the_class_is_partial(api: Api, records) -> None:
    """``openai.Stream.close(stream)`` on the proxy finalises as ``stream.close()`` does."""
    stream = await _proxied(api)
    if api.is_async:
        await openai.AsyncStream.close(stream)
    else:
        openai.Stream.close(stream)
    assert stream.response.is_closed
    [rec] = records()
    assert rec.status == "partial"


_ENDS_IN_OUR_CONTEXT = {
    "chat drained": (_chat(), "drain", "ok"),
    "chat closed early": (_chat(), "close", "partial"),
    "responses drained": (_responses, "drain", "ok"),
    "responses closed early": (_responses, "close", "partial"),
}


@pytest.mark.parametrize("case", list(_ENDS_IN_OUR_CONTEXT))
async def test_a_stream_the_caller_began_is_counted_where_our_code_ends_it(
    api: Api, records, case: str
) -> None:
    """Whether a call is our own traffic is decided where it begins: a stream ended in a
    suppressed context (our loop's, where the collector may finalise an abandoned stream)
    keeps its record."""
    from ai_tokentrace._internal import suppressing

    if case.startswith("responses"):
        require(api, "responses")
    make, end, status = _ENDS_IN_OUR_CONTEXT[case]
    stream = await api.call(make)
    with suppressing():
        await (api.drain(stream) if end == "drain" else api.close(stream))
    [rec] = records()
    assert (rec.status, rec.streamed, rec.usage_available) == (status, True, status == "ok")


async def test_a_stream_begun_in_our_own_context_is_not_counted_wherever_it_ends(
    api: Api, records
) -> None:
    from ai_tokentrace._internal import suppressing

    with suppressing():
        stream = await api.call(_chat())
    await api.drain(stream)
    assert records() == []


def test_a_stream_abandoned_in_a_cycle_and_collected_on_our_loop_is_counted(records) -> None:
    """The collector may finalise an abandoned stream on any thread, ours too: the record of
    a stream the caller began is kept there."""
    from ai_tokentrace import async_utils
    from ai_tokentrace.testing.fake_openai import fake_openai_client

    client = fake_openai_client()
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    cycle: list[object] = [stream]
    cycle.append(cycle)  # only the cyclic collector frees it now

    async def collect_on_the_loop() -> None:
        gc.collect()

    gc.disable()  # so no collection on this thread frees it first
    try:
        del stream, cycle
        async_utils.submit(collect_on_the_loop()).result(30)
    finally:
        gc.enable()
    [rec] = records()
    assert (rec.status, rec.streamed) == ("partial", True)
