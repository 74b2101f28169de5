"""Pricing: turns a built record into ``(cost_usd, price_source)``. Runs on the background loop.

Prices come from the ``genai-prices`` package's bundled snapshot (imported lazily, on the first
record, never at ``import ai_tokentrace``, never over the network unless :func:`refresh` is
called), overlaid with the user's own prices and aliases. Each (provider, model) is resolved
once into plain per-token floats, so pricing a record costs a dict lookup and a few multiplies.

Buckets: cached input tokens are a subset of input and are charged at the cached rate instead of
the input rate (never twice); reasoning tokens are a subset of output and are charged at the
output rate unless the table prices reasoning apart. Unknown models get ``cost_usd=None``.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple, TypeAlias

from ._internal import logger
from ._record import TokenUsageRecord

__all__ = [
    "ModelRates",
    "PriceInfo",
    "add_override",
    "clear_overrides",
    "estimate",
    "lookup",
    "price_context",
    "price_record",
    "refresh",
    "remove_override",
    "set_alias",
    "warm",
]

_MTOK = 1_000_000.0
_HOUR = 3600.0  # genai-prices prices durations per hour

# Our provider names (OpenTelemetry GenAI) -> genai-prices provider ids to try, in order.
_PROVIDER_IDS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "azure.ai.openai": ("azure", "openai"),
    "gcp.gemini": ("google",),
    "gcp.vertex_ai": ("google",),
}

# A rate is USD per token, or a tiered one: (base, ((input-token threshold, price), ...)).
Rate: TypeAlias = "float | tuple[float, tuple[tuple[int, float], ...]]"


class ModalTokens(NamedTuple):
    """The tokens of a call priced apart from text where a model has rates for them: each a
    part of its bucket (``input_audio`` of the input, cached audio included; ``cached_audio``
    of the cached input; ``output_*`` of the output), as genai-prices counts them."""

    input_audio: int = 0
    cached_audio: int = 0
    input_image: int = 0
    cache_write: int = 0
    output_audio: int = 0
    output_image: int = 0


@dataclass(frozen=True, slots=True)
class ModelRates:
    """USD per token for each bucket (``None``: not priced apart, falls back as documented).

    Audio, image and cache-write tokens are priced at their own rates where the table has them
    (an audio token costs three to eight times a text one), else as the text of their bucket."""

    input: Rate
    output: Rate
    cached_input: Rate | None = None
    reasoning: Rate | None = None
    per_request: float = 0.0
    input_audio: Rate | None = None
    cached_audio: Rate | None = None
    input_image: Rate | None = None
    cache_write: Rate | None = None
    output_audio: Rate | None = None
    output_image: Rate | None = None
    audio_second: float | None = None  # usage billed by duration (genai-prices' audio hours)
    tiered: bool = field(init=False, default=False, compare=False)
    modal: bool = field(init=False, default=False, compare=False)  # any of the last six set

    def __post_init__(self) -> None:
        modal = self._modal_rates()
        rates = (self.input, self.output, self.cached_input, self.reasoning, *modal)
        object.__setattr__(self, "tiered", any(isinstance(r, tuple) for r in rates))
        object.__setattr__(self, "modal", any(r is not None for r in modal))

    def _modal_rates(self) -> tuple[Rate | None, ...]:
        """In :class:`ModalTokens` order."""
        return (
            self.input_audio,
            self.cached_audio,
            self.input_image,
            self.cache_write,
            self.output_audio,
            self.output_image,
        )

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached: int,
        reasoning: int,
        modal: ModalTokens | None = None,
        audio_seconds: float = 0.0,
    ) -> float:
        """Price one call; tiers follow genai-prices (crossing a threshold reprices every token).
        ``audio_seconds``: usage billed by duration (a transcription, a Live voice session)."""
        if self.tiered:
            ri = _tier(self.input, input_tokens)
            ro = _tier(self.output, input_tokens)
            rc = ri if self.cached_input is None else _tier(self.cached_input, input_tokens)
            rr = ro if self.reasoning is None else _tier(self.reasoning, input_tokens)
        else:
            ri = self.input  # type: ignore[assignment]
            ro = self.output  # type: ignore[assignment]
            rc = ri if self.cached_input is None else self.cached_input  # type: ignore[assignment]
            rr = ro if self.reasoning is None else self.reasoning  # type: ignore[assignment]
        cost = (
            (input_tokens - cached) * ri
            + cached * rc
            + (output_tokens - reasoning) * ro
            + reasoning * rr
            + self.per_request
        )
        if modal is not None and self.modal:
            cost += self._modal_extra(
                input_tokens, output_tokens, cached, reasoning, modal, ri, rc, ro
            )
        if audio_seconds > 0 and self.audio_second is not None:
            cost += audio_seconds * self.audio_second
        return round(cost, 12)

    def _modal_extra(
        self,
        input_tokens: int,
        output_tokens: int,
        cached: int,
        reasoning: int,
        modal: ModalTokens,
        ri: float,
        rc: float,
        ro: float,
    ) -> float:
        """What the audio, image and cache-write tokens cost over the text price :meth:`cost`
        charged them. Each count is held to what is left of its bucket, so odd counts never
        price a token twice."""
        rates = [None if r is None else _tier(r, input_tokens) for r in self._modal_rates()]
        r_in_audio, r_cached_audio, r_in_image, r_write, r_out_audio, r_out_image = rates
        extra = 0.0
        cached_left = max(cached, 0)
        cached_audio = min(max(modal.cached_audio, 0), cached_left)
        if r_cached_audio is not None:
            extra += cached_audio * (r_cached_audio - rc)
        room = max(input_tokens - cached, 0)  # the uncached input
        for count, rate in (
            (modal.input_audio - cached_audio, r_in_audio),
            (modal.input_image, r_in_image),
            (modal.cache_write, r_write),
        ):
            n = min(max(count, 0), room)
            room -= n
            if rate is not None:
                extra += n * (rate - ri)
        room = max(output_tokens - reasoning, 0)
        for count, rate in ((modal.output_audio, r_out_audio), (modal.output_image, r_out_image)):
            n = min(max(count, 0), room)
            room -= n
            if rate is not None:
                extra += n * (rate - ro)
        return extra

    def per_mtok(self) -> dict[str, Any]:
        """The rates as USD per million tokens (tiers shown as ``{"base": .., "tiers": [...]}``)."""

        def show(rate: Any) -> Any:
            if rate is None:
                return None
            if isinstance(rate, float):
                return round(rate * _MTOK, 9)
            base, tiers = rate
            return {
                "base": round(base * _MTOK, 9),
                "tiers": [
                    {"above_input_tokens": t, "price": round(p * _MTOK, 9)} for t, p in tiers
                ],
            }

        shown = {
            "input": show(self.input),
            "cached_input": show(self.cached_input),
            "output": show(self.output),
            "reasoning": show(self.reasoning),
            "per_request": self.per_request,
        }
        for name, rate in zip(ModalTokens._fields, self._modal_rates(), strict=True):
            if rate is not None:
                shown[name] = show(rate)
        if self.audio_second is not None:
            shown["audio_per_hour"] = round(self.audio_second * _HOUR, 9)
        return shown


def _tier(rate: Rate, input_tokens: int) -> float:
    if not isinstance(rate, tuple):
        return rate
    base, tiers = rate
    for start, price in reversed(tiers):
        if input_tokens > start:
            return float(price)
    return float(base)


@dataclass(frozen=True, slots=True)
class PriceInfo:
    """Where a model's price came from: ``source`` is the stamp written to records."""

    provider: str | None
    model: str
    matched: str
    source: str
    rates: ModelRates


