"""The fast path: a plain call outside any scope is queued as a flat snapshot, and its record is
the same as the one the general (scoped) path makes."""

from __future__ import annotations

import contextlib
from typing import Any

import pydantic
import pytest

import ai_tokentrace

from ..._support import call_fields, loop_held
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
async def test_fast_and_scoped_records_agree(api: Api, endpoint: str, records) -> None:
    """The same call outside and inside a scope gives records that differ only in labels."""
    if endpoint == "responses":
        require(api, "responses")
    await api.call(CALLS[endpoint])
    with ai_tokentrace.trace_tokens("scoped"):
        await api.call(CALLS[endpoint])
    fast, scoped = records()
    assert (fast.trace_name, scoped.trace_name) == (None, "scoped")
    assert call_fields(fast) == call_fields(scoped)
    assert fast.record_id != scoped.record_id
    # the fake server numbers its responses: same kind of id on both, never one without the other
    for name in ("response_id", "request_id"):
        assert (getattr(fast, name) is None) == (getattr(scoped, name) is None), name
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


@pytest.mark.parametrize("condition", ["scope", "suppressed", "process-wide budget"])
def test_fast_begin_refuses_whenever_may_snapshot_does(condition: str, monkeypatch) -> None:
    """The adapter inlines may_snapshot()'s checks: each one also keeps a request off the
    fast path."""
    from openai._models import FinalRequestOptions

    from ai_tokentrace import _capture
    from ai_tokentrace._internal import suppressing
    from ai_tokentrace.integrations import openai as adapter

    options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": "gpt-4o-mini"}
    )
    args = (object, options)
    assert adapter._fast_begin(args, {}) is not None
    with contextlib.ExitStack() as stack:
        if condition == "scope":
            stack.enter_context(ai_tokentrace.trace_tokens("s"))
        elif condition == "suppressed":
            stack.enter_context(suppressing())
        else:
            monkeypatch.setattr(_capture, "watching_unscoped", True)
        assert not _capture.may_snapshot()
        assert adapter._fast_begin(args, {}) is None


async def test_scoped_call_keeps_no_sdk_object(api: Api, records) -> None:
    """Inside a scope the capture is built at once, from the numbers: the response is not kept."""
    with loop_held() as queued, ai_tokentrace.trace_tokens("scoped") as scope:
        await api.call(CALLS["chat"])
    [capture] = queued
    assert _pydantic_objects([capture.payload]) == []
    assert scope.usage.output_tokens == 24
    assert len(records()) == 1
