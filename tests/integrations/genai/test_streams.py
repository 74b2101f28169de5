"""Streams: last running total, unchanged iteration, one ``partial`` record when cut short."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_genai import FakeGemini

from .conftest import MODEL, run_finalizers

pytestmark = pytest.mark.usefixtures("instrumented")


async def test_stream_takes_the_last_running_total_not_the_sum(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """Every chunk carries a running total; the record equals the last one."""
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    [rec] = records()
    assert len(chunks) == 3
    assert rec.total_tokens == chunks[-1].usage_metadata.total_token_count == 36


async def test_stream_with_usage_only_on_the_last_chunk_is_counted(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """Chunks without usage_metadata are skipped; the one that has it is used."""
    fake.usage_on_last_chunk_only = True
    list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    [rec] = records()
    assert rec.total_tokens == 36


def _texts(chunks: list[Any]) -> list[Any]:
    return [(c.text, c.response_id) for c in chunks]


async def test_sync_stream_yields_the_same_chunks_as_without_instrumentation(
    client: Any, records: Any
) -> None:
    """The caller's generator is still a generator and yields the same chunks."""
    stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    assert inspect.isgenerator(stream)
    seen = [c.text for c in stream]
    ai_tokentrace.uninstrument()
    bare = [c.text for c in client.models.generate_content_stream(model=MODEL, contents="hi")]
    assert seen == bare
    assert len(records()) == 1


async def test_async_stream_is_awaited_then_iterated_as_before(client: Any, records: Any) -> None:
    """The async call still returns an awaitable giving an async generator of the same chunks."""
    pending = client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    assert inspect.isawaitable(pending)
    stream = await pending
    assert inspect.isasyncgen(stream)
    seen = [c.text async for c in stream]
    ai_tokentrace.uninstrument()
    bare = [
        c.text
        async for c in await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    ]
    assert seen == bare
    assert len(records()) == 1


async def test_sync_stream_broken_off_by_the_caller_is_one_partial_record(
    client: Any, records: Any
) -> None:
    """Stopping after one chunk and closing gives one partial record with the usage seen."""
    stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    first = next(stream)
    stream.close()
    [rec] = records()
    assert rec.status == "partial"
    assert rec.streamed
    assert rec.total_tokens == first.usage_metadata.total_token_count


async def test_sync_stream_dropped_without_close_is_recorded_when_collected(
    client: Any, records: Any
) -> None:
    """Breaking out of the loop and dropping the generator still yields one partial record."""
    for _ in client.models.generate_content_stream(model=MODEL, contents="hi"):
        break
    [rec] = records()
    assert rec.status == "partial"


async def test_async_stream_broken_off_by_the_caller_is_one_partial_record(
    client: Any, records: Any
) -> None:
    """Stopping after one chunk and closing the async stream gives one partial record."""
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    first = await anext(stream)
    await stream.aclose()
    await run_finalizers()
    [rec] = records()
    assert rec.status == "partial"
    assert rec.total_tokens == first.usage_metadata.total_token_count


