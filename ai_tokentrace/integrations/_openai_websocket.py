"""OpenAI's websocket connections: the Realtime API, and the Responses API over a websocket.

They do not go through the client's ``request``: the SDK opens a websocket and makes each
server message an event with the connection's ``parse_event``, which every way of reading one
goes through (``recv``, iterating the connection, ``dispatch_events``, the SDK's helpers). The
hook is there, and looks at each event's type only. A response's usage arrives once, on its
last event (Realtime: ``response.done``; Responses: ``response.completed``, ``failed`` or
``incomplete``), and a transcription of the input audio on its ``completed`` event. Each is
counted once per connection, by its id (a message parsed twice is counted once). ``model`` is
the one the connection was opened for (its URL; a Responses response's own where the URL names
none), ``response_model`` the session's as the server last said it (``session.created`` /
``session.updated``); the latency runs from the response's ``response.created``.

The Live API (``live.connect``, a session's ``sideband`` and ``forks`` connections) bills a
voice session by its duration: one record a session, operation ``live``, from its
``session.closed`` event (the final cumulative seconds, never a sum of the running totals
``session.usage.updated`` reports), priced per audio hour. What a session delegates is billed
apart, and arrives wrapped: a Responses model's response (``response.event``, its last event)
and a Decision (``decision.event``). Each is counted once per process, whichever connection
(the primary or a sideband) showed it, with a ``record_id`` derived from its id.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from .._capture import Extraction, emit, nonempty_str, now
from .._internal import internal_error
from .._record import RawUsage
from ._base import PatchTarget, first_time
from ._base import field_of as _get
from ._openai_extract import EXTRACTORS, SNAPSHOT_EXTRACTORS, detach, extract_audio

__all__ = [
    "LIVE",
    "REALTIME",
    "extract_live_session",
    "extract_realtime",
    "snapshot_realtime",
    "targets",
]

REALTIME = "realtime"
LIVE = "live"
# Live sessions and what they delegated, counted here (by kind and id): a sideband sees what
# the primary connection sees
_live_counted: dict[str, object] = {}
_STATE = "_ai_tokentrace_ws"
_MAX_SEEN = 1024  # response ids remembered per connection (only to count a re-parse once)
_RESPONSE_ENDS = {
    "response.completed": "ok",
    "response.failed": "error",
    "response.incomplete": "ok",
}
_REALTIME_STATUS = {
    "completed": "ok",
    "incomplete": "ok",
    "cancelled": "partial",
    "failed": "error",
}
_TRANSCRIBED = "conversation.item.input_audio_transcription.completed"
_WATCHED = frozenset(  # with the Live API's own events (:data:`_LIVE_KINDS`), below
    {
        "session.created",
        "session.started",  # the Live API's
        "session.updated",
        "response.created",
        "response.done",
        _TRANSCRIBED,
        *_RESPONSE_ENDS,
    }
)


# -- pure functions: a Realtime response's usage, read now, and made into RawUsage on the loop --
_REALTIME_DETAILS = (
    # (side, detail field, record detail name)
    ("input_token_details", "audio_tokens", "input_audio_tokens"),
    ("input_token_details", "image_tokens", "input_image_tokens"),
    ("output_token_details", "audio_tokens", "output_audio_tokens"),
)


_DETAIL_NAMES = (
    "input_audio_tokens",
    "cached_audio_tokens",
    "input_image_tokens",
    "output_audio_tokens",
)


def snapshot_realtime(usage: Any) -> dict[str, Any] | None:
    """A ``RealtimeResponseUsage`` as plain numbers (the event, with its transcript, is let go)."""
    if usage is None:
        return None
    inputs = _get(usage, "input_token_details")
    out = {
        "input_tokens": _get(usage, "input_tokens"),
        "output_tokens": _get(usage, "output_tokens"),
        "total_tokens": _get(usage, "total_tokens"),
        "cached_tokens": _get(inputs, "cached_tokens"),
        "cached_audio_tokens": _get(_get(inputs, "cached_tokens_details"), "audio_tokens"),
    }
    for side, field, name in _REALTIME_DETAILS:
        out[name] = _get(_get(usage, side), field)
    return out


def extract_realtime(snap: Any) -> Extraction:
    """The extractor of a :func:`snapshot_realtime` (run on the loop)."""
    details = {
        name: snap[name]
        for name in _DETAIL_NAMES
        if isinstance(snap.get(name), int) and not isinstance(snap[name], bool) and snap[name]
    }
    raw = RawUsage(
        prompt=snap.get("input_tokens"),
        completion=snap.get("output_tokens"),
        total=snap.get("total_tokens"),
        cached=snap.get("cached_tokens"),
        details=details,
    )
    return raw, None, None


# -- the hook ----------------------------------------------------------------------------------
class _Connection:
    """What one connection's events have told us so far."""

    __slots__ = (
        "model",
        "opened",
        "provider",
        "seen",
        "session_model",
        "started",
        "transcription_model",
    )

    def __init__(self, connection: Any) -> None:
        self.opened = now()  # its first event: a Live session's record runs from here
        self.provider, self.model = _from_url(connection)  # the model asked for
        self.session_model: str | None = None  # the model the session says it runs
        self.transcription_model: str | None = None
        self.started: dict[str, float] = {}  # response id -> when its response.created came
        self.seen: dict[str, None] = {}  # ids counted (an ordered set, bounded)

    def first(self, key: str) -> bool:
        """True the first time ``key`` is counted on this connection."""
        if key in self.seen:
            return False
        if len(self.seen) >= _MAX_SEEN:
            self.seen.pop(next(iter(self.seen)))
        self.seen[key] = None
        return True


