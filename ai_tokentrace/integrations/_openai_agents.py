"""OpenAI's Agents API (beta): one record per session turn, counted once.

A session's turns run on OpenAI's side, asynchronously: no request returns a turn's usage.
It arrives on the turn once the turn has ended: in the session's event stream (the
``agent.session.turn.completed`` / ``failed`` / ``cancelled`` events) and on a retrieve of the
turn. So a turn is counted the first time it is seen ended with usage, whichever way, once per
process by its id, with a ``record_id`` derived from that id (a second process counting it
writes the same record id). Root-agent and subagent turns are turns of their own, each with
its own usage, and each counted.

Nothing in a turn names its model: the model is its session's (the one its agent had when the
session was made), else its agent's, learnt from the sessions and agents this process saw
(created, retrieved, updated, or carried by a session event). A turn of a session this process
never saw has no model and no price.

The record goes to the scope the turn's input was sent in (the session's ``create`` or
``events.create``), when that was in this process; else to the scope that read the stream or
retrieved the turn.

Streams are watched without a proxy: the SDK's stream reads every event from its
``_iterator`` (``for``, ``next``, the SDK's agent helpers alike), which is swapped for a
generator that looks at each event and yields it unchanged, so the caller keeps the very
object the SDK made. Listing turns counts nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .._capture import emit, nonempty_str
from .._internal import internal_error, logger
from .._scope import Scope
from ._base import bounded_put, first_time, run_time, unix_seconds
from ._base import field_of as _get
from ._openai_extract import extract_agent_turn

__all__ = ["AGENT_TURNS", "begin", "bills", "count_turn", "seen", "watch"]

AGENT_TURNS = "agents.turns"

# What a request under ``/agents`` is to us (see :func:`begin`)
_AGENT = "agent"  # an agent created, retrieved or updated: its model
_SESSION = "session"  # a session retrieved or updated: its agent's model
_CREATE = "create"  # a session created (maybe with its first input, maybe streamed)
_INPUT = "input"  # input sent to a session (``events.create``): a turn starts or is steered
_EVENTS = "events"  # a session's event stream
_TURN = "turn"  # a turn retrieved (a root agent's or a subagent's)

# A turn's end status -> the record's status. A cancelled turn bills what it did.
_TURN_ENDS = {"completed": "ok", "failed": "error", "cancelled": "partial"}
_TURN_EVENTS = {
    "agent.session.turn.completed": "ok",
    "agent.session.turn.failed": "error",
    "agent.session.turn.cancelled": "partial",
}
# session events that carry the whole session (and so its agent's model)
_SESSION_EVENTS = frozenset(
    {
        "agent.session.created",
        "agent.session.in_progress",
        "agent.session.idle",
        "agent.session.requires_action",
        "agent.session.failed",
        "agent.session.budget_reached",
    }
)
# the ``/agents/<name>`` paths that are not an agent
_NOT_AGENTS = frozenset({"sessions", "automations", "environments", "vaults"})

_models: dict[str, str] = {}  # agent or session id -> the model its agent runs
_scopes: dict[str, Scope] = {}  # session id -> the scope its latest input was sent in
_counted: dict[str, object] = {}  # turns counted here, by id


def begin(url: str, method: Any) -> str | None:
    """What a request to ``url`` is to us, as ``"<kind> <url>"`` (kept on the call until its
    result comes back); None for one we do not look at (lists, deletes, files, automations)."""
    path = url.partition("?")[0]
    parts = path.strip("/").split("/")
    verb = str(method).lower()
    n = len(parts)
    kind: str | None = None
    if n >= 2 and parts[1] == "sessions":
        if n == 2:
            kind = _CREATE if verb == "post" else None
        elif n == 3:
            kind = _SESSION if verb in ("get", "post") else None
        elif n == 4 and parts[3] == "events":
            kind = _INPUT if verb == "post" else _EVENTS if verb == "get" else None
        elif verb == "get" and (
            (n == 5 and parts[3] == "turns")
            or (n == 7 and parts[3] == "subagents" and parts[5] == "turns")
        ):
            kind = _TURN
    elif (n == 1 and verb == "post") or (
        n == 2 and parts[1] not in _NOT_AGENTS and verb in ("get", "post")
    ):
        kind = _AGENT
    return None if kind is None else f"{kind} {path}"


def bills(kind_path: str) -> bool:
    """Whether the request starts billed work: a session created, or input sent to one."""
    return kind_path.startswith((_CREATE + " ", _INPUT + " "))


def _session_of(path: str) -> str | None:
    parts = path.strip("/").split("/")
    return parts[2] if len(parts) > 2 and parts[2] else None


def _learn_agent(agent_id: Any, model: Any, session_id: Any = None) -> None:
    model = nonempty_str(model)
    if model is None:
        return
    for key in (agent_id, session_id):
        if type(key) is str and key and _models.get(key) != model:
            bounded_put(_models, key, model)


def _learn_session(session: Any) -> None:
    agent = _get(session, "agent")
    _learn_agent(_get(agent, "id"), _get(agent, "model"), _get(session, "id"))


def _sent_in(session_id: Any, scope: Scope | None) -> None:
    """Input went to the session in ``scope``: its next turns are that scope's."""
    if type(session_id) is not str or not session_id:
        return
    if scope is None:
        _scopes.pop(session_id, None)
    else:
        bounded_put(_scopes, session_id, scope)


