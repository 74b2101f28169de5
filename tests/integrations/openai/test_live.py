"""The Live API (voice sessions billed by the second): a real SDK connection to a real websocket
server on a free loopback port, scripted as OpenAI's server answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import ai_tokentrace

from ..._support import LoopbackWebsocketServer
from .conftest import read_until, websocket_client

pytest.importorskip(
    "websockets.sync.server", reason="websockets (openai[realtime]) is not installed"
)


def _has_live() -> bool:
    try:
        from openai.resources.live import live
    except ImportError:
        return False
    return hasattr(live, "LiveConnection")


pytestmark = [
    pytest.mark.skipif(not _has_live(), reason="this openai version has no Live API"),
    pytest.mark.usefixtures("instrumented"),
]

RESPONSES_USAGE = {
    "input_tokens": 120,
    "output_tokens": 30,
    "total_tokens": 150,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 8},
}
DECISION_USAGE = {
    "input_tokens": 40,
    "output_tokens": 2,
    "total_tokens": 42,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 0},
}


class Server(LoopbackWebsocketServer):
    """OpenAI's side of a Live session: ``session.start`` is answered with the session; on
    ``session.close`` the session reports what it delegated (a Responses model's response, a
    Decision), its running usage twice, then its final usage. A sideband attaching to the
    session gets the same close (OpenAI sends a sideband what the primary gets)."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = {
            "seconds": 95.0,
            "active_seconds": 80,
            "paused_seconds": 15,
        }
        self.reason = "close_requested"
        tag = uuid.uuid4().hex[:12]  # ids of its own: the adapter counts each id once a process
        self.session_id = f"sess_{tag}"
        self.response_id = f"resp_{tag}"
        self.trigger_id = f"trg_{tag}"
        self._ids = iter(range(1, 1_000_000))
        super().__init__()

    def _handle(self, ws: Any) -> None:
        if ws.request.path.endswith("/attach"):
            self._close(ws)
            return
        for message in ws:
            kind = json.loads(message).get("type")
            if kind == "session.start":
                self._send(ws, {"type": "session.started", "session": self._session()})
            elif kind == "session.close":
                self._close(ws)

    def _session(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "object": "live.session",
            "model": "gpt-live-1",
            "expires_at": 2_000_000_000,
        }

    def _send(self, ws: Any, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"event_{next(self._ids)}")
        ws.send(json.dumps(event))

    def _close(self, ws: Any) -> None:
        response = {
            "id": self.response_id,
            "object": "response",
            "model": "gpt-5-mini",
            "output": [],
        }
        wrapped = {"type": "response.event", "delegation_id": "dlg_1"}
        self._send(
            ws,
            {
                **wrapped,
                "event": {
                    "type": "response.created",
                    "response": {**response, "status": "in_progress"},
                },
            },
        )
        self._send(
            ws,
            {
                **wrapped,
                "event": {
                    "type": "response.in_progress",
                    "response": {**response, "status": "in_progress"},
                },
            },
        )
        self._send(
            ws,
            {**wrapped, "event": {"type": "response.output_text.delta", "delta": "Booked."}},
        )
        self._send(
            ws,
            {
                **wrapped,
                "event": {
                    "type": "response.completed",
                    "sequence_number": 4,
                    "response": {**response, "status": "completed", "usage": RESPONSES_USAGE},
                },
            },
        )
        self._send(
            ws,
            {"type": "decision.event", "trigger_id": "trg_other", "event": {"type": "other"}},
        )
        decision = {"model": "gpt-5-nano", "answers": [], "usage": DECISION_USAGE}
        self._send(
            ws,
            {
                "type": "decision.event",
                "trigger_id": self.trigger_id,
                "event": {"type": "decision.completed", "decision": decision},
            },
        )
        for seconds in (30.0, 60.0):
            self._send(ws, {"type": "session.usage.updated", "usage": {"seconds": seconds}})
        closed: dict[str, Any] = {
            "type": "session.closed",
            "reason": self.reason,
            "session": self._session(),
        }
        if self.usage is not None:
            closed["usage"] = self.usage
        self._send(ws, closed)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _client(server: Server, is_async: bool = False) -> Any:
    return websocket_client(server.port, is_async)


def _until_closed(conn: Any) -> list[Any]:
    return read_until(conn, "session.closed")


def _session(conn: Any) -> list[Any]:
    conn.session.start(session={"model": "gpt-live-1"})
    conn.session.close()
    return _until_closed(conn)


