"""google-genai's Live API (``client.aio.live.connect``): one record per turn.

A Live session is a websocket, not a request: the SDK reads each server message with
``AsyncSession._receive`` (which ``receive()`` and ``start_stream()`` go through), and some
messages carry ``usage_metadata``. Public reports disagree on what one carries: the turn's
usage, sent once (a probe of the served models found that), or a running total sent on
several messages of a turn. Either way the last one seen before a turn ends is the turn's,
so that is what is kept, and the record is made when the turn ends (``turn_complete``), and
otherwise when the session closes (leaving ``connect``'s ``async with``, or freed): never two
records for one turn, nor a sum of running totals. Usage sent after its turn's end is
recorded at the next end. The model is the one ``connect`` was called with (the hook on
``AsyncLive.connect`` puts it on the session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wrapt

from .._capture import Extraction, emit, now
from .._internal import _suppressed, internal_error
from ._base import PatchTarget
from ._base import field_of as _get
from .genai import _provider, _raw_usage

__all__ = ["LIVE", "targets"]

LIVE = "live"
_MODULE = "google.genai.live"
_STATE = "_ai_tokentrace_live"


class _Session:
    """One session's usage not yet recorded, and what its records need."""

    __slots__ = ("__weakref__", "model", "pending", "provider", "started", "usage_at")

    def __init__(self, provider: str, model: str | None) -> None:
        self.provider = provider
        self.model = model
        self.pending: Any = None  # the last usage of the turn under way
        self.started = now()  # when the turn under way began
        self.usage_at: float | None = None

    def flush(self) -> None:
        """Record the turn under way, if it reported usage."""
        usage, self.pending = self.pending, None
        if usage is None:
            return
        ended = self.usage_at if self.usage_at is not None else now()
        # read now, once a turn (the message, with what was said, is let go)
        emit(
            self.provider,
            LIVE,
            self.model,
            _raw_usage(usage),
            _extract,
            self.started,
            streamed=True,
        )
        self.started = ended

    def __del__(self) -> None:
        if self.pending is not None:
            try:
                self.flush()
            except Exception:
                internal_error("genai live flush")


def _extract(raw: Any) -> Extraction:
    return raw, None, None


def _state_of(session: Any) -> _Session:
    state = getattr(session, _STATE, None)
    if state is None:  # a session made without our connect hook: no model to name
        state = _Session(_provider(session), None)
        setattr(session, _STATE, state)
    return state


async def _receive(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The hook of ``AsyncSession._receive``: one server message, looked at as it passes."""
    message = await wrapped(*args, **kwargs)
    try:
        _notice(instance, message)
    except Exception:
        internal_error("genai live message")
    return message


def _notice(session: Any, message: Any) -> None:
    usage = _get(message, "usage_metadata")
    content = _get(message, "server_content")
    if usage is None and content is None:
        return
    state = _state_of(session)
    if usage is not None:
        state.pending = usage
        state.usage_at = now()
    if content is not None and _get(content, "turn_complete"):
        state.flush()


def _flush(session: Any) -> None:
    try:
        state = getattr(session, _STATE, None)
        if state is not None:
            state.flush()
    except Exception:
        internal_error("genai live flush")


_Proxy: Any = wrapt.ObjectProxy


class _Connecting(_Proxy):  # type: ignore[misc]
    """``connect``'s context manager, as it is, but that names the session's model and
    records its last turn when it closes."""

    def __init__(self, manager: Any, provider: str, model: str | None) -> None:
        super().__init__(manager)
        self._self_provider = provider
        self._self_model = model
        self._self_session: Any = None

    async def __aenter__(self) -> Any:
        session = await self.__wrapped__.__aenter__()
        try:
            setattr(session, _STATE, _Session(self._self_provider, self._self_model))
            self._self_session = session
        except Exception:
            internal_error("genai live connect")
        return session

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc)
        finally:
            if self._self_session is not None:
                _flush(self._self_session)


def _connect(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The hook of ``AsyncLive.connect``."""
    manager = wrapped(*args, **kwargs)
    if _suppressed.get():
        return manager
    try:
        model = kwargs.get("model")
        return _Connecting(manager, _provider(instance), model if isinstance(model, str) else None)
    except Exception:
        internal_error("genai live connect")
        return manager


def targets() -> list[PatchTarget]:
    return [
        PatchTarget(_MODULE, "AsyncLive.connect", _connect, lazy=True),
        PatchTarget(_MODULE, "AsyncSession._receive", _receive, lean=True, lazy=True),
    ]