# A price variant (genai-prices' ``price_variants``): the request context it applies in, as
# items; when it applies from (None: always); the price fields it overrides, unconverted.
_Variant = tuple[frozenset[tuple[str, str]], "Callable[[datetime], bool] | None", dict[str, Any]]


class _Entry:
    """A resolved (provider, model, response_model): fixed rates, or date-dependent ones, and
    the variants a request context (a service tier, batch processing) selects."""

    __slots__ = ("by_context", "fixed", "info", "prices", "source", "tiers", "variants")

    def __init__(
        self,
        info: PriceInfo,
        variants: tuple[tuple[Callable[[datetime], bool] | None, ModelRates], ...] = (),
        prices: tuple[dict[str, Any], ...] = (),
        tiers: tuple[_Variant, ...] = (),
    ) -> None:
        self.info = info
        self.source = info.source
        self.fixed: ModelRates | None = info.rates if not variants else None
        self.variants = variants
        self.prices = prices  # each standard price's fields, in ``variants`` order (or the one)
        self.tiers = tiers
        self.by_context: dict[tuple[Any, ...], ModelRates] = {}

    def rates_at(self, when: datetime) -> ModelRates:
        if self.fixed is not None:
            return self.fixed
        return self.variants[self._standard_index(when)][1]

    def _standard_index(self, when: datetime) -> int:
        """genai-prices semantics: the last conditional price whose constraint holds wins,
        else the first."""
        for i in range(len(self.variants) - 1, -1, -1):
            active = self.variants[i][0]
            if active is None or active(when):
                return i
        return 0

    def rates_in(self, when: datetime, context: frozenset[tuple[str, str]] | None) -> ModelRates:
        """The rates for a request made in ``context`` (genai-prices' ``price_context``): over
        the standard price at ``when``, each price field is taken from the first variant that
        names it, matches the context and is active then (as genai-prices resolves them)."""
        if not context or not self.tiers:
            return self.fixed or self.rates_at(when)
        matching = [(active, fields) for items, active, fields in self.tiers if items <= context]
        if not matching:
            return self.fixed or self.rates_at(when)
        standard = self._standard_index(when)
        on = tuple(active is None or active(when) for active, _ in matching)
        key = (context, standard, on)
        rates = self.by_context.get(key)
        if rates is None:
            chosen: dict[str, Any] = {}
            for (_, fields), active in zip(matching, on, strict=True):
                if active:
                    for name, value in fields.items():
                        chosen.setdefault(name, value)
            rates = _compile_fields({**self.prices[standard], **chosen}) or self.rates_at(when)
            self.by_context[key] = rates
        return rates

    def renamed(self, info: PriceInfo) -> _Entry:
        return _Entry(info, self.variants, self.prices, self.tiers)


