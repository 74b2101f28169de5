"""The fast path: a plain call, in a scope or not, is queued as a flat snapshot, and its record
is the same as the one the general path (taken while a budget watches) makes."""

from __future__ import annotations

import contextlib
from typing import Any

import pydantic
import pytest

import ai_tokentrace
from ai_tokentrace import _capture

from ..._support import REFUSALS, call_fields, loop_held, needing_a_capture_at_once
from .conftest import LONG_MESSAGES, Api, require

pytestmark = pytest.mark.usefixtures("instrumented", "no_budget_watching")

CALLS = {
    "chat": lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=LONG_MESSAGES),
    "completions": lambda c: c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi"),
    "responses": lambda c: c.responses.create(model="gpt-4o-mini", input="Hi"),
    "embeddings": lambda c: c.embeddings.create(model="text-embedding-3-small", input="Hi"),
}


def _pydantic_objects(value: Any) -> list[Any]:
    found: list[Any] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, pydantic.BaseModel):
            found.append(v)
        elif isinstance(v, (tuple, list)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return found


@pytest.mark.parametrize("endpoint", list(CALLS))
async def test_fast_scoped_and_general_records_agree(api: Api, endpoint: str, records) -> None:
    """The same call outside a scope, inside one, and inside one with a budget (the general
    path) gives records that differ only in labels."""
    if endpoint == "responses":
        require(api, "responses")
    await api.call(CALLS[endpoint])
    with ai_tokentrace.trace_tokens("scoped"):
        await api.call(CALLS[endpoint])
    with ai_tokentrace.trace_tokens("budgeted", budget=ai_tokentrace.Budget(limit_usd=100.0)):
        await api.call(CALLS[endpoint])
    fast, scoped, general = records()
    assert (fast.trace_name, scoped.trace_name, general.trace_name) == (None, "scoped", "budgeted")
    assert call_fields(fast) == call_fields(scoped) == call_fields(general)
    assert len({fast.record_id, scoped.record_id, general.record_id}) == 3
    # the fake server numbers its responses: same kind of id on all, never one without the other
    for name in ("response_id", "request_id"):
        assert (getattr(fast, name) is None) == (getattr(scoped, name) is None), name
        assert (getattr(fast, name) is None) == (getattr(general, name) is None), name
    if endpoint != "embeddings":
        assert fast.response_id is not None


async def test_fast_path_keeps_the_request_id(api: Api, records) -> None:
    """The x-request-id the SDK stored on the response reaches the record."""
    import openai._models

    if not hasattr(openai._models, "add_request_id"):
        pytest.skip("this openai version does not keep the request id on responses")
    await api.call(CALLS["chat"])
    [rec] = records()
    assert rec.request_id is not None
    assert rec.request_id.startswith("req")


async def test_fast_path_queues_no_sdk_object(api: Api, records) -> None:
    """What waits in the queue is numbers and strings: the response can be freed at once."""
    from ai_tokentrace.integrations import openai as adapter

    with loop_held() as queued:
        await api.call(CALLS["chat"])
    [item] = queued
    assert type(item) is tuple
    assert item[0] is adapter._capture_of  # the fast path's snapshot, not the general path's
    assert _pydantic_objects(item[1:]) == []
    assert len(records()) == 1


async def test_fast_path_keeps_no_prompt(api: Api) -> None:
    """The caller's messages are not held while the record waits to be built."""
    with loop_held() as queued:
        await api.call(CALLS["chat"])
    [item] = queued
    assert type(item) is tuple
    assert "word" not in repr(item)


async def test_stats_count_fast_path_records(api: Api, records) -> None:
    """stats()["recorded"] counts fast-path calls while they wait in the queue and after."""
    with loop_held() as queued:
        for _ in range(3):
            await api.call(CALLS["embeddings"])
        assert ai_tokentrace.stats()["recorded"] == 3
    assert [type(item) for item in queued] == [tuple] * 3
    assert len(records()) == 3
    assert ai_tokentrace.stats()["recorded"] == 3


async def test_records_follow_a_replaced_pipeline(api: Api) -> None:
    """After configure() swaps the pipeline, calls are recorded into the new one."""
    from ai_tokentrace.testing import InMemoryTokenUsageService

    await api.call(CALLS["chat"])
    second = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=second)
    await api.call(CALLS["chat"])
    assert ai_tokentrace.flush(10)
    assert len(second.records) == 1


