"""Pricing: published prices with cached and reasoning tokens, unknown models, overrides."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

import ai_tokentrace
from ai_tokentrace import _capture, pricing
from ai_tokentrace._pricing import price_record
from ai_tokentrace._record import RawUsage, TokenUsageRecord

from ._support import priced_apart

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    pricing.clear()
    yield
    pricing.clear()


def rec(
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    cached: int = 0,
    reasoning: int = 0,
    provider: str = "openai",
    response_model: str | None = None,
    **fields: object,
) -> TokenUsageRecord:
    values: dict[str, object] = {
        "record_id": "r",
        "timestamp": WHEN,
        "provider": provider,
        "operation": "chat.completions",
        "model": model,
        "response_model": response_model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cached_input_tokens": cached,
        "reasoning_tokens": reasoning,
    }
    values.update(fields)
    return TokenUsageRecord(**values)  # type: ignore[arg-type]


def cost_of(record: TokenUsageRecord) -> float | None:
    return price_record(record)[0]


def test_openai_cached_tokens_are_charged_once_at_the_cached_rate() -> None:
    """gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output; cached is part of input."""
    expected = 400 * 2.50e-6 + 600 * 1.25e-6 + 200 * 10e-6
    assert cost_of(rec("gpt-4o", 1000, 200, cached=600)) == pytest.approx(expected, rel=1e-12)


def test_openai_reasoning_tokens_are_charged_as_output_once() -> None:
    """o4-mini: $1.10/M input, $0.275/M cached, $4.40/M output with reasoning inside output."""
    expected = 1000 * 1.10e-6 + 1000 * 0.275e-6 + 3000 * 4.40e-6
    got = cost_of(rec("o4-mini", 2000, 3000, cached=1000, reasoning=2500))
    assert got == pytest.approx(expected, rel=1e-12)


def test_gemini_thinking_tokens_are_charged_at_the_output_rate() -> None:
    """gemini-2.5-flash: $0.30/M input, $0.03/M cached, $2.50/M output (thinking included)."""
    expected = 6000 * 0.30e-6 + 4000 * 0.03e-6 + 1500 * 2.50e-6
    got = cost_of(rec("gemini-2.5-flash", 10000, 1500, 4000, 1000, provider="gcp.gemini"))
    assert got == pytest.approx(expected, rel=1e-12)


def test_gemini_pro_long_prompts_use_the_long_context_tier() -> None:
    """gemini-2.5-pro above 200k input tokens: $2.50/M input, $0.25/M cached, $15/M output."""
    expected = 200_000 * 2.50e-6 + 100_000 * 0.25e-6 + 1000 * 15e-6
    got = cost_of(rec("gemini-2.5-pro", 300_000, 1000, 100_000, provider="gcp.vertex_ai"))
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("provider", "gp_provider", "model", "counts"),
    [
        ("openai", "openai", "gpt-4o-mini", (5000, 700, 2048, 0)),
        ("openai", "openai", "o3", (12000, 5000, 4096, 3000)),
        ("openai", "openai", "gpt-5", (1000, 9000, 0, 8000)),
        ("gcp.gemini", "google", "gemini-2.0-flash", (4000, 100, 1000, 0)),
        ("gcp.gemini", "google", "gemini-2.5-pro", (250_000, 3000, 50_000, 2000)),
        ("azure.ai.openai", "azure", "gpt-4o", (3000, 300, 1024, 0)),
    ],
)
def test_fast_path_matches_genai_prices_calc_price(
    provider: str, gp_provider: str, model: str, counts: tuple[int, int, int, int]
) -> None:
    """Our per-token floats give what genai-prices' own Decimal calculation gives."""
    from genai_prices import Usage, calc_price

    i, o, c, r = counts
    usage = Usage(input_tokens=i, output_tokens=o, cache_read_tokens=c, output_reasoning_tokens=r)
    want = calc_price(usage, model, provider_id=gp_provider, genai_request_timestamp=WHEN)
    got = cost_of(rec(model, i, o, c, r, provider=provider))
    assert got == pytest.approx(float(want.total_price), rel=1e-9)