# Service tiers priced as the standard price (genai-prices has no variant, or an empty one).
_STANDARD_TIERS = frozenset({"default", "auto", "standard", "unspecified", ""})
# Vertex AI reports a tier as ``usage_metadata.traffic_type``.
_TRAFFIC_TIERS = {"ON_DEMAND_FLEX": "flex", "ON_DEMAND_PRIORITY": "priority"}


def price_context(details: Mapping[str, Any]) -> frozenset[tuple[str, str]] | None:
    """The request context a record's ``usage_details`` name for pricing: its service tier
    (``service_tier``, or Vertex AI's ``traffic_type``) and batch processing
    (``processing: "batch"``). None for a standard request."""
    items = []
    tier = details.get("service_tier")
    if type(tier) is not str:
        tier = _TRAFFIC_TIERS.get(details.get("traffic_type"))  # type: ignore[arg-type]
    if tier is not None:
        tier = tier.lower()
        if tier not in _STANDARD_TIERS:
            items.append(("service_tier", tier))
    if details.get("processing") == "batch":
        items.append(("processing", "batch"))
    return frozenset(items) if items else None


_lock = threading.RLock()
_cache: dict[tuple[str, str | None, str | None], _Entry | None] = {}
_overrides: dict[tuple[str | None, str], ModelRates] = {}  # (provider or None, model) -> rates
_aliases: dict[tuple[str | None, str], str] = {}  # (provider or None, name) -> base model
_snapshot_seen: object = None  # the genai-prices snapshot our cache was built from
_gp: Any = None  # the genai_prices module once imported


