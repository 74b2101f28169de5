"""The record type, the totals type, and the one step that normalises provider numbers."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, NamedTuple

from ._internal import logger

__all__ = [
    "RECORD_FIELDS",
    "SCHEMA_VERSION",
    "Counts",
    "RawUsage",
    "TokenUsage",
    "TokenUsageRecord",
    "make_record",
    "normalize",
    "with_price",
]

SCHEMA_VERSION = 1
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class TokenUsage(NamedTuple):
    """Token totals; records and scopes add up into one of these (``a + b``, ``sum(...)``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: object) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    def __radd__(self, other: object) -> TokenUsage:
        # Lets sum(usages) start from 0.
        if other == 0:
            return self
        return self.__add__(other)

    def to_dict(self) -> dict[str, int]:
        return self._asdict()


class RawUsage:
    """Provider numbers as reported, named by meaning, before normalisation.

    Adapters fill it with whatever the SDK object holds (any value may be None or odd);
    :func:`normalize` is the only place that turns it into canonical buckets.
    """

    __slots__ = (
        "cached",
        "completion",
        "details",
        "prompt",
        "reasoning",
        "reasoning_in_completion",
        "tool_prompt",
        "total",
    )

    def __init__(
        self,
        prompt: object = None,  # input as the provider counts it (cached tokens included)
        completion: object = None,  # output as the provider counts it
        total: object = None,  # the provider's own total, if any
        cached: object = None,  # subset of prompt read from a cache
        reasoning: object = None,  # reasoning / thinking tokens
        reasoning_in_completion: bool = True,  # OpenAI: yes; Gemini: thoughts reported apart
        tool_prompt: object = None,  # Gemini tool-use prompt tokens, reported apart from prompt
        details: Mapping[str, Any] | None = None,  # per-modality, cache writes, audio seconds
    ) -> None:
        self.prompt = prompt
        self.completion = completion
        self.total = total
        self.cached = cached
        self.reasoning = reasoning
        self.reasoning_in_completion = reasoning_in_completion
        self.tool_prompt = tool_prompt
        self.details: Mapping[str, Any] = details if details is not None else {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in sorted(self.__slots__))
        return f"RawUsage({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawUsage):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


class Counts(NamedTuple):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    provider_total_tokens: int | None


def _count(value: object, name: str) -> int:
    if type(value) is int and value >= 0:  # the common case, first
        return value
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer() and value >= 0:
        return int(value)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("ignoring odd token count %s=%r (counted as 0)", name, value)
    return 0


def normalize(raw: RawUsage) -> Counts:
    """Canonical buckets: input includes cached and tool-prompt tokens, output includes reasoning."""
    prompt = _count(raw.prompt, "prompt")
    completion = _count(raw.completion, "completion")
    reasoning = _count(raw.reasoning, "reasoning")
    input_tokens = prompt + _count(raw.tool_prompt, "tool_prompt")
    output_tokens = completion if raw.reasoning_in_completion else completion + reasoning
    if reasoning > output_tokens:
        logger.debug("reasoning tokens %d exceed output %d; clamped", reasoning, output_tokens)
        reasoning = output_tokens
    cached = _count(raw.cached, "cached")
    if cached > input_tokens:
        logger.debug("cached tokens %d exceed input %d; clamped", cached, input_tokens)
        cached = input_tokens
    total = input_tokens + output_tokens
    provider_total: int | None = None
    if raw.total is not None:
        reported = _count(raw.total, "total")
        if reported != total:
            provider_total = reported
    return Counts(input_tokens, output_tokens, total, cached, reasoning, provider_total)


