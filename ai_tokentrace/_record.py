"""The record type, the totals type, and the one step that normalises provider numbers."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Literal

from ._internal import logger

__all__ = [
    "OPERATIONS",
    "PROVIDERS",
    "SCHEMA_VERSION",
    "Counts",
    "RawUsage",
    "Status",
    "TokenUsage",
    "TokenUsageRecord",
    "normalize",
]

SCHEMA_VERSION = 1
PROVIDERS = ("openai", "azure.ai.openai", "gcp.gemini", "gcp.vertex_ai")
OPERATIONS = (
    "chat.completions",
    "responses",
    "completions",
    "embeddings",
    "images",
    "audio.transcriptions",
    "generate_content",
    "embed_content",
)
Status = Literal["ok", "error", "partial"]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token totals; records and scopes add up into one of these."""

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
        # Lets sum(records_usage) start from 0.
        if other == 0:
            return self
        return self.__add__(other)

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class RawUsage:
    """Provider numbers as reported, named by meaning, before normalisation.

    Adapters fill it with whatever the SDK object holds (any value may be None or odd);
    :func:`normalize` is the only place that turns it into canonical buckets.
    """

    prompt: object = None  # input as the provider counts it (cached tokens included)
    completion: object = None  # output as the provider counts it
    total: object = None  # the provider's own total, if any
    cached: object = None  # subset of prompt read from a cache
    reasoning: object = None  # reasoning / thinking tokens
    reasoning_in_completion: bool = True  # OpenAI: yes; Gemini: thoughts are reported apart
    tool_prompt: object = None  # Gemini tool-use prompt tokens, reported apart from prompt
    details: Mapping[str, Any] = field(default_factory=dict)  # per-modality, cache writes, audio seconds, ...


@dataclass(frozen=True, slots=True)
class Counts:
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    provider_total_tokens: int | None


def _count(value: object, name: str) -> int:
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


@dataclass(frozen=True, slots=True)
class TokenUsageRecord:
    """One provider call: its tokens, its price, and the scope it ran in. Immutable."""

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
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provider_total_tokens: int | None = None
    usage_available: bool = True
    usage_details: Mapping[str, Any] = field(default_factory=dict)
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
        return dataclasses.replace(self, **changes)

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
        """The compact one-line JSON form used by the JSONL and logging services."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenUsageRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so old readers accept new files."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        ts = kwargs.get("timestamp")
        if isinstance(ts, str):
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            kwargs["timestamp"] = (
                parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
            )
        if "tags" in kwargs:
            kwargs["tags"] = tuple(kwargs["tags"] or ())
        if kwargs.get("metadata") is None:
            kwargs["metadata"] = {}
        if kwargs.get("usage_details") is None:
            kwargs["usage_details"] = {}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: str) -> TokenUsageRecord:
        return cls.from_dict(json.loads(line))