@pytest.mark.parametrize("condition", REFUSALS)
def test_fast_begin_refuses_whenever_a_capture_is_needed_at_once(
    condition: str, monkeypatch, no_budget_watching
) -> None:
    """Our own traffic, and calls a budget must settle as they happen, stay off the fast path
    (a scope alone does not: it shares the snapshot)."""
    from openai._models import FinalRequestOptions

    from ai_tokentrace.integrations import openai as adapter

    options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": "gpt-4o-mini"}
    )
    args = (object, options)
    assert adapter._fast_begin(args, {}) is not None
    with ai_tokentrace.trace_tokens("s"):
        assert _capture.may_snapshot()
        assert adapter._fast_begin(args, {}) is not None
    with contextlib.ExitStack() as stack:
        needing_a_capture_at_once(condition, stack, monkeypatch)
        assert not _capture.may_snapshot()
        assert adapter._fast_begin(args, {}) is None


@pytest.mark.parametrize("condition", REFUSALS)
async def test_a_call_needing_a_capture_at_once_is_never_queued_as_a_snapshot(
    api: Api, condition: str, monkeypatch, no_budget_watching
) -> None:
    """The same refusals through each wrapper: the sync one writes the checks out itself."""
    with loop_held() as queued:
        await api.call(CALLS["chat"])
    assert [type(item) for item in queued] == [tuple]  # the fast path, when nothing refuses it
    with contextlib.ExitStack() as stack:
        needing_a_capture_at_once(condition, stack, monkeypatch)
        with loop_held() as queued:
            await api.call(CALLS["chat"])
    assert not [item for item in queued if type(item) in (tuple, _capture.LazyCapture)]
    if condition == "suppressed":
        assert queued == []  # our own traffic is not counted at all


async def test_scoped_call_keeps_no_sdk_object(api: Api, records, no_budget_watching) -> None:
    """Inside a scope the call is a snapshot too, shared by the scope and the queue: the
    response is not kept, and nothing is built on the caller's thread."""
    with loop_held() as queued, ai_tokentrace.trace_tokens("scoped") as scope:
        await api.call(CALLS["chat"])
    [lazy] = queued
    assert type(lazy) is _capture.LazyCapture
    assert lazy._capture is None
    assert _pydantic_objects(list(lazy._item or ())[1:]) == []
    assert scope.usage.output_tokens == 24
    [rec] = records()
    assert scope.records[0].record_id == rec.record_id


async def test_a_budget_in_a_scope_sees_the_call_as_it_happens(api: Api, records) -> None:
    """With a budget watching, a scoped call's capture is built on the caller's thread."""
    budget = ai_tokentrace.Budget(limit_usd=100.0)
    with loop_held() as queued, ai_tokentrace.trace_tokens("scoped", budget=budget) as scope:
        await api.call(CALLS["chat"])
    [capture] = queued
    assert type(capture) is _capture.Capture
    assert budget.spent() > 0
    assert scope.usage.output_tokens == 24


STREAMS = {
    "chat": lambda c, **kw: c.chat.completions.create(
        model="gpt-4o-mini", messages=LONG_MESSAGES, stream=True, **kw
    ),
    "completions": lambda c, **kw: c.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Hi", stream=True, **kw
    ),
}


@pytest.mark.parametrize("asked", [False, True], ids=["injected", "caller asked"])
@pytest.mark.parametrize("endpoint", list(STREAMS))
async def test_fast_and_general_stream_records_agree(
    api: Api, endpoint: str, asked: bool, records, monkeypatch
) -> None:
    """A stream begun on the fast path (outside a scope) and on the general path (a budget
    watching) sends the same request, shows the caller the same chunks, and gives the same
    record."""
    from ai_tokentrace.integrations import openai as adapter

    begun: list[Any] = []  # what the fast begin decided, call by call (it runs as it is)
    fast_begin = adapter._fast_stream_begin

    def watched(*args: Any) -> Any:
        begun.append(fast_begin(*args))
        return begun[-1]

    monkeypatch.setattr(adapter, "_fast_stream_begin", watched)
    kw: dict[str, Any] = {"stream_options": {"include_usage": True}} if asked else {}
    await api.drain(await api.call(lambda c: STREAMS[endpoint](c, **kw)))  # the client is seen
    fast = await api.drain(await api.call(lambda c: STREAMS[endpoint](c, **kw)))
    with ai_tokentrace.trace_tokens("budgeted", budget=ai_tokentrace.Budget(limit_usd=100.0)):
        general = await api.drain(await api.call(lambda c: STREAMS[endpoint](c, **kw)))
    assert begun[1] is not None  # the second stream began on the fast path ...
    assert begun[2] is None  # ... the budgeted one on the general path
    first, fast_rec, general_rec = records()
    assert [c.model_dump(exclude={"id"}) for c in fast] == [
        c.model_dump(exclude={"id"}) for c in general
    ]
    assert api.sent[1] == api.sent[2]
    assert api.sent[1]["stream_options"] == {"include_usage": True}
    assert call_fields(fast_rec) == call_fields(general_rec) == call_fields(first)
    assert fast_rec.usage_available
    assert fast_rec.status == "ok"