def seen(
    kind_path: str,
    provider: str,
    scope: Scope | None,
    started: float,
    result: Any,
    request_id: str | None,
) -> None:
    """A plain (non-streamed) result of a request :func:`begin` named."""
    kind, _, path = kind_path.partition(" ")
    if kind == _TURN:
        count_turn(provider, result, scope, started, request_id)
    elif kind == _CREATE:
        _learn_session(result)
        _sent_in(_get(result, "id"), scope)
    elif kind == _SESSION:
        _learn_session(result)
    elif kind == _INPUT:
        _sent_in(_session_of(path), scope)
    elif kind == _AGENT:
        _learn_agent(_get(result, "id"), _get(result, "model"))


def count_turn(
    provider: str, turn: Any, scope: Scope | None, started: float, request_id: str | None
) -> None:
    """A ``Turn`` (retrieved, or returned by a traced function): its record if it has ended
    with usage, the first time it is seen here."""
    _count(provider, turn, turn, _TURN_ENDS.get(_get(turn, "status")), scope, started, request_id)


def _count(
    provider: str,
    turn: Any,
    holder: Any,
    status: str | None,
    scope: Scope | None,
    started: float,
    request_id: str | None,
) -> None:
    """One record for an ended turn with usage (``holder``: the turn, or the event that ended
    it where only the event carries usage), the first time it is seen here."""
    tid = _get(turn, "id")
    if status is None or type(tid) is not str or _get(holder, "usage") is None:
        return  # not ended, or no usage yet: a later retrieve may bring it
    if not first_time(_counted, tid):
        return
    sid = nonempty_str(_get(turn, "session_id"))
    aid = nonempty_str(_get(turn, "agent_id"))
    # a session keeps the model its agent had when the session was made
    model = next((_models[key] for key in (sid, aid) if key is not None and key in _models), None)
    if sid is not None:
        scope = _scopes.get(sid, scope)
    ended = unix_seconds(_get(turn, "completed_at"))
    emit(
        provider,
        AGENT_TURNS,
        model,
        holder,
        extract_agent_turn,
        started,
        status=status,
        response_id=tid,
        request_id=request_id,
        scope=scope,
        key=f"{provider}:agent-turn:{tid}",
        at=ended,
        took=run_time(unix_seconds(_get(turn, "started_at")), ended),
    )


class _Look:
    """One event stream's look at its events: a turn's end counts it; a session learns its
    model (and, on a stream that creates the session, its scope)."""

    __slots__ = ("creating", "provider", "request_id", "scope", "started")

    def __init__(
        self,
        provider: str,
        scope: Scope | None,
        started: float,
        request_id: str | None,
        creating: bool,
    ) -> None:
        self.provider = provider
        self.scope = scope
        self.started = started
        self.request_id = request_id
        self.creating = creating

    def __call__(self, event: Any) -> None:
        try:
            kind = getattr(event, "type", None)
            status = _TURN_EVENTS.get(kind) if type(kind) is str else None
            if status is not None:
                turn = getattr(event, "turn", None)
                holder = turn if _get(turn, "usage") is not None else event
                self._turn(turn, holder, status)
            elif kind in _SESSION_EVENTS:
                session = getattr(event, "session", None)
                _learn_session(session)
                if self.creating and kind == "agent.session.created":
                    _sent_in(_get(session, "id"), self.scope)
        except Exception:
            internal_error("openai agent session event")

    def _turn(self, turn: Any, holder: Any, status: str) -> None:
        # the event's type says how the turn ended, should the turn it carries not say
        ended = _TURN_ENDS.get(_get(turn, "status")) or status
        _count(self.provider, turn, holder, ended, self.scope, self.started, self.request_id)


def _watched(events: Iterator[Any], look: _Look) -> Iterator[Any]:
    """The SDK's events, each looked at first. Let go early, it lets go of the SDK's own
    generator, which closes its response as it would have unwatched."""
    for event in events:
        look(event)
        yield event


async def _awatched(events: AsyncIterator[Any], look: _Look) -> AsyncIterator[Any]:
    async for event in events:
        look(event)
        yield event


def watch(
    kind_path: str,
    stream: Any,
    provider: str,
    scope: Scope | None,
    started: float,
    request_id: str | None,
) -> None:
    """Look at every event of a session's event stream, the caller's stream left as it is."""
    look = _Look(provider, scope, started, request_id, kind_path.startswith(_CREATE + " "))
    events: Any = getattr(stream, "_iterator", None)
    if hasattr(events, "__anext__"):
        stream._iterator = _awatched(events, look)
    elif hasattr(events, "__next__"):
        stream._iterator = _watched(events, look)
    else:
        logger.debug("ai-tokentrace: an agent session stream without _iterator is not watched")