def _by_operation(records: list[Any]) -> dict[str, Any]:
    out = {r.operation: r for r in records}
    assert len(out) == len(records)
    return out


def test_a_live_session_is_one_record_of_its_final_seconds(server: Server, records: Any) -> None:
    """Never the running totals session.usage.updated reports on the way."""
    with _client(server).live.connect() as conn:
        _session(conn)
    live = _by_operation(records())["live"]
    assert (live.provider, live.model, live.response_id, live.streamed) == (
        "openai",
        "gpt-live-1",
        server.session_id,
        True,
    )
    assert (live.total_tokens, live.status) == (0, "ok")
    assert live.usage_details == {
        "audio_seconds": 95.0,
        "live_active_seconds": 80,
        "live_paused_seconds": 15,
        "live_close_reason": "close_requested",
    }


def test_a_live_session_is_priced_per_audio_hour(server: Server, records: Any) -> None:
    from genai_prices import Usage, calc_price

    with _client(server).live.connect() as conn:
        _session(conn)
    live = _by_operation(records())["live"]
    want = calc_price(
        Usage(audio_seconds=95.0),
        "gpt-live-1",
        provider_id="openai",
        genai_request_timestamp=live.timestamp,
    )
    assert live.cost_usd == pytest.approx(float(want.total_price), rel=1e-9)
    assert live.cost_usd > 0


def test_what_a_session_delegated_is_counted_apart(server: Server, records: Any) -> None:
    """A delegated Responses response and a Decision: each a record of its own model."""
    with _client(server).live.connect() as conn:
        _session(conn)
    got = _by_operation(records())
    response, decision = got["responses"], got["decisions"]
    assert (response.model, response.response_id, response.input_tokens) == (
        "gpt-5-mini",
        server.response_id,
        120,
    )
    assert (response.output_tokens, response.reasoning_tokens, response.status) == (30, 8, "ok")
    assert (decision.model, decision.input_tokens, decision.output_tokens) == ("gpt-5-nano", 40, 2)
    assert response.cost_usd is not None
    assert decision.cost_usd is not None


async def test_an_async_live_session_is_counted(server: Server, records: Any) -> None:
    async with _client(server, is_async=True).live.connect() as conn:
        await conn.session.start(session={"model": "gpt-live-1"})
        await conn.session.close()
        async for event in conn:
            if event.type == "session.closed":
                break
    assert sorted(r.operation for r in records()) == ["decisions", "live", "responses"]


def test_a_sideband_seeing_the_same_session_counts_nothing_more(
    server: Server, records: Any
) -> None:
    client = _client(server)
    with client.live.connect() as conn:
        _session(conn)
    with client.live.sideband.connect(session_id=server.session_id) as side:
        events = _until_closed(side)
    assert events[-1].type == "session.closed"
    assert sorted(r.operation for r in records()) == ["decisions", "live", "responses"]


def test_a_session_counted_in_two_processes_has_one_record_id(
    server: Server, records: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sideband server and the app each count it: stores keyed on record_id keep one."""
    from ai_tokentrace.integrations import _openai_websocket

    client = _client(server)
    with client.live.connect() as conn:
        _session(conn)
    app = {r.operation: r.record_id for r in records()}
    monkeypatch.setattr(_openai_websocket, "_live_counted", {})  # the sideband server's process
    with client.live.sideband.connect(session_id=server.session_id) as side:
        _until_closed(side)
    sideband = {r.operation: r.record_id for r in records()[3:]}
    assert len(records()) == 6
    assert sideband == app


def test_a_live_session_counts_in_the_scope_that_read_its_close(
    server: Server, records: Any
) -> None:
    with ai_tokentrace.trace_tokens("call-center") as scope, _client(server).live.connect() as c:
        _session(c)
    assert {r.operation for r in scope.records} == {"decisions", "live", "responses"}


def test_a_session_closed_without_usage_makes_no_live_record(server: Server, records: Any) -> None:
    server.usage = None
    with _client(server).live.connect() as conn:
        _session(conn)
    assert "live" not in {r.operation for r in records()}


def test_each_session_is_its_own_record(server: Server, records: Any) -> None:
    client = _client(server)
    made = []
    for n in range(2):
        server.session_id = f"{server.session_id}_{n}"
        made.append(server.session_id)
        with client.live.connect() as conn:
            _session(conn)
    assert sorted(r.response_id for r in records() if r.operation == "live") == sorted(made)
