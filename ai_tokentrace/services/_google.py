"""What the Google Cloud services share: lazy SDK imports, which errors are transient, and
where records that cannot be delivered are spilled."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType

from ._base import RetryPolicy

__all__ = [
    "CHANNEL_OPTIONS",
    "DEFAULT_RETRY",
    "TRANSIENT_CODES",
    "default_spill_path",
    "import_extra",
    "is_transient",
    "is_unavailable",
]

# The gRPC status names worth retrying: the request may succeed if sent again.
TRANSIENT_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED", "INTERNAL"}
)
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})

# gRPC waits out a reconnect backoff of up to 120 s after failed connects, and channels to one
# target share that state; after an outage we want to reconnect within seconds instead.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
)

# Bounded: at most ~20 s of backoff per batch before it goes to the spill file.
DEFAULT_RETRY = RetryPolicy(
    max_attempts=6, initial_delay=0.25, max_delay=5.0, multiplier=2.0, max_total_delay=20.0
)


def import_extra(module: str, extra: str) -> ModuleType:
    """Import an optional SDK, or fail with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is not installed; install it with: pip install 'ai-tokentrace[{extra}]'"
        ) from exc


def _status_name(exc: BaseException) -> str | None:
    """The gRPC status of an error from google-api-core or grpc, without importing either."""
    code = getattr(exc, "grpc_status_code", None)  # google.api_core GoogleAPICallError
    if code is None:
        code_fn = getattr(exc, "code", None)  # grpc.RpcError / grpc.aio.AioRpcError
        if callable(code_fn):
            try:
                code = code_fn()
            except Exception:
                code = None
    name = getattr(code, "name", None)
    return name if isinstance(name, str) else None


def is_transient(exc: BaseException) -> bool:
    """True for failures that may succeed on a retry: unavailable, deadline, aborted, resource
    exhausted, internal, connection errors, and the same in any exception chained below."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_one(exc: BaseException) -> bool:
    # google.api_core.exceptions.RetryError wraps the last error of the SDK's own retries.
    inner = getattr(exc, "cause", None)
    if isinstance(inner, BaseException) and inner is not exc and _transient_one(inner):
        return True
    name = _status_name(exc)
    if name is not None:
        return name in TRANSIENT_CODES
    status = getattr(exc, "code", None)
    if isinstance(status, int) and not isinstance(status, bool):  # an HTTP-style error
        return status in _TRANSIENT_HTTP
    return isinstance(exc, (ConnectionError, TimeoutError))


def is_unavailable(exc: BaseException) -> bool:
    """The server could not be reached: worth a fresh channel, since a gRPC channel that failed
    to connect waits out its own reconnect backoff (up to minutes) before trying again."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _status_name(current) == "UNAVAILABLE" or isinstance(current, ConnectionError):
            return True
        current = current.__cause__ or current.__context__
    return False


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "default"


def spill_dir() -> Path:
    """``AI_TOKENTRACE_SPILL_DIR``, else ``$XDG_STATE_HOME/ai-tokentrace/spill``, else
    ``~/.local/state/ai-tokentrace/spill``."""
    explicit = os.environ.get("AI_TOKENTRACE_SPILL_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    base = Path(state).expanduser() if state else Path.home() / ".local" / "state"
    return base / "ai-tokentrace" / "spill"


def default_spill_path(service: str, name: str) -> Path:
    """One spill file per destination, e.g. ``firestore-token_usage.jsonl``."""
    return spill_dir() / f"{service}-{_safe_name(name)}.jsonl"
