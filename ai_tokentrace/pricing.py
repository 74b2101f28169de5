"""Prices: look them up, add your own, alias deployments, or (opt-in) refresh them.

Prices come from the bundled snapshot of the ``genai-prices`` package. Your own prices win over
it; aliases map a name (an Azure deployment, a fine-tuned model) to a base model's price::

    from ai_tokentrace import pricing

    pricing.set_price("ft:gpt-4o-mini:acme::abc", input_per_mtok=0.30, output_per_mtok=1.20)
    pricing.alias("prod-gpt4o", "gpt-4o", provider="azure.ai.openai")
    pricing.lookup("gpt-4o").rates.per_mtok()

Changes apply to records built from then on; records already made keep their cost and their
``price_source`` stamp.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from . import _pricing
from ._pricing import ModelRates, PriceInfo

__all__ = [
    "ModelRates",
    "PriceInfo",
    "alias",
    "clear",
    "estimate",
    "load_prices",
    "lookup",
    "refresh",
    "remove",
    "set_price",
]


def set_price(
    model: str,
    *,
    input_per_mtok: float,
    output_per_mtok: float,
    cached_input_per_mtok: float | None = None,
    reasoning_per_mtok: float | None = None,
    per_request: float = 0.0,
    provider: str | None = None,
) -> None:
    """Price ``model`` yourself, in USD per million tokens (negotiated rates, fine-tuned models).

    ``cached_input_per_mtok`` defaults to the input rate, ``reasoning_per_mtok`` to the output
    rate. ``provider`` (e.g. ``"azure.ai.openai"``) limits the price to one provider.
    Records priced this way carry ``price_source="override"``.
    """
    _pricing.add_override(
        model,
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        cached_input_per_mtok=cached_input_per_mtok,
        reasoning_per_mtok=reasoning_per_mtok,
        per_request=per_request,
        provider=provider,
    )


def alias(name: str, base_model: str, *, provider: str | None = None) -> None:
    """Price ``name`` (e.g. an Azure deployment) like ``base_model``."""
    _pricing.set_alias(name, base_model, provider)


def remove(model: str, *, provider: str | None = None) -> None:
    """Forget a price or alias set for ``model``."""
    _pricing.remove_override(model, provider)


def clear() -> None:
    """Forget every price and alias you set."""
    _pricing.clear_overrides()


def lookup(
    model: str,
    *,
    provider: str | None = None,
    when: datetime | None = None,
    service_tier: str | None = None,
    batch: bool = False,
) -> PriceInfo | None:
    """The price a record for ``model`` would get and where it comes from; None when unknown.

    ``service_tier`` (``"flex"``, ``"priority"``) and ``batch`` select the rates a record
    reporting them gets."""
    return _pricing.lookup(model, provider, when, service_tier, batch)


def estimate(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
    provider: str | None = None,
    service_tier: str | None = None,
    batch: bool = False,
    audio_seconds: float = 0.0,
) -> float | None:
    """USD for a call with these counts (cached within input, reasoning within output), at
    the ``service_tier``'s or batch rates when given. ``audio_seconds``: usage billed by
    duration (``whisper-1``, a ``gpt-live-1`` voice session)."""
    return _pricing.estimate(
        model,
        input_tokens,
        output_tokens,
        cached_input_tokens,
        reasoning_tokens,
        provider,
        None,
        service_tier,
        batch,
        audio_seconds,
    )


def refresh(timeout: float = 30.0) -> bool:
    """Opt-in network fetch of the latest genai-prices table; True when it was installed."""
    return _pricing.refresh(timeout)


def load_prices(source: str | Path | Mapping[str, Any]) -> int:
    """Load prices and aliases from a JSON file (or a mapping); returns how many were set.

    ``{"my-ft-model": {"input_per_mtok": 0.3, "output_per_mtok": 1.2},
       "prod-gpt4o": {"alias": "gpt-4o", "provider": "azure.ai.openai"}}``
    ``AI_TOKENTRACE_PRICES_FILE`` names such a file to load on the first priced record.
    """
    data: Any = source
    if not isinstance(source, Mapping):
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError("a prices file must hold a JSON object of model -> price")
    count = 0
    for model, spec in data.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"price for {model!r} must be an object, not {spec!r}")
        spec = dict(spec)
        provider = spec.pop("provider", None)
        if "alias" in spec:
            alias(str(model), str(spec["alias"]), provider=provider)
        else:
            try:
                set_price(str(model), provider=provider, **spec)
            except TypeError as exc:
                raise ValueError(f"price for {model!r}: {exc}") from None
        count += 1
    return count


def _load_env_file() -> None:
    path = os.environ.get("AI_TOKENTRACE_PRICES_FILE", "").strip()
    if path:
        load_prices(path)