@pytest.mark.parametrize(
    ("provider", "gp_provider", "model", "counts", "details", "modal"),
    [
        (  # a realtime call: audio in and out at $32 and $64/M, text at $4 and $16/M
            "openai",
            "openai",
            "gpt-realtime",
            (1000, 300, 0, 0),
            {"input_audio_tokens": 400, "output_audio_tokens": 200},
            {"input_audio_tokens": 400, "output_audio_tokens": 200},
        ),
        (  # a transcription: its input is audio ($6/M, text $2.5/M)
            "openai",
            "openai",
            "gpt-4o-transcribe",
            (70, 12, 0, 0),
            {"input_audio_tokens": 70},
            {"input_audio_tokens": 70},
        ),
        (  # image input at $10/M, text at $5/M
            "openai",
            "openai",
            "gpt-image-1",
            (1000, 10, 0, 0),
            {"input_image_tokens": 500},
            {"input_image_tokens": 500},
        ),
        (  # Gemini audio, some of it cached: $1/M audio, $0.10/M cached audio
            "gcp.gemini",
            "google",
            "gemini-2.5-flash",
            (1000, 300, 300, 0),
            {
                "prompt_tokens_details": {"TEXT": 600, "AUDIO": 400},
                "cache_tokens_details": {"TEXT": 200, "AUDIO": 100},
            },
            {"input_audio_tokens": 400, "cache_audio_read_tokens": 100},
        ),
        (  # Gemini image output at $30/M, text output at $2.50/M
            "gcp.gemini",
            "google",
            "gemini-2.5-flash-image",
            (100, 1300, 0, 0),
            {"candidates_tokens_details": {"IMAGE": 1290, "TEXT": 10}},
            {"output_image_tokens": 1290},
        ),
        (  # the Interactions API's breakdowns say the same
            "gcp.gemini",
            "google",
            "gemini-2.5-flash",
            (1000, 300, 0, 0),
            {"input_tokens_by_modality": {"text": 600, "audio": 400}},
            {"input_audio_tokens": 400},
        ),
    ],
)
def test_audio_and_image_tokens_are_charged_at_their_own_rates(
    provider: str,
    gp_provider: str,
    model: str,
    counts: tuple[int, int, int, int],
    details: dict[str, object],
    modal: dict[str, int],
) -> None:
    """As genai-prices' own calculation charges them, from what the records' usage_details
    say (OpenAI's counts, Gemini's per-modality breakdowns)."""
    from genai_prices import Usage, calc_price

    i, o, c, r = counts
    usage = Usage(
        input_tokens=i, output_tokens=o, cache_read_tokens=c, output_reasoning_tokens=r, **modal
    )
    want = calc_price(usage, model, provider_id=gp_provider, genai_request_timestamp=WHEN)
    got = cost_of(rec(model, i, o, c, r, provider=provider, usage_details=details))
    text_only = cost_of(rec(model, i, o, c, r, provider=provider))
    assert got == pytest.approx(float(want.total_price), rel=1e-9)
    assert got != pytest.approx(text_only)


# -- service tiers and batch processing (genai-prices' price variants) ------------------------

TIERED = [
    # (provider, genai-prices provider, model, usage_details, genai-prices price_context)
    ("openai", "openai", "gpt-5", {"service_tier": "flex"}, {"service_tier": "flex"}),
    ("openai", "openai", "gpt-5", {"service_tier": "priority"}, {"service_tier": "priority"}),
    ("openai", "openai", "o3", {"service_tier": "flex"}, {"service_tier": "flex"}),
    ("openai", "openai", "gpt-4.1", {"processing": "batch"}, {"processing": "batch"}),
    (  # a flex request sent as a batch: the first variant naming each price wins
        "openai",
        "openai",
        "gpt-5-mini",
        {"service_tier": "flex", "processing": "batch"},
        {"service_tier": "flex", "processing": "batch"},
    ),
    ("openai", "openai", "gpt-5.4", {"service_tier": "flex"}, {"service_tier": "flex"}),
    ("gcp.gemini", "google", "gemini-2.5-pro", {"processing": "batch"}, {"processing": "batch"}),
    ("gcp.gemini", "google", "gemini-4-argon", {"service_tier": "flex"}, {"service_tier": "flex"}),
    (  # Vertex AI says it as the traffic type
        "gcp.vertex_ai",
        "google",
        "gemini-4-argon",
        {"traffic_type": "ON_DEMAND_PRIORITY"},
        {"service_tier": "priority"},
    ),
]