def _genai_prices() -> Any:
    global _gp
    if _gp is None:
        import genai_prices

        _gp = genai_prices
        _from_environment()
    return _gp


def _from_environment() -> None:
    """``AI_TOKENTRACE_PRICES_FILE`` (your prices) and ``AI_TOKENTRACE_PRICES_REFRESH`` (opt-in)."""
    import os

    try:
        from .pricing import _load_env_file

        _load_env_file()
    except Exception as exc:
        logger.warning("ai-tokentrace: could not load AI_TOKENTRACE_PRICES_FILE: %s", exc)
    flag = os.environ.get("AI_TOKENTRACE_PRICES_REFRESH", "").strip().lower()
    if flag in {"1", "true", "yes", "on"} and _gp is not None:
        # genai-prices' own background thread fetches hourly; prices switch when it lands.
        _gp.UpdatePrices().start()


def warm() -> None:
    """Import the table and run one lookup (genai-prices builds its matchers on the first)."""
    with _lock:
        _from_table("openai", "gpt-4o-mini")


_warming: threading.Thread | None = None


def warm_in_background() -> None:
    """Start :func:`warm` on a thread of its own, once per process.

    ``instrument()`` and the first ``Budget`` call this while the application is still starting
    up. Left to the first record, the import (about 0.4 s) would run on the export loop, and
    a CPU-bound caller makes every file read there wait for the GIL: seconds without exports,
    and the caller pays a forced thread switch every few milliseconds meanwhile.
    """
    global _warming
    with _lock:
        if _gp is not None or _warming is not None:
            return
        _warming = threading.Thread(target=_warm_quietly, name="ai-tokentrace-prices", daemon=True)
    _warming.start()


def _warm_quietly() -> None:
    try:
        warm()
    except Exception:
        logger.debug("ai-tokentrace: could not preload prices", exc_info=True)


def _snapshot() -> Any:
    gp = _genai_prices()
    return gp.data_snapshot.get_snapshot()


def _invalidate() -> None:
    with _lock:
        _cache.clear()


def price_record(record: TokenUsageRecord) -> tuple[float | None, str | None]:
    """``(cost_usd, price_source)``; ``(None, None)`` when the model or the usage is unknown."""
    if not record.usage_available:
        return None, None
    key = (record.provider, record.model, record.response_model)
    entry = _cache.get(key, _MISSING)
    gp = _gp
    if gp is not None and gp.data_snapshot._custom_snapshot is not _snapshot_seen:
        entry = _MISSING  # prices were refreshed: resolve again
    if entry is _MISSING:
        entry = _resolve_record(record.provider, record.model, record.response_model)
    if entry is None:
        return None, None
    assert isinstance(entry, _Entry)
    details = record.usage_details
    context = price_context(details) if details else None
    if context is None:
        rates = entry.fixed or entry.rates_at(record.timestamp)
    else:
        rates = entry.rates_in(record.timestamp, context)
    return (
        rates.cost(
            record.input_tokens,
            record.output_tokens,
            record.cached_input_tokens,
            record.reasoning_tokens,
            modal_tokens(details) if rates.modal else None,
            _seconds(details) if rates.audio_second is not None else 0.0,
        ),
        entry.source,
    )


def _seconds(details: Mapping[str, Any]) -> float:
    """The audio seconds a record's usage was billed by (0.0: none)."""
    value = details.get("audio_seconds") if details else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return 0.0


