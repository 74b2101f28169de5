"""Internal error reporting: log once, never raise into the user's call (unless strict)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = [
    "LOGGER_NAME",
    "internal_error",
    "is_strict",
    "logger",
    "set_strict",
    "suppressed",
    "suppressing",
]

LOGGER_NAME = "ai_tokentrace"
logger = logging.getLogger(LOGGER_NAME)

_strict = os.environ.get("AI_TOKENTRACE_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}
_seen: set[str] = set()
_seen_lock = threading.Lock()

# True while ai-tokentrace itself is running code that may call an SDK (exports, the demo's own
# plumbing): integrations record nothing then, so the tool never counts its own traffic.
_suppressed: ContextVar[bool] = ContextVar("ai_tokentrace_suppressed", default=False)


def set_strict(value: bool) -> None:
    """Make internal errors re-raise. Our own test suite does this so bugs surface."""
    global _strict
    _strict = value


def is_strict() -> bool:
    return _strict


def internal_error(where: str, exc: BaseException | None = None) -> None:
    """Report a bug in ai-tokentrace itself: logged in full the first time per place, then at debug.

    Call it from an ``except`` block. In strict mode the active exception is re-raised.
    """
    with _seen_lock:
        first = where not in _seen
        _seen.add(where)
    if first:
        logger.error(
            "ai-tokentrace internal error in %s (the traced call was not affected)",
            where,
            exc_info=exc if exc is not None else True,
        )
    else:
        logger.debug("ai-tokentrace internal error in %s again", where, exc_info=exc or True)
    if _strict:
        raise


def suppressed() -> bool:
    return _suppressed.get()


@contextmanager
def suppressing() -> Iterator[None]:
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)