@pytest.mark.parametrize(("provider", "gp_provider", "model", "details", "context"), TIERED)
def test_a_service_tier_or_a_batch_is_priced_as_genai_prices_prices_it(
    provider: str, gp_provider: str, model: str, details: dict[str, str], context: dict[str, str]
) -> None:
    """Flex and batch cost half the standard price, priority more: genai-prices' price
    variants, selected by what the record's usage_details say served the call."""
    from genai_prices import Usage, calc_price

    if not priced_apart(model, gp_provider, context, WHEN):
        named = ", ".join(f"{k}={v}" for k, v in context.items())
        pytest.skip(f"this genai-prices has no {named} price for {model}")
    usage = Usage(input_tokens=300_000, output_tokens=20_000, cache_read_tokens=100_000)
    want = calc_price(
        usage, model, provider_id=gp_provider, genai_request_timestamp=WHEN, price_context=context
    )
    standard = calc_price(usage, model, provider_id=gp_provider, genai_request_timestamp=WHEN)
    got = cost_of(rec(model, 300_000, 20_000, 100_000, provider=provider, usage_details=details))
    assert got == pytest.approx(float(want.total_price), rel=1e-9)
    assert got != pytest.approx(float(standard.total_price))


@pytest.mark.parametrize(
    "details",
    [
        {"service_tier": "default"},
        {"service_tier": "auto"},
        {"service_tier": "standard"},
        {"service_tier": "scale"},
        {"service_tier": None},
        {"traffic_type": "ON_DEMAND"},
        {"traffic_type": "PROVISIONED_THROUGHPUT"},
        {"processing": "online"},
    ],
)
def test_a_standard_or_unpriced_tier_costs_the_standard_price(details: dict[str, object]) -> None:
    plain = cost_of(rec("gpt-5", 1000, 100))
    assert cost_of(rec("gpt-5", 1000, 100, usage_details=details)) == plain


def test_a_tier_is_read_whatever_its_case() -> None:
    flex = cost_of(rec("gpt-5", 1000, 100, usage_details={"service_tier": "flex"}))
    assert cost_of(rec("gpt-5", 1000, 100, usage_details={"service_tier": "FLEX"})) == flex


def test_a_tier_price_applies_from_its_start_date_only() -> None:
    """gpt-5's flex price starts on 2026-10-12 in the table: a record before it is standard."""
    before = datetime(2026, 10, 1, tzinfo=timezone.utc)
    details = {"service_tier": "flex"}
    plain = cost_of(rec("gpt-5", 1000, 100, timestamp=before))
    assert cost_of(rec("gpt-5", 1000, 100, timestamp=before, usage_details=details)) == plain
    assert cost_of(rec("gpt-5", 1000, 100, usage_details=details)) == pytest.approx(
        (cost_of(rec("gpt-5", 1000, 100)) or 0) / 2
    )


def test_your_own_price_is_used_whatever_the_tier() -> None:
    """An override has no variants: the tier does not change it."""
    pricing.set_price("gpt-5", input_per_mtok=1.0, output_per_mtok=2.0)
    expected = 1000 * 1e-6 + 100 * 2e-6
    got = cost_of(rec("gpt-5", 1000, 100, usage_details={"service_tier": "flex"}))
    assert got == pytest.approx(expected, rel=1e-12)