def _from_url(connection: Any) -> tuple[str, str | None]:
    """``(provider, model)`` from the URL the websocket was opened on (Azure names its
    deployment there, OpenAI the model)."""
    try:
        request = connection._connection.request
        host = str(request.headers.get("Host") or "")
        path = str(request.path)
    except Exception:
        return "openai", None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    azure = host.endswith((".azure.com", ".azure.us")) or path.startswith("/openai/")
    names = ("deployment", "model") if azure else ("model",)
    model = next((query[name][0] for name in names if query.get(name)), None)
    return ("azure.ai.openai" if azure else "openai"), model


def _state(connection: Any) -> _Connection:
    state = getattr(connection, _STATE, None)
    if state is None:
        state = _Connection(connection)
        setattr(connection, _STATE, state)
    return state


def _parse_event(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The hook of a connection's ``parse_event``: the event, as the SDK made it."""
    event = wrapped(*args, **kwargs)
    try:
        kind = _get(event, "type")
        if kind in _WATCHED:
            _notice(_state(instance), kind, event)
    except Exception:
        internal_error("openai websocket event")
    return event


def _notice(state: _Connection, kind: str, event: Any) -> None:
    if kind in _LIVE_KINDS:
        _LIVE_KINDS[kind](state, event)
        return
    if kind == "session.created" or kind == "session.updated" or kind == "session.started":
        session = _get(event, "session")
        state.session_model = nonempty_str(_get(session, "model")) or state.session_model
        transcription = _get(_get(_get(session, "audio"), "input"), "transcription") or _get(
            session, "input_audio_transcription"
        )
        state.transcription_model = (
            nonempty_str(_get(transcription, "model")) or state.transcription_model
        )
        return
    if kind == _TRANSCRIBED:
        _transcribed(state, event)
        return
    response = _get(event, "response")
    rid = nonempty_str(_get(response, "id"))
    if kind == "response.created":
        _created(state, rid)
        return
    if rid is not None and not state.first(rid):
        return
    started = state.started.pop(rid, None) if rid is not None else None
    if kind == "response.done":
        _realtime_done(state, response, rid, started)
    else:
        _responses_end(state, kind, response, started)


def _created(state: _Connection, rid: str | None) -> None:
    """A response began: its latency runs from now."""
    if rid is not None:
        if len(state.started) >= _MAX_SEEN:
            state.started.pop(next(iter(state.started)))
        state.started[rid] = now()


def _realtime_done(state: _Connection, response: Any, rid: str | None, started: Any) -> None:
    status = _REALTIME_STATUS.get(_get(response, "status"), "ok")
    error = None
    if status == "error":
        details = _get(_get(response, "status_details"), "error")
        error = (
            nonempty_str(_get(details, "type")) or nonempty_str(_get(details, "code")) or "failed"
        )
    snap = snapshot_realtime(_get(response, "usage"))
    emit(
        state.provider,
        REALTIME,
        state.model or state.session_model,
        snap,
        extract_realtime,
        started if started is not None else now(),
        streamed=True,
        status=status,
        response_model=state.session_model,
        response_id=rid,
        error_type=error,
        usage_available=snap is not None,
    )


def _responses_end(
    state: _Connection, kind: str, response: Any, started: Any, once: bool = False
) -> None:
    """A Responses API response's last event. ``once``: a response a Live session delegated,
    which a sideband sees too: counted once a process, its record id derived from its id."""
    snap, model, rid = detach("responses", response)
    if once and rid is not None and not first_time(_live_counted, f"response:{rid}"):
        return
    emit(
        state.provider,
        "responses",
        state.model or model,
        snap,
        SNAPSHOT_EXTRACTORS["responses"],
        started if started is not None else now(),
        streamed=True,
        status=_RESPONSE_ENDS[kind],
        response_model=model,
        response_id=rid,
        usage_available=snap is not None,
        key=f"{state.provider}:response:{rid}" if once and rid is not None else None,
    )


def _transcribed(state: _Connection, event: Any) -> None:
    """The input audio's transcription, billed apart (its own model, tokens or seconds)."""
    key = f"{_get(event, 'item_id')}:{_get(event, 'content_index')}"
    usage = _get(event, "usage")
    if usage is None or not state.first(key):
        return
    to_dict = getattr(usage, "to_dict", None)
    plain = to_dict() if to_dict is not None else usage  # the numbers, not the transcript
    emit(
        state.provider,
        "audio.transcriptions",
        state.transcription_model,
        {"usage": plain},
        extract_audio,
        now(),
        streamed=True,
    )


# -- the Live API -------------------------------------------------------------------------------
def extract_live_session(snap: Any) -> Extraction:
    """A Live session's usage (:func:`_live_closed`'s snapshot): seconds, no tokens."""
    details: dict[str, Any] = {}
    for name, key in (
        ("audio_seconds", "seconds"),
        ("live_active_seconds", "active_seconds"),
        ("live_paused_seconds", "paused_seconds"),
    ):
        value = snap.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            details[name] = value
    reason = nonempty_str(snap.get("reason"))
    if reason is not None:
        details["live_close_reason"] = reason
    return RawUsage(details=details), None, None


def _live_closed(state: _Connection, event: Any) -> None:
    """``session.closed``: the session's final billable duration."""
    session = _get(event, "session")
    sid = nonempty_str(_get(session, "id"))
    usage = _get(event, "usage")
    if usage is None or (sid is not None and not first_time(_live_counted, f"session:{sid}")):
        return
    snap = {key: _get(usage, key) for key in ("seconds", "active_seconds", "paused_seconds")}
    snap["reason"] = _get(event, "reason")
    emit(
        state.provider,
        LIVE,
        nonempty_str(_get(session, "model")) or state.session_model,
        snap,
        extract_live_session,
        state.opened,
        streamed=True,
        response_id=sid,
        key=None if sid is None else f"{state.provider}:live:{sid}",
    )


def _delegated_response(state: _Connection, event: Any) -> None:
    """``response.event``: one event of a response the session delegated to a Responses
    model; its last one holds the response's usage."""
    inner = _get(event, "event")
    kind = _get(inner, "type")
    response = _get(inner, "response")
    rid = nonempty_str(_get(response, "id"))
    if kind == "response.created":
        _created(state, rid)
    elif kind in _RESPONSE_ENDS:
        started = state.started.pop(rid, None) if rid is not None else None
        _responses_end(state, kind, response, started, once=True)


def _delegated_decision(state: _Connection, event: Any) -> None:
    """``decision.event``: a Decision the session asked for (a delegation, or a transcript
    trigger firing), with its usage. A decision has no id: its delegation's or firing's."""
    inner = _get(event, "event")
    if _get(inner, "type") != "decision.completed":
        return
    decision = _get(inner, "decision")
    which = nonempty_str(_get(event, "delegation_id")) or nonempty_str(_get(event, "trigger_id"))
    if which is not None and not first_time(_live_counted, f"decision:{which}"):
        return
    emit(
        state.provider,
        "decisions",
        nonempty_str(_get(decision, "model")),
        decision,
        EXTRACTORS["decisions"],
        now(),
        streamed=True,
        key=None if which is None else f"{state.provider}:live-decision:{which}",
    )


_LIVE_KINDS: dict[str, Callable[[_Connection, Any], None]] = {
    "session.closed": _live_closed,
    "response.event": _delegated_response,
    "decision.event": _delegated_decision,
}
_WATCHED = _WATCHED | frozenset(_LIVE_KINDS)


def targets() -> list[PatchTarget]:
    """Each connection class's ``parse_event`` (sync and async connections alike have a sync
    one), patched when its module is imported."""
    out = []
    for module, prefix in (
        ("openai.resources.realtime.realtime", "Realtime"),
        ("openai.resources.beta.realtime.realtime", "Realtime"),  # the beta API (openai 1.x on)
        ("openai.resources.responses.responses", "Responses"),
        ("openai.resources.beta.responses.responses", "Responses"),
        ("openai.resources.live.live", "Live"),
        ("openai.resources.live.sideband", "Sideband"),
        ("openai.resources.live.forks", "Forks"),
    ):
        for side in ("", "Async"):
            attribute = f"{side}{prefix}Connection.parse_event"
            out.append(PatchTarget(module, attribute, _parse_event, lean=True, lazy=True))
    return out
