"""Records, totals and the one normalisation step."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_tokentrace import TokenUsage, TokenUsageRecord
from ai_tokentrace._record import RawUsage, normalize

from ._support import make_record


def test_openai_buckets_keep_cached_in_input_and_reasoning_in_output() -> None:
    """OpenAI reports cached inside prompt and reasoning inside completion: nothing is added twice."""
    c = normalize(RawUsage(prompt=100, completion=40, total=140, cached=60, reasoning=30))
    assert (c.input_tokens, c.output_tokens, c.total_tokens) == (100, 40, 140)
    assert (c.cached_input_tokens, c.reasoning_tokens) == (60, 30)
    assert c.provider_total_tokens is None


def test_gemini_buckets_add_thoughts_and_tool_prompt() -> None:
    """Gemini reports thoughts and tool-use prompt apart: output includes thoughts, input the tool prompt."""
    c = normalize(
        RawUsage(
            prompt=100,
            completion=20,
            reasoning=50,
            reasoning_in_completion=False,
            tool_prompt=7,
            cached=30,
            total=177,
        )
    )
    assert (c.input_tokens, c.output_tokens, c.total_tokens) == (107, 70, 177)
    assert (c.cached_input_tokens, c.reasoning_tokens) == (30, 50)


def test_disagreeing_provider_total_is_kept_apart() -> None:
    """total is always input + output; a provider total that differs is kept in provider_total_tokens."""
    c = normalize(RawUsage(prompt=10, completion=5, total=99))
    assert c.total_tokens == 15
    assert c.provider_total_tokens == 99


@pytest.mark.parametrize("odd", [None, -3, 2.5, "12", True, float("nan"), object()])
def test_odd_counts_become_zero_with_a_debug_log(
    odd: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Missing, None, negative or non-integer counts become 0, never an exception."""
    caplog.set_level(logging.DEBUG, logger="ai_tokentrace")
    c = normalize(RawUsage(prompt=odd, completion=4))
    assert c.input_tokens == 0
    assert c.output_tokens == 4
    if odd is not None:
        assert "odd token count" in caplog.text


def test_integral_float_counts_are_accepted() -> None:
    """12.0 is a count of 12 (some JSON decoders produce floats)."""
    assert normalize(RawUsage(prompt=12.0)).input_tokens == 12


def test_cached_and_reasoning_are_clamped_to_their_bucket() -> None:
    """A subset can never exceed the bucket it belongs to."""
    c = normalize(RawUsage(prompt=10, completion=5, cached=50, reasoning=9))
    assert c.cached_input_tokens == 10
    assert c.reasoning_tokens == 5


def test_record_is_immutable() -> None:
    """Records are values: assignment fails."""
    rec = make_record()
    with pytest.raises(AttributeError):
        rec.model = "other"  # type: ignore[misc]


def test_to_dict_has_every_api_field_json_ready() -> None:
    """to_dict() carries the API's field names and an ISO 8601 UTC timestamp."""
    d = make_record(tags=("a",), metadata={"k": "v"}).to_dict()
    for name in [
        "record_id",
        "timestamp",
        "provider",
        "operation",
        "model",
        "response_model",
        "response_id",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cached_input_tokens",
        "reasoning_tokens",
        "streamed",
        "status",
        "latency_ms",
        "cost_usd",
        "trace_name",
        "user_id",
        "session_id",
        "tags",
        "metadata",
    ]:
        assert name in d
    assert d["timestamp"] == "2026-01-01T00:00:00+00:00"
    assert d["tags"] == ["a"]
    json.dumps(d)


_text = st.text(max_size=12)
_opt_text = st.none() | _text


@given(
    model=_opt_text,
    user=_opt_text,
    tags=st.lists(_text, max_size=3),
    metadata=st.dictionaries(_text, st.integers() | _text | st.none(), max_size=3),
    cost=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    micro=st.integers(0, 999_999),
    tokens=st.integers(0, 10**12),
)
def test_compact_json_equals_to_dict(
    model: str | None,
    user: str | None,
    tags: list[str],
    metadata: dict[str, object],
    cost: float | None,
    micro: int,
    tokens: int,
) -> None:
    """The hand-assembled JSON line parses to exactly to_dict(), whatever the strings hold."""
    rec = make_record(
        model=model,
        user_id=user,
        tags=tuple(tags),
        metadata=metadata,
        cost_usd=cost,
        input_tokens=tokens,
        timestamp=datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=timezone.utc),
    )
    assert json.loads(rec.to_json()) == rec.to_dict()


def test_from_json_round_trips() -> None:
    """A JSONL line read back is the same record."""
    rec = make_record(tags=("x", "y"), metadata={"a": 1}, cost_usd=0.25)
    back = TokenUsageRecord.from_json(rec.to_json())
    assert back.to_dict() == rec.to_dict()


def test_token_usage_adds_up() -> None:
    """TokenUsage is addable, and sum() works from 0."""
    a = TokenUsage(1, 2, 3, 0, 1)
    b = TokenUsage(10, 20, 30, 5, 0)
    assert a + b == TokenUsage(11, 22, 33, 5, 1)
    assert sum([a, b]) == a + b