# usage_details keys holding a {modality: tokens} breakdown -> the bucket it breaks down
# (Gemini's usage_metadata, the Interactions API's usage)
_BREAKDOWNS = {
    "prompt_tokens_details": "input",
    "input_tokens_by_modality": "input",
    "cache_tokens_details": "cached",
    "cached_tokens_by_modality": "cached",
    "candidates_tokens_details": "output",
    "response_tokens_details": "output",
    "output_tokens_by_modality": "output",
}


# (bucket, modality as the breakdown names it, lower-cased) -> ModalTokens field
_MODAL_NAMES = {
    ("input", "audio"): "input_audio",
    ("input", "image"): "input_image",
    ("cached", "audio"): "cached_audio",
    ("output", "audio"): "output_audio",
    ("output", "image"): "output_image",
}


def modal_tokens(details: Mapping[str, Any]) -> ModalTokens | None:
    """The audio, image and cache-write tokens a record's ``usage_details`` name (OpenAI's
    ``input_audio_tokens``, ``cached_audio_tokens`` and the like; Gemini's per-modality
    breakdowns), or None."""
    if not details:
        return None
    counts = {
        "input_audio": _count(details.get("input_audio_tokens")),
        "cached_audio": _count(details.get("cached_audio_tokens")),
        "input_image": _count(details.get("input_image_tokens")),
        "cache_write": _count(details.get("cache_write_tokens")),
        "output_audio": _count(details.get("output_audio_tokens")),
        "output_image": _count(details.get("output_image_tokens")),
    }
    for key, bucket in _BREAKDOWNS.items():
        breakdown = details.get(key)
        if isinstance(breakdown, Mapping):
            for label, n in breakdown.items():
                name = _MODAL_NAMES.get((bucket, str(label).lower()))
                if name is not None:
                    counts[name] += _count(n)
    if not any(counts.values()):
        return None
    return ModalTokens(**counts)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


_MISSING: Any = object()


def _resolve_record(provider: str, model: str | None, response_model: str | None) -> _Entry | None:
    global _snapshot_seen
    with _lock:
        gp = _genai_prices()
        current = gp.data_snapshot._custom_snapshot
        if current is not _snapshot_seen:
            _cache.clear()
            _snapshot_seen = current
        key = (provider, model, response_model)
        if key in _cache:
            return _cache[key]
        names = [n for n in (model, response_model) if n]
        entry = None
        # The user's word first (a deployment name is on `model`), then the table, most
        # specific name (the one that answered) first.
        for name in names:
            entry = _from_overrides(provider, name)
            if entry is not None:
                break
        if entry is None:
            for name in reversed(names):
                entry = _from_table(provider, name)
                if entry is not None:
                    break
        if entry is None and names:
            logger.debug("no price known for %s %s; cost_usd=None", provider, names)
        _cache[key] = entry
        return entry


def _find(mapping: Mapping[tuple[str | None, str], Any], provider: str | None, name: str) -> Any:
    for key in ((provider, name), (None, name)):
        if key in mapping:
            return mapping[key]
    return None


def _from_overrides(provider: str | None, name: str) -> _Entry | None:
    rates = _find(_overrides, provider, name)
    if rates is not None:
        return _Entry(PriceInfo(provider, name, name, "override", rates))
    base = _find(_aliases, provider, name)
    if base is None:
        return None
    rates = _find(_overrides, provider, base)
    if rates is not None:
        return _Entry(PriceInfo(provider, name, base, f"override (alias {name} -> {base})", rates))
    entry = _from_table(provider, base)
    if entry is None:
        return None
    info = entry.info
    info = PriceInfo(provider, name, info.matched, f"{info.source} via alias {name}", info.rates)
    return entry.renamed(info)


def _clean(name: str) -> str:
    # "models/gemini-2.5-flash", "publishers/google/models/gemini-2.5-pro" -> the model id.
    return name.rsplit("/", 1)[-1] if "/" in name else name


def _source_stamp(snapshot: Any, provider_id: str, model_id: str) -> str:
    gp = _genai_prices()
    if getattr(snapshot, "from_auto_update", False):
        fetched = snapshot.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        origin = f"fetched {fetched}"
    else:
        origin = "bundled snapshot"
    return f"genai-prices {gp.__version__} ({origin}) {provider_id}:{model_id}"


