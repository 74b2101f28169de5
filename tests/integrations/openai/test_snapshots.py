"""The pure snapshot functions: what the hot path reads, and the RawUsage the loop makes of it."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from ai_tokentrace._record import normalize
from ai_tokentrace.integrations._openai_extract import (
    from_completion_snapshot,
    from_embeddings_snapshot,
    from_responses_snapshot,
    snap_completion,
    snap_embeddings,
    snap_responses,
)


def vars_of(**fields: object) -> dict[str, object]:
    """A response's instance dict, which the snapshot functions take."""
    return fields


def test_completion_snapshot_reads_counts_and_detail_fields() -> None:
    """Counts stay raw; detail objects become their field dicts."""
    usage = NS(
        prompt_tokens=100,
        completion_tokens=40,
        total_tokens=140,
        prompt_tokens_details=NS(cached_tokens=64, audio_tokens=0),
        completion_tokens_details=NS(reasoning_tokens=16, accepted_prediction_tokens=3),
    )
    snap = snap_completion(vars_of(usage=usage))
    assert snap == (
        100,
        40,
        140,
        {"cached_tokens": 64, "audio_tokens": 0},
        vars(usage.completion_tokens_details),
        None,
    )


def test_completion_snapshot_of_a_response_without_usage_is_none() -> None:
    assert snap_completion(vars_of(usage=None)) is None


def test_completion_snapshot_keeps_dict_and_none_details() -> None:
    """Unvalidated SDK objects may hold dicts or None where detail objects belong."""
    usage = NS(
        prompt_tokens=5,
        completion_tokens=1,
        total_tokens=6,
        prompt_tokens_details={"cached_tokens": 2},
        completion_tokens_details=None,
    )
    assert snap_completion(vars_of(usage=usage)) == (5, 1, 6, {"cached_tokens": 2}, None, None)


def test_completion_snapshot_raises_on_an_object_without_usage_fields() -> None:
    """An odd object raises, so the caller's path falls back to the defensive extractor."""
    with pytest.raises((AttributeError, KeyError)):
        snap_completion(vars_of(usage=NS(prompt_tokens=1)))


def test_completion_raw_usage_splits_cached_and_reasoning() -> None:
    raw = from_completion_snapshot(
        (
            100,
            40,
            140,
            {"cached_tokens": 64, "cache_write_tokens": 8},
            {"reasoning_tokens": 16},
            None,
        )
    )
    counts = normalize(raw)
    assert (counts.input_tokens, counts.output_tokens, counts.total_tokens) == (100, 40, 140)
    assert (counts.cached_input_tokens, counts.reasoning_tokens) == (64, 16)
    assert raw.details == {"cache_write_tokens": 8}


def test_completion_raw_usage_keeps_nonzero_details_only() -> None:
    raw = from_completion_snapshot(
        (
            10,
            5,
            15,
            {"audio_tokens": 0, "image_tokens": 4},
            {"audio_tokens": 2, "rejected_prediction_tokens": None},
            None,
        )
    )
    assert raw.details == {"input_image_tokens": 4, "output_audio_tokens": 2}


def test_completion_raw_usage_tolerates_none_and_odd_values() -> None:
    """None counts are 0; a string where a number belongs is not kept as a detail."""
    raw = from_completion_snapshot((None, None, None, {"audio_tokens": "3"}, None, None))
    counts = normalize(raw)
    assert (counts.input_tokens, counts.output_tokens, counts.total_tokens) == (0, 0, 0)
    assert raw.details == {}


def test_responses_snapshot_and_raw_usage() -> None:
    usage = NS(
        input_tokens=300,
        output_tokens=50,
        total_tokens=350,
        input_tokens_details=NS(cached_tokens=128),
        output_tokens_details=NS(reasoning_tokens=20),
    )
    counts = normalize(from_responses_snapshot(snap_responses(vars_of(usage=usage))))
    assert (counts.input_tokens, counts.output_tokens) == (300, 50)
    assert (counts.cached_input_tokens, counts.reasoning_tokens) == (128, 20)


def test_embeddings_snapshot_and_raw_usage() -> None:
    snap = snap_embeddings(vars_of(usage=NS(prompt_tokens=8, total_tokens=8)))
    assert snap == (8, None, 8, None, None, None)
    counts = normalize(from_embeddings_snapshot(snap))
    assert (counts.input_tokens, counts.output_tokens, counts.total_tokens) == (8, 0, 8)


def test_completion_snapshot_reads_the_service_tier_that_served_it() -> None:
    usage = NS(
        prompt_tokens=1,
        completion_tokens=1,
        total_tokens=2,
        prompt_tokens_details=None,
        completion_tokens_details=None,
    )
    assert snap_completion(vars_of(usage=usage, service_tier="flex"))[5] == "flex"  # type: ignore[index]


def test_responses_snapshot_reads_the_service_tier_that_served_it() -> None:
    usage = NS(
        input_tokens=1,
        output_tokens=1,
        total_tokens=2,
        input_tokens_details=None,
        output_tokens_details=None,
    )
    assert snap_responses(vars_of(usage=usage, service_tier="priority"))[5] == "priority"  # type: ignore[index]


def test_raw_usage_keeps_the_service_tier_as_a_detail() -> None:
    raw = from_responses_snapshot((10, 5, 15, None, None, "flex"))
    assert raw.details == {"service_tier": "flex"}


@pytest.mark.parametrize("tier", [None, "", 3])
def test_raw_usage_leaves_out_a_missing_or_odd_service_tier(tier: object) -> None:
    raw = from_completion_snapshot((10, 5, 15, None, None, tier))
    assert raw.details == {}