def test_an_alias_keeps_the_tier_prices_of_its_model() -> None:
    pricing.alias("my-gpt", "gpt-5")
    details = {"service_tier": "flex"}
    assert cost_of(rec("my-gpt", 1000, 100, usage_details=details)) == cost_of(
        rec("gpt-5", 1000, 100, usage_details=details)
    )


def test_estimate_and_lookup_take_a_service_tier_and_batch() -> None:
    standard = pricing.estimate("gpt-5", 1_000_000, 0, provider="openai")
    assert standard == pytest.approx(1.25)
    assert pricing.estimate("gpt-5", 1_000_000, 0, provider="openai", service_tier="flex") == (
        pytest.approx(0.625)
    )
    assert pricing.estimate("gpt-5", 1_000_000, 0, provider="openai", batch=True) == (
        pytest.approx(0.625)
    )
    info = pricing.lookup("gpt-5", provider="openai", service_tier="priority")
    assert info is not None
    assert info.rates.per_mtok()["input"] == pytest.approx(2.5)


def test_audio_tokens_of_a_model_without_audio_rates_cost_what_text_does() -> None:
    plain = cost_of(rec("gpt-4o-mini", 1000, 100))
    assert cost_of(rec("gpt-4o-mini", 1000, 100, usage_details={"input_audio_tokens": 400})) == (
        plain
    )


def test_odd_modal_counts_never_price_a_token_twice_or_below_zero() -> None:
    """More audio than input, negative or non-numeric counts: held to their bucket."""
    all_audio = cost_of(rec("gpt-realtime", 100, 0, usage_details={"input_audio_tokens": 100}))
    assert all_audio == pytest.approx(100 * 32e-6)
    for odd in (1_000_000, -5, "many", True, None):
        got = cost_of(rec("gpt-realtime", 100, 0, usage_details={"input_audio_tokens": odd}))
        assert got in (pytest.approx(all_audio), pytest.approx(100 * 4e-6))


def test_lookup_shows_the_audio_rates_a_model_has() -> None:
    rates = pricing.lookup("gpt-realtime", provider="openai")
    assert rates is not None
    shown = rates.rates.per_mtok()
    assert (shown["input_audio"], shown["output_audio"]) == (pytest.approx(32), pytest.approx(64))
    assert "input_audio" not in pricing.lookup("gpt-4o-mini").rates.per_mtok()  # type: ignore[union-attr]


@pytest.mark.parametrize(("model", "seconds"), [("whisper-1", 7), ("gpt-live-1", 1234.5)])
def test_usage_billed_by_duration_is_priced_as_genai_prices_prices_it(
    model: str, seconds: float
) -> None:
    """A transcription billed by the second, a Live voice session: per audio hour."""
    from genai_prices import Usage, calc_price

    want = calc_price(
        Usage(audio_seconds=seconds), model, provider_id="openai", genai_request_timestamp=WHEN
    )
    got = cost_of(rec(model, 0, 0, usage_details={"audio_seconds": seconds}))
    assert got == pytest.approx(float(want.total_price), rel=1e-9)
    assert got is not None
    assert got > 0


@pytest.mark.parametrize("odd", [None, -3, "long", True, 0])
def test_odd_or_missing_seconds_cost_nothing(odd: object) -> None:
    assert cost_of(rec("whisper-1", 0, 0, usage_details={"audio_seconds": odd})) == 0.0


def test_seconds_of_a_model_priced_per_token_only_cost_nothing_more() -> None:
    plain = cost_of(rec("gpt-4o-mini", 1000, 100))
    assert cost_of(rec("gpt-4o-mini", 1000, 100, usage_details={"audio_seconds": 60})) == plain


def test_estimate_and_lookup_price_audio_seconds() -> None:
    assert pricing.estimate("gpt-live-1", 0, 0, audio_seconds=1800) == pytest.approx(1.5)
    shown = pricing.lookup("whisper-1").rates.per_mtok()  # type: ignore[union-attr]
    assert shown["audio_per_hour"] == pytest.approx(0.36)
    assert "audio_per_hour" not in pricing.lookup("gpt-4o-mini").rates.per_mtok()  # type: ignore[union-attr]