def _from_table(provider: str | None, name: str) -> _Entry | None:
    snapshot = _snapshot()
    ids: tuple[str | None, ...] = (*_PROVIDER_IDS.get(provider or "", ()), None)
    seen_names = dict.fromkeys((name, _clean(name)))
    for provider_id in ids:
        for ref in seen_names:
            try:
                prov, info = snapshot.find_provider_model(ref, None, provider_id, None)
            except LookupError:
                continue
            variants = _compile_model(info)
            if variants is None:
                continue
            source = _source_stamp(snapshot, prov.id, info.id)
            first = variants[0][1]
            pinfo = PriceInfo(provider, name, f"{prov.id}:{info.id}", source, first)
            return _Entry(
                pinfo, variants if len(variants) > 1 else (), _price_fields(info), _tiers(info)
            )
    return None


def _price_fields(info: Any) -> tuple[dict[str, Any], ...]:
    """Each standard price's fields, unconverted, in :func:`_compile_model`'s order."""
    prices = info.prices
    if isinstance(prices, list):
        return tuple(dict(conditional.prices.__dict__) for conditional in prices)
    return (dict(prices.__dict__),)


def _tiers(info: Any) -> tuple[_Variant, ...]:
    """genai-prices' price variants (service tiers, batch processing), in its order."""
    out = []
    for variant in getattr(info, "price_variants", None) or ():
        fields = {k: v for k, v in variant.prices.__dict__.items() if v is not None}
        if fields:  # an empty one (OpenAI's "default") changes nothing
            out.append((frozenset(variant.when.items()), _predicate(variant.constraint), fields))
    return tuple(out)


def _compile_model(
    info: Any,
) -> tuple[tuple[Callable[[datetime], bool] | None, ModelRates], ...] | None:
    """ModelInfo -> ((constraint.active or None, rates), ...); None when not token-priced."""
    prices = info.prices
    if isinstance(prices, list):
        out = []
        for conditional in prices:
            rates = _compile_price(conditional.prices)
            if rates is None:
                return None
            out.append((_predicate(conditional.constraint), rates))
        return tuple(out) if out else None
    rates = _compile_price(prices)
    return ((None, rates),) if rates is not None else None


def _predicate(constraint: Any) -> Callable[[datetime], bool] | None:
    """A price's time constraint as a cheap test on the record's (UTC-aware) timestamp."""
    if constraint is None:
        return None
    start = getattr(constraint, "start_date", None)
    if type(constraint).__name__ == "StartDateConstraint" and start is not None:
        # active from UTC midnight of start_date: one C-level datetime comparison
        midnight = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
        return functools.partial(operator.le, midnight)
    active: Callable[[datetime], bool] = constraint.active
    return active


def _rate(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "tiers"):
        base = float(value.base) / _MTOK
        tiers = tuple(sorted((int(t.start), float(t.price) / _MTOK) for t in value.tiers))
        return (base, tiers)
    return float(value) / _MTOK


def _compile_price(price: Any) -> ModelRates | None:
    return _compile_fields(price.__dict__)


def _compile_fields(d: Mapping[str, Any]) -> ModelRates | None:
    input_rate = _rate(d.get("input_mtok"))
    output_rate = _rate(d.get("output_mtok"))
    hours = d.get("audio_hours")  # what genai-prices prices ``audio_seconds`` at
    audio_second = float(hours) / _HOUR if isinstance(hours, (int, float, Decimal)) else None
    if input_rate is None and output_rate is None and audio_second is None:
        return None  # priced per request or character only: not ours to guess
    per_k = d.get("requests_kcount")
    return ModelRates(
        input=input_rate if input_rate is not None else 0.0,
        output=output_rate if output_rate is not None else 0.0,
        cached_input=_rate(d.get("cache_read_mtok")),
        reasoning=_rate(d.get("output_reasoning_mtok")),
        per_request=float(per_k) / 1000.0 if per_k is not None else 0.0,
        input_audio=_rate(d.get("input_audio_mtok")),
        cached_audio=_rate(d.get("cache_audio_read_mtok")),
        input_image=_rate(d.get("input_image_mtok")),
        cache_write=_rate(d.get("cache_write_mtok")),
        output_audio=_rate(d.get("output_audio_mtok")),
        output_image=_rate(d.get("output_image_mtok")),
        audio_second=audio_second,
    )


