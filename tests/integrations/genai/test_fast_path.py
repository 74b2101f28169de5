"""The fast path for generate_content: outside a scope the caller queues only the usage fields,
and the record matches the one made inside a scope."""

from __future__ import annotations

from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client

from .conftest import MODEL

pytestmark = pytest.mark.usefixtures("instrumented")


@pytest.fixture(autouse=True)
def _no_budget_watching(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budgets (switched on process-wide by earlier tests) route every call the general way."""
    from ai_tokentrace import _capture

    monkeypatch.setattr(_capture, "pre_call_guards", [])
    monkeypatch.setattr(_capture, "capture_listeners", [])


SAME = (
    "provider",
    "operation",
    "model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "status",
    "cost_usd",
    "provider_total_tokens",
    "usage_available",
    "usage_details",
)


def _fields(rec: Any) -> dict[str, Any]:
    return {f: getattr(rec, f) for f in SAME}


@pytest.mark.parametrize("vertexai", [False, True], ids=["gemini", "vertex"])
def test_fast_and_scoped_records_agree(vertexai: bool, records) -> None:
    """The same call outside and inside a scope gives records that differ only in labels."""
    client = fake_genai_client(FakeGemini(thoughts_tokens=7), vertexai=vertexai)
    client.models.generate_content(model=MODEL, contents="Say hello.")
    with ai_tokentrace.trace_tokens("scoped"):
        client.models.generate_content(model=MODEL, contents="Say hello.")
    fast, scoped = records()
    assert (fast.trace_name, scoped.trace_name) == (None, "scoped")
    assert _fields(fast) == _fields(scoped)
    assert fast.provider == ("gcp.vertex_ai" if vertexai else "gcp.gemini")
    assert fast.reasoning_tokens == 7
    # the ids differ per response; older google-genai releases drop it on the Gemini API path
    assert (fast.response_id is None) == (scoped.response_id is None)


async def test_async_fast_path_counts_like_the_sync_one(records) -> None:
    """The async twin of the fast path gives the same record."""
    client = fake_genai_client(FakeGemini())
    client.models.generate_content(model=MODEL, contents="Say hello.")
    await client.aio.models.generate_content(model=MODEL, contents="Say hello.")
    sync_rec, async_rec = records()
    assert _fields(sync_rec) == _fields(async_rec)
