"""The BigQuery table schema for records, generated from the record type.

``ai_tokentrace/schema/bigquery_schema.json`` is this function's output, shipped so that a
Pub/Sub-to-BigQuery subscription (``--use-table-schema``) can write the JSON messages of
``PubSubTokenUsageService`` straight into a table. A test keeps the file and the record type in
step; regenerate with ``python -m ai_tokentrace._schema > ai_tokentrace/schema/bigquery_schema.json``.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ._record import TokenUsageRecord

__all__ = ["SCHEMA_PATH", "bigquery_schema", "render"]

SCHEMA_PATH = Path(__file__).with_name("schema") / "bigquery_schema.json"

_REQUIRED = frozenset({"record_id", "timestamp", "provider", "operation"})
_DESCRIPTIONS = {
    "record_id": "Unique id of the record; stable across retries (de-duplicate on it).",
    "timestamp": "When the call completed (UTC).",
    "provider": "openai, azure.ai.openai, gcp.gemini or gcp.vertex_ai.",
    "operation": "The API called, e.g. chat.completions, responses, generate_content.",
    "model": "The model (or Azure deployment) the caller asked for.",
    "response_model": "The model the provider says answered.",
    "response_id": "The provider's id for the response.",
    "input_tokens": "All input tokens, cached and tool-prompt tokens included.",
    "output_tokens": "All output tokens, reasoning tokens included.",
    "total_tokens": "input_tokens + output_tokens.",
    "cached_input_tokens": "Subset of input_tokens read from a prompt cache.",
    "reasoning_tokens": "Subset of output_tokens spent on reasoning/thinking.",
    "streamed": "Whether the call streamed.",
    "status": "ok, error or partial.",
    "latency_ms": "Wall time of the call in milliseconds.",
    "cost_usd": "Price in US dollars; NULL when the price is unknown.",
    "trace_name": "Name of the enclosing trace_tokens scope.",
    "user_id": "user_id of the enclosing scope.",
    "session_id": "session_id of the enclosing scope.",
    "tags": "Tags of the enclosing scopes.",
    "metadata": "metadata of the enclosing scope (JSON).",
    "provider_total_tokens": "The provider's own total when it differs from total_tokens.",
    "usage_available": "False when the provider reported no usage.",
    "usage_details": "Provider-specific usage details (JSON).",
    "request_id": "The provider's request id.",
    "error_type": "Exception type when status is error.",
    "price_source": "Where the price came from.",
    "schema_version": "Version of this record schema.",
}


def _bq_type(annotation: Any) -> tuple[str, bool]:
    """(BigQuery type, repeated) for a record field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _bq_type(args[0])
    if origin is tuple:
        return _bq_type(args[0])[0], True
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return "JSON", False
    simple = {str: "STRING", bool: "BOOLEAN", int: "INTEGER", float: "FLOAT", datetime: "TIMESTAMP"}
    if annotation in simple:
        return simple[annotation], False
    raise TypeError(f"no BigQuery type for {annotation!r}")


def bigquery_schema() -> list[dict[str, str]]:
    """One column per key of ``TokenUsageRecord.to_dict()``, in the same order."""
    hints = typing.get_type_hints(TokenUsageRecord)
    columns: list[dict[str, str]] = []
    for name in TokenUsageRecord._fields:
        bq_type, repeated = _bq_type(hints[name])
        mode = "REPEATED" if repeated else "REQUIRED" if name in _REQUIRED else "NULLABLE"
        columns.append(
            {"name": name, "type": bq_type, "mode": mode, "description": _DESCRIPTIONS[name]}
        )
    columns.append(
        {
            "name": "schema_version",
            "type": "INTEGER",
            "mode": "NULLABLE",
            "description": _DESCRIPTIONS["schema_version"],
        }
    )
    return columns


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(bigquery_schema(), indent=2) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
