"""Settings, from keyword arguments or ``AI_TOKENTRACE_*`` environment variables.

Invalid values are logged and replaced by the default, never raised: a typo in the environment
must not take the application down.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from ._internal import logger

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "AI_TOKENTRACE_"
T = TypeVar("T")


class Settings(NamedTuple):
    max_queue_size: int = 10_000
    batch_size: int = 100
    flush_interval: float = 1.0  # seconds between exports when batches do not fill up
    export_timeout: float = 10.0  # one aexport_batch call, before it counts as failed
    shutdown_timeout: float = 5.0  # how long interpreter exit waits for the last records
    inject_stream_usage: bool = True  # ask OpenAI for streamed usage the caller did not ask for


def _positive_int(value: str) -> int:
    n = int(value)
    if n <= 0:
        raise ValueError("must be > 0")
    return n


def _positive_float(value: str) -> float:
    x = float(value)
    if not x > 0 or x == float("inf"):
        raise ValueError("must be a finite number > 0")
    return x


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true/false")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "max_queue_size": _positive_int,
    "batch_size": _positive_int,
    "flush_interval": _positive_float,
    "export_timeout": _positive_float,
    "shutdown_timeout": _positive_float,
    "inject_stream_usage": _bool,
}


def load_settings(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the environment, then explicit keyword overrides (each validated)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, default in Settings._field_defaults.items():
        parse = _PARSERS[name]
        key = ENV_PREFIX + name.upper()
        raw = env.get(key)
        if raw is not None and raw.strip() != "":
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                logger.warning("ignoring invalid %s=%r (%s); using %r", key, raw, exc, default)
        if overrides and overrides.get(name) is not None:
            value = overrides[name]
            try:
                values[name] = parse(str(value)) if not isinstance(value, bool) else value
            except ValueError as exc:
                kept = values.get(name, default)  # the environment's, when it set one
                logger.warning("ignoring invalid %s=%r (%s); using %r", name, value, exc, kept)
    return Settings(**values)