def test_unknown_model_is_unpriced_not_zero() -> None:
    """A model no table knows gets cost_usd=None and no source, never 0."""
    assert price_record(rec("acme-llm-unreleased", 100, 10)) == (None, None)


def test_record_without_usage_is_unpriced() -> None:
    """A call whose usage never arrived has an unknown cost, not a zero one."""
    assert cost_of(rec("gpt-4o", 0, 0, usage_available=False)) is None


def test_source_stamps_package_version_and_matched_model() -> None:
    """The price source names genai-prices' version, the snapshot and the model matched."""
    from genai_prices import __version__

    _, source = price_record(rec("gpt-4o", 10, 10, response_model="gpt-4o-2024-08-06"))
    assert source == f"genai-prices {__version__} (bundled snapshot) openai:gpt-4o"


def test_user_override_wins_over_the_table_and_is_stamped_override() -> None:
    """set_price replaces the published price for records built afterwards."""
    pricing.set_price("gpt-4o", input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=0.5)
    cost, source = price_record(rec("gpt-4o", 1000, 100, cached=400))
    assert cost == pytest.approx(600 * 1e-6 + 400 * 0.5e-6 + 100 * 2e-6)
    assert source == "override"


def test_override_prices_a_fine_tuned_model_the_table_does_not_know() -> None:
    """A fine-tuned model gets a price once the user gives one."""
    model = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
    pricing.set_price(model, input_per_mtok=0.30, output_per_mtok=1.20)
    assert cost_of(rec(model, 1_000_000, 1_000_000)) == pytest.approx(1.50)


def test_override_can_price_reasoning_apart() -> None:
    """reasoning_per_mtok charges reasoning tokens apart from the rest of the output."""
    pricing.set_price("r-model", input_per_mtok=0, output_per_mtok=10, reasoning_per_mtok=1)
    assert cost_of(rec("r-model", 0, 1000, reasoning=800)) == pytest.approx(200e-5 + 800e-6)


def test_provider_specific_override_leaves_other_providers_alone() -> None:
    """An override for azure.ai.openai does not change OpenAI's own price."""
    pricing.set_price("gpt-4o", input_per_mtok=100, output_per_mtok=100, provider="azure.ai.openai")
    azure = cost_of(rec("gpt-4o", 1000, 0, provider="azure.ai.openai"))
    openai_cost = cost_of(rec("gpt-4o", 1000, 0))
    assert azure == pytest.approx(0.1)
    assert openai_cost == pytest.approx(1000 * 2.5e-6)


def test_alias_prices_an_azure_deployment_like_its_base_model() -> None:
    """A deployment name is priced like the base model it is aliased to."""
    assert cost_of(rec("prod-chat", 1000, 0, provider="azure.ai.openai")) is None
    pricing.alias("prod-chat", "gpt-4o-mini", provider="azure.ai.openai")
    cost, source = price_record(rec("prod-chat", 1000, 0, provider="azure.ai.openai"))
    assert cost == pytest.approx(1000 * 0.15e-6)
    assert source is not None
    assert source.endswith("via alias prod-chat")


def test_azure_record_is_priced_from_the_model_that_answered() -> None:
    """Without an alias, Azure's response model (the real model) prices the deployment."""
    record = rec("my-deployment", 1000, 100, provider="azure.ai.openai", response_model="gpt-4o")
    assert cost_of(record) == pytest.approx(1000 * 2.5e-6 + 100 * 10e-6)


def test_gemini_model_path_prefix_is_ignored() -> None:
    """'models/gemini-2.0-flash' is priced as gemini-2.0-flash."""
    got = cost_of(rec("models/gemini-2.0-flash", 1000, 1000, provider="gcp.gemini"))
    assert got == pytest.approx(1000 * 0.10e-6 + 1000 * 0.40e-6)


def test_removing_an_override_restores_the_table_price() -> None:
    """remove() forgets a user price."""
    pricing.set_price("gpt-4o", input_per_mtok=100, output_per_mtok=100)
    pricing.remove("gpt-4o")
    assert cost_of(rec("gpt-4o", 1000, 0)) == pytest.approx(1000 * 2.5e-6)