class TokenUsageRecord(NamedTuple):
    """One provider call: its tokens, its price, and the scope it ran in. Immutable.

    A NamedTuple rather than a frozen dataclass: records are built at up to 100,000/s on the
    background loop, and a tuple builds about ten times faster.
    """

    record_id: str
    timestamp: datetime
    provider: str
    operation: str
    model: str | None
    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    streamed: bool = False
    status: str = "ok"
    latency_ms: float = 0.0
    cost_usd: float | None = None
    trace_name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = _EMPTY
    provider_total_tokens: int | None = None
    usage_available: bool = True
    usage_details: Mapping[str, Any] = _EMPTY
    request_id: str | None = None
    error_type: str | None = None
    price_source: str | None = None

    @property
    def usage(self) -> TokenUsage:
        return TokenUsage(
            self.input_tokens,
            self.output_tokens,
            self.total_tokens,
            self.cached_input_tokens,
            self.reasoning_tokens,
        )

    def replace(self, **changes: Any) -> TokenUsageRecord:
        return self._replace(**changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the field names as keys, the timestamp as ISO 8601 UTC."""
        return {
            "record_id": self.record_id,
            "timestamp": self.timestamp.isoformat(),
            "provider": self.provider,
            "operation": self.operation,
            "model": self.model,
            "response_model": self.response_model,
            "response_id": self.response_id,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "streamed": self.streamed,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
            "trace_name": self.trace_name,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "provider_total_tokens": self.provider_total_tokens,
            "usage_available": self.usage_available,
            "usage_details": dict(self.usage_details),
            "request_id": self.request_id,
            "error_type": self.error_type,
            "price_source": self.price_source,
            "schema_version": SCHEMA_VERSION,
        }

    def to_json(self) -> str:
        """The compact one-line JSON form used by the JSONL and logging services.

        Hand-assembled (about 4x faster than ``json.dumps(to_dict())``, which matters at
        100,000 records/s); equal to it once parsed, which the tests check property-wise.
        """
        s = _json_str
        return (
            f'{{"record_id":{s(self.record_id)},"timestamp":"{_iso(self.timestamp)}",'
            f'"provider":{s(self.provider)},"operation":{s(self.operation)},'
            f'"model":{s(self.model)},"response_model":{s(self.response_model)},'
            f'"response_id":{s(self.response_id)},"input_tokens":{_json_int(self.input_tokens)},'
            f'"output_tokens":{_json_int(self.output_tokens)},'
            f'"total_tokens":{_json_int(self.total_tokens)},'
            f'"cached_input_tokens":{_json_int(self.cached_input_tokens)},'
            f'"reasoning_tokens":{_json_int(self.reasoning_tokens)},'
            f'"streamed":{"true" if self.streamed else "false"},"status":{s(self.status)},'
            f'"latency_ms":{_json_num(self.latency_ms)},"cost_usd":{_json_num(self.cost_usd)},'
            f'"trace_name":{s(self.trace_name)},"user_id":{s(self.user_id)},'
            f'"session_id":{s(self.session_id)},'
            f'"tags":[{",".join([s(t) for t in self.tags])}],'
            f'"metadata":{_json_obj(self.metadata)},'
            f'"provider_total_tokens":{_json_int(self.provider_total_tokens)},'
            f'"usage_available":{"true" if self.usage_available else "false"},'
            f'"usage_details":{_json_obj(self.usage_details)},'
            f'"request_id":{s(self.request_id)},"error_type":{s(self.error_type)},'
            f'"price_source":{s(self.price_source)},"schema_version":{SCHEMA_VERSION}}}'
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenUsageRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so old readers accept new files."""
        names = cls._fields
        kwargs = {k: v for k, v in data.items() if k in names}
        ts = kwargs.get("timestamp")
        if isinstance(ts, str):
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            kwargs["timestamp"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        if "tags" in kwargs:
            kwargs["tags"] = tuple(kwargs["tags"] or ())
        if kwargs.get("metadata") is None:
            kwargs["metadata"] = {}
        if kwargs.get("usage_details") is None:
            kwargs["usage_details"] = {}
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (
            f"TokenUsageRecord({self.provider} {self.operation} model={self.model!r} "
            f"in={self.input_tokens} out={self.output_tokens} cost_usd={self.cost_usd} "
            f"status={self.status} id={self.record_id})"
        )

    @classmethod
    def from_json(cls, line: str) -> TokenUsageRecord:
        return cls.from_dict(json.loads(line))


# -- fast paths for the background loop ------------------------------------------------------

_encode_str = json.encoder.encode_basestring  # C implementation, JSON-escapes a str
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _json_str(value: object) -> str:
    if value is None:
        return "null"
    return _encode_str(value if isinstance(value, str) else str(value))


def _json_int(value: object) -> str:
    if type(value) is int:
        return str(value)
    return "null" if value is None else _dumps(value)


def _json_num(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return _dumps(value)


def _json_obj(value: Mapping[str, Any]) -> str:
    return _dumps(dict(value)) if value else "{}"


_iso_cache: tuple[int, str] = (-1, "")


def _iso(ts: datetime) -> str:
    """``ts.isoformat()`` for UTC datetimes, caching the per-second prefix."""
    global _iso_cache
    if ts.tzinfo is not timezone.utc and ts.utcoffset() != _ZERO_OFFSET:
        return ts.isoformat()
    second = int(ts.timestamp())
    cached_second, prefix = _iso_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _iso_cache = (second, prefix)
    if ts.microsecond:
        return f"{prefix}.{ts.microsecond:06d}+00:00"
    return f"{prefix}+00:00"


_ZERO_OFFSET = datetime(2000, 1, 1, tzinfo=timezone.utc).utcoffset()
RECORD_FIELDS: tuple[str, ...] = TokenUsageRecord._fields
_COST_INDEX = RECORD_FIELDS.index("cost_usd")
_SOURCE_INDEX = RECORD_FIELDS.index("price_source")
_tuple_new = tuple.__new__


def make_record(values: tuple[Any, ...]) -> TokenUsageRecord:
    """Build a record from every field value in declaration order (the pipeline's fast path)."""
    return _tuple_new(TokenUsageRecord, values)


def with_price(
    record: TokenUsageRecord, cost_usd: float | None, source: str | None
) -> TokenUsageRecord:
    values = list(record)
    values[_COST_INDEX] = cost_usd
    values[_SOURCE_INDEX] = source
    return _tuple_new(TokenUsageRecord, values)