@pytest.mark.parametrize("asked", [False, True], ids=["injected", "caller asked"])
async def test_a_finished_stream_queues_its_request_id_and_no_response_object(
    api: Api, asked: bool, records
) -> None:
    """What a stream leaves in the queue is strings, numbers and the usage event's text: its
    request id is read off the headers as it ends, so neither they nor any SDK object wait
    there for the loop (holding them made every call slower)."""
    import httpx

    from ai_tokentrace.integrations import openai as adapter

    kw: dict[str, Any] = {"stream_options": {"include_usage": True}} if asked else {}
    with loop_held() as queued:
        await api.drain(await api.call(lambda c: STREAMS["chat"](c, **kw)))
    [item] = queued
    assert item[0] is adapter._detached_capture_of
    rest = item[2:]  # after the builder and the call's own begin (model, times, scope)
    assert not any(isinstance(v, (httpx.Headers, httpx.Response)) for v in rest)
    assert _pydantic_objects(rest) == []
    [rec] = records()
    assert rec.request_id is not None
    assert rec.request_id in rest


def _stream_options(**fields: Any) -> Any:
    from openai._models import FinalRequestOptions

    values: dict[str, Any] = {
        "method": "post",
        "url": "/chat/completions",
        "json_data": {"model": "gpt-4o-mini", "stream": True},
    }
    values.update(fields)
    return FinalRequestOptions.construct(**values)


def test_fast_stream_begin_asks_for_usage_and_leaves_the_callers_body(
    api: Api, monkeypatch
) -> None:
    """The body gets ``include_usage`` as a new dict; the caller's is kept to be put back."""
    from ai_tokentrace.integrations import openai as adapter

    monkeypatch.setitem(adapter._provider_by_type, type(api.client), "openai")
    options = _stream_options()
    body = options.json_data
    call = adapter._fast_stream_begin(api.client, options)
    assert call is not None
    assert call.injected
    assert options.json_data == {**body, "stream_options": {"include_usage": True}}
    assert body == {"model": "gpt-4o-mini", "stream": True}
    adapter._put_back(call)
    assert options.json_data is body


@pytest.mark.parametrize(
    "case",
    [
        "client not seen yet",
        "azure",
        "other stream options",
        "extra json",
        "raw response",
        "suppressed",
        "process-wide budget",
        "scoped budget",
        "injection refused before",
        "responses",
    ],
)
def test_fast_stream_begin_leaves_every_other_stream_to_the_general_path(
    api: Api, case: str, monkeypatch, no_budget_watching
) -> None:
    """Where the general path has more to decide, the fast one refuses and changes nothing."""
    from ai_tokentrace._internal import suppressing
    from ai_tokentrace.integrations import openai as adapter

    monkeypatch.setitem(adapter._provider_by_type, type(api.client), "openai")
    fields: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if case == "client not seen yet":
            del adapter._provider_by_type[type(api.client)]
        elif case == "azure":
            adapter._provider_by_type[type(api.client)] = "azure.ai.openai"
        elif case == "other stream options":
            fields["json_data"] = {"model": "m", "stream_options": {"include_obfuscation": False}}
        elif case == "extra json":
            fields["extra_json"] = {"seed": 1}
        elif case == "raw response":
            fields["headers"] = {"X-Stainless-Raw-Response": "true"}
        elif case == "suppressed":
            stack.enter_context(suppressing())
        elif case == "process-wide budget":
            monkeypatch.setattr(_capture, "watching_unscoped", True)
        elif case == "scoped budget":
            stack.enter_context(ai_tokentrace.trace_tokens("s", budget=ai_tokentrace.Budget(1.0)))
        elif case == "injection refused before":
            monkeypatch.setattr(adapter, "_no_inject", {"http://elsewhere"})
        else:
            fields["url"] = "/responses"
        options = _stream_options(**fields)
        before = dict(options.__dict__)
        assert adapter._fast_stream_begin(api.client, options) is None
        assert options.__dict__ == before


@pytest.mark.parametrize("kwargs", [{"stream": False}, {}], ids=["stream=False", "no stream"])
def test_general_begin_takes_the_stream_begin_only_for_a_stream(
    api: Api, kwargs: dict[str, Any], monkeypatch, no_budget_watching
) -> None:
    """A plain request on the general path is counted as one, never asked for streamed usage
    (the stream begin is for ``stream=True`` only)."""
    from ai_tokentrace.integrations import openai as adapter

    monkeypatch.setitem(adapter._provider_by_type, type(api.client), "openai")
    options = _stream_options(json_data={"model": "gpt-4o-mini"})
    before = dict(options.__dict__)
    call, _, _ = adapter._general_begin(api.client, (object, options), kwargs)
    assert call is not None
    assert not call.injected
    assert options.__dict__ == before