def test_negative_price_is_rejected() -> None:
    """A negative or non-numeric price is a mistake the caller hears about at once."""
    with pytest.raises(ValueError, match="input_per_mtok"):
        pricing.set_price("x", input_per_mtok=-1, output_per_mtok=1)


def test_load_prices_reads_prices_and_aliases_from_json(tmp_path: Path) -> None:
    """A JSON prices file sets prices and aliases in one go."""
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "house-model": {"input_per_mtok": 2, "output_per_mtok": 4},
                "eu-deploy": {"alias": "gpt-4o", "provider": "azure.ai.openai"},
            }
        )
    )
    assert pricing.load_prices(path) == 2
    assert cost_of(rec("house-model", 1_000_000, 0)) == pytest.approx(2.0)
    assert cost_of(rec("eu-deploy", 1000, 0, provider="azure.ai.openai")) == pytest.approx(2.5e-3)


def test_lookup_reports_rates_and_origin() -> None:
    """lookup() shows the per-million rates used and where they came from."""
    info = pricing.lookup("gpt-4o-mini", provider="openai")
    assert info is not None
    assert info.matched == "openai:gpt-4o-mini"
    assert info.rates.per_mtok()["input"] == pytest.approx(0.15)
    assert info.rates.per_mtok()["cached_input"] == pytest.approx(0.075)


def test_estimate_prices_hypothetical_counts() -> None:
    """estimate() prices counts without a call having been made."""
    got = pricing.estimate("gpt-4o", 1000, 200, cached_input_tokens=600)
    assert got == pytest.approx(400 * 2.5e-6 + 600 * 1.25e-6 + 200 * 10e-6)


def _raw(payload: RawUsage) -> tuple[RawUsage, None, None]:
    return payload, None, None


def test_emitted_record_carries_cost_and_source(
    records: Callable[[], list[TokenUsageRecord]],
) -> None:
    """A record built by the pipeline has cost_usd and price_source filled in."""
    usage = RawUsage(prompt=1000, completion=200, cached=600)
    _capture.emit("openai", "chat.completions", "gpt-4o", usage, _raw, _capture.now())
    (record,) = records()
    assert record.cost_usd == pytest.approx(0.00375)
    assert record.price_source is not None
    assert record.price_source.startswith("genai-prices")


def test_scope_counts_unknown_models_as_unpriced(memory: object) -> None:
    """A scope's cost is a lower bound and says how many records had no price."""
    with ai_tokentrace.trace_tokens("mix") as scope:
        _capture.emit("openai", "chat.completions", "gpt-4o", RawUsage(1000, 0), _raw, 0.0)
        _capture.emit("openai", "chat.completions", "acme-x", RawUsage(1000, 0), _raw, 0.0)
    assert scope.unpriced == 1
    assert scope.cost_usd == pytest.approx(1000 * 2.5e-6)


@pytest.mark.subprocess
def test_import_does_not_load_the_price_table() -> None:
    """`import ai_tokentrace` leaves genai-prices unimported (it loads on the first record)."""
    code = "import sys, ai_tokentrace; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.subprocess
@pytest.mark.parametrize("setup", ["instrument(integrations=[])", "configure()"])
def test_setting_up_loads_the_price_table_on_a_thread_of_its_own(setup: str) -> None:
    """`instrument()` and `configure()` start the import off the caller's thread (once,
    however often they are called), so neither the caller nor the export loop waits for it
    later."""
    code = (
        "import threading, ai_tokentrace\n"
        "from ai_tokentrace import _pricing\n"
        "seen = []\n"
        "real = _pricing.warm\n"
        "_pricing.warm = lambda: (seen.append(threading.current_thread().name), real())\n"
        f"ai_tokentrace.{setup}\n"
        "_pricing._warming.join()\n"
        f"ai_tokentrace.{setup}\n"
        "print(seen, _pricing._gp is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['ai-tokentrace-prices'] True"