# -- public operations (wrapped by ai_tokentrace.pricing) -------------------------------------


def add_override(
    model: str,
    *,
    input_per_mtok: float,
    output_per_mtok: float,
    cached_input_per_mtok: float | None = None,
    reasoning_per_mtok: float | None = None,
    per_request: float = 0.0,
    provider: str | None = None,
) -> None:
    for label, value in (
        ("input_per_mtok", input_per_mtok),
        ("output_per_mtok", output_per_mtok),
        ("cached_input_per_mtok", cached_input_per_mtok),
        ("reasoning_per_mtok", reasoning_per_mtok),
        ("per_request", per_request),
    ):
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{label} must be a non-negative number, not {value!r}")
    rates = ModelRates(
        input=float(input_per_mtok) / _MTOK,
        output=float(output_per_mtok) / _MTOK,
        cached_input=_per_token(cached_input_per_mtok),
        reasoning=_per_token(reasoning_per_mtok),
        per_request=float(per_request),
    )
    with _lock:
        _overrides[(provider, model)] = rates
        _cache.clear()


def _per_token(per_mtok: float | None) -> float | None:
    return None if per_mtok is None else float(per_mtok) / _MTOK


def remove_override(model: str, provider: str | None = None) -> None:
    with _lock:
        _overrides.pop((provider, model), None)
        _aliases.pop((provider, model), None)
        _cache.clear()


def set_alias(name: str, base_model: str, provider: str | None = None) -> None:
    with _lock:
        _aliases[(provider, name)] = base_model
        _cache.clear()


def clear_overrides() -> None:
    with _lock:
        _overrides.clear()
        _aliases.clear()
        _cache.clear()


def _context_of(service_tier: str | None, batch: bool) -> frozenset[tuple[str, str]] | None:
    details: dict[str, Any] = {"service_tier": service_tier}
    if batch:
        details["processing"] = "batch"
    return price_context(details)


def lookup(
    model: str,
    provider: str | None = None,
    when: datetime | None = None,
    service_tier: str | None = None,
    batch: bool = False,
) -> PriceInfo | None:
    """The price used for ``model`` (as a record would be priced), or None when unknown."""
    with _lock:
        entry = _from_overrides(provider, model) or _from_table(provider, model)
    if entry is None:
        return None
    rates = entry.rates_in(when or datetime.now(timezone.utc), _context_of(service_tier, batch))
    info = entry.info
    return PriceInfo(info.provider, info.model, info.matched, info.source, rates)


def estimate(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
    provider: str | None = None,
    when: datetime | None = None,
    service_tier: str | None = None,
    batch: bool = False,
    audio_seconds: float = 0.0,
) -> float | None:
    info = lookup(model, provider, when, service_tier, batch)
    if info is None:
        return None
    return info.rates.cost(
        input_tokens,
        output_tokens,
        cached_input_tokens,
        reasoning_tokens,
        audio_seconds=float(audio_seconds),
    )


def refresh(timeout: float = 30.0) -> bool:
    """Opt-in: fetch the latest genai-prices table over the network and use it from now on."""
    gp = _genai_prices()
    snapshot = gp.UpdatePrices(request_timeout=timeout).fetch() if timeout else None
    if snapshot is None:
        return False
    gp.data_snapshot.set_custom_snapshot(snapshot)
    _invalidate()
    return True