async def test_unstarted_sync_stream_sends_nothing_and_records_nothing(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """A sync stream never iterated sent no request, so there is nothing to count."""
    stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    del stream
    assert fake.requests == []
    assert records() == []


async def test_sync_stream_failing_midway_is_partial_and_the_error_reaches_the_caller(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """A connection lost after two chunks: the SDK's error propagates, one partial record."""
    import httpx2

    fake.fail_stream_after = 2
    got: list[Any] = []
    with pytest.raises(httpx2.ReadError):  # noqa: PT012 - the error comes out of the iteration
        for chunk in client.models.generate_content_stream(model=MODEL, contents="hi"):
            got.append(chunk)
    [rec] = records()
    assert len(got) == 2
    assert rec.status == "partial"
    assert rec.error_type == "ReadError"
    assert rec.total_tokens == got[-1].usage_metadata.total_token_count == fake.billed_total


async def test_async_stream_failing_midway_is_partial_and_the_error_reaches_the_caller(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    """The async twin: error propagates unchanged, one partial record with the last usage."""
    import httpx2

    fake.fail_stream_after = 1
    got: list[Any] = []
    with pytest.raises(httpx2.ReadError):  # noqa: PT012 - the error comes out of the iteration
        async for chunk in await client.aio.models.generate_content_stream(
            model=MODEL, contents="hi"
        ):
            got.append(chunk)
    [rec] = records()
    assert rec.status == "partial"
    assert rec.total_tokens == got[-1].usage_metadata.total_token_count


async def test_stream_keeps_the_scope_of_the_request_not_of_the_consumer(
    client: Any, records: Any
) -> None:
    """A stream opened inside a scope but read after it closed is still labelled by that scope."""
    with ai_tokentrace.trace_tokens("opened-here") as scope:
        stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    list(stream)
    [rec] = records()
    assert rec.trace_name == "opened-here"
    assert scope.usage.total_tokens == 36


async def test_an_async_stream_keeps_the_scope_of_the_request_not_of_the_consumer(
    client: Any, records: Any
) -> None:
    """The async twin: awaited inside a scope, read after it closed (the SDK sends the request
    on the first chunk asked for)."""
    with ai_tokentrace.trace_tokens("opened-here") as scope:
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    got = [chunk async for chunk in stream]
    assert got
    [rec] = records()
    assert rec.trace_name == "opened-here"
    assert scope.usage.total_tokens == 36


async def test_an_async_stream_asked_for_in_a_scope_and_awaited_after_keeps_that_scope(
    client: Any, records: Any
) -> None:
    """The scope is the one the call was made in, even when its coroutine is awaited later."""
    with ai_tokentrace.trace_tokens("asked-here"):
        pending = client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    with ai_tokentrace.trace_tokens("awaited-here"):
        stream = await pending
    async for _ in stream:
        pass
    [rec] = records()
    assert rec.trace_name == "asked-here"


async def test_an_async_stream_in_a_scope_closed_early_is_partial_in_that_scope(
    client: Any, records: Any
) -> None:
    """Closing our scope-carrying iterator closes the SDK's; the per-request stream inside it
    is closed by the loop's async-generator finaliser (as without us) and recorded once."""
    with ai_tokentrace.trace_tokens("early"):
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
        first = await stream.__anext__()
        await stream.aclose()
    await run_finalizers()
    assert first.usage_metadata is not None
    [rec] = records()
    assert (rec.trace_name, rec.status) == ("early", "partial")


async def test_a_sync_stream_the_caller_began_is_counted_where_our_code_ends_it(
    client: Any, records: Any
) -> None:
    """Whether a call is our own traffic is decided where it begins (the first chunk asked
    for): a stream ended in a suppressed context (our loop's) keeps its record."""
    from ai_tokentrace._internal import suppressing

    stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    next(stream)
    with suppressing():
        list(stream)
    [rec] = records()
    assert (rec.status, rec.total_tokens) == ("ok", 36)


async def test_an_async_stream_the_caller_began_is_counted_where_our_code_ends_it(
    client: Any, records: Any
) -> None:
    from ai_tokentrace._internal import suppressing

    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    await anext(stream)
    with suppressing():
        [chunk async for chunk in stream]
    [rec] = records()
    assert (rec.status, rec.total_tokens) == ("ok", 36)


def _public_stream_original(models: Any) -> Any:
    """The SDK's own public stream method under our scope carrier (skips where there is none:
    an SDK without the private per-request method has its public one hooked instead)."""
    cls = type(models)
    if "_generate_content_stream" not in vars(cls):
        pytest.skip("this google-genai hooks its public stream method itself (no carrier)")
    return vars(cls)["generate_content_stream"].__wrapped__


async def test_outside_any_scope_the_caller_gets_the_sdks_own_stream(
    client: Any, records: Any
) -> None:
    """No scope to carry: the public methods hand back what the SDK's own do (a generator, or
    a coroutine), not a carrier of ours; the stream is counted all the same."""
    stream = client.models.generate_content_stream(model=MODEL, contents="hi")
    assert stream.gi_code is _public_stream_original(client.models).__code__
    pending = client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    assert pending.cr_code is _public_stream_original(client.aio.models).__code__
    list(stream)
    async for _ in await pending:
        pass
    assert len(records()) == 2


async def test_inside_a_scope_the_stream_comes_through_the_scope_carrier(
    client: Any, records: Any
) -> None:
    _public_stream_original(client.models)
    with ai_tokentrace.trace_tokens("carried"):
        stream = client.models.generate_content_stream(model=MODEL, contents="hi")
        pending = client.aio.models.generate_content_stream(model=MODEL, contents="hi")
    assert stream.gi_code is not _public_stream_original(client.models).__code__
    assert pending.cr_code is not _public_stream_original(client.aio.models).__code__
    list(stream)
    async for _ in await pending:
        pass
    assert [r.trace_name for r in records()] == ["carried", "carried"]
