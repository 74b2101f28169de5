"""The Realtime API and the Responses API over a websocket: a real SDK connection to a real
websocket server on a free loopback port, scripted as OpenAI's server answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import ai_tokentrace

from ..._support import LoopbackWebsocketServer
from .conftest import method, read_until, websocket_client

pytest.importorskip(
    "websockets.sync.server", reason="websockets (openai[realtime]) is not installed"
)


def _has_ga_realtime() -> bool:
    try:
        from openai.resources.realtime import realtime
    except ImportError:
        return False
    return hasattr(realtime, "RealtimeConnection")


pytestmark = [
    pytest.mark.skipif(not _has_ga_realtime(), reason="this openai version has no GA Realtime API"),
    pytest.mark.usefixtures("instrumented"),
]

SESSION_MODEL = "gpt-realtime-2025-08-28"
USAGE = {
    "input_tokens": 1000,
    "output_tokens": 300,
    "total_tokens": 1300,
    "input_token_details": {
        "text_tokens": 600,
        "audio_tokens": 400,
        "cached_tokens": 200,
        "cached_tokens_details": {"text_tokens": 150, "audio_tokens": 50},
    },
    "output_token_details": {"text_tokens": 100, "audio_tokens": 200},
}
RESPONSES_USAGE = {
    "input_tokens": 12,
    "output_tokens": 30,
    "total_tokens": 42,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 8},
}


class Server(LoopbackWebsocketServer):
    """OpenAI's side of the socket, scripted: a Realtime session answers each
    ``response.create`` with a response (``status``: the next of ``statuses``) and, for each
    ``conversation.item.create``, a transcription; the Responses socket answers with a
    completed response."""

    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.repeat_done = False  # send each response.done twice (a server retrying)
        self._ids = iter(range(1, 1_000_000))
        super().__init__()

    def _handle(self, ws: Any) -> None:
        realtime = ws.request.path.startswith("/v1/realtime")
        if realtime:
            session = {
                "type": "realtime",
                "object": "realtime.session",
                "model": SESSION_MODEL,
                "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
            }
            self._send(ws, {"type": "session.created", "session": session})
        for message in ws:
            kind = json.loads(message).get("type")
            if kind == "response.create" and realtime:
                self._realtime_response(ws)
            elif kind == "response.create":
                self._responses_response(ws)
            elif kind == "conversation.item.create":
                self._send(
                    ws,
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": f"item_{next(self._ids)}",
                        "content_index": 0,
                        "transcript": "hello there",
                        "usage": {
                            "type": "tokens",
                            "input_tokens": 70,
                            "output_tokens": 12,
                            "total_tokens": 82,
                            "input_token_details": {"audio_tokens": 70, "text_tokens": 0},
                        },
                    },
                )

    def _send(self, ws: Any, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"event_{next(self._ids)}")
        ws.send(json.dumps(event))

    def _realtime_response(self, ws: Any) -> None:
        rid = f"resp_{next(self._ids)}"
        status = self.statuses.pop(0) if self.statuses else "completed"
        self._send(
            ws,
            {
                "type": "response.created",
                "response": {"id": rid, "object": "realtime.response", "status": "in_progress"},
            },
        )
        self._send(
            ws,
            {
                "type": "response.output_audio_transcript.delta",
                "response_id": rid,
                "item_id": "item_x",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hi",
            },
        )
        response: dict[str, Any] = {
            "id": rid,
            "object": "realtime.response",
            "status": status,
            "usage": USAGE,
        }
        if status == "failed":
            response["status_details"] = {
                "type": "failed",
                "error": {"type": "server_error", "code": "oops"},
            }
        for _ in range(2 if self.repeat_done else 1):
            self._send(ws, {"type": "response.done", "response": response})

    def _responses_response(self, ws: Any) -> None:
        rid = f"resp_{next(self._ids)}"
        base = {"id": rid, "object": "response", "model": "gpt-5-2025-08-07", "output": []}
        self._send(ws, {"type": "response.created", "response": {**base, "status": "in_progress"}})
        done = {**base, "status": "completed", "usage": RESPONSES_USAGE}
        self._send(ws, {"type": "response.completed", "response": done, "sequence_number": 3})


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _client(server: Server, is_async: bool = False) -> Any:
    return websocket_client(server.port, is_async)


@pytest.mark.parametrize("path", ["realtime", "beta.realtime"])
def test_a_realtime_response_is_one_record_with_its_audio_tokens(
    server: Server, records: Any, path: str
) -> None:
    """The GA Realtime API, and the beta one many applications still run."""
    connect = method(_client(server), f"{path}.connect")  # skips where the SDK has none
    with connect(model="gpt-realtime") as conn:
        conn.response.create()
        events = read_until(conn, "response.done")
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.response_model) == (
        "openai",
        "realtime",
        "gpt-realtime",
        SESSION_MODEL,
    )
    assert (rec.streamed, rec.status, rec.response_id) == (True, "ok", events[-1].response.id)
    assert (rec.input_tokens, rec.output_tokens, rec.cached_input_tokens) == (1000, 300, 200)
    assert rec.usage_details == {
        "input_audio_tokens": 400,
        "cached_audio_tokens": 50,
        "output_audio_tokens": 200,
    }


def test_a_realtime_response_is_priced_at_the_audio_rates(server: Server, records: Any) -> None:
    """As genai-prices prices it: audio in and out, cached audio, at their own rates."""
    from genai_prices import Usage, calc_price

    with _client(server).realtime.connect(model="gpt-realtime") as conn:
        conn.response.create()
        read_until(conn, "response.done")
    [rec] = records()
    usage = Usage(
        input_tokens=1000,
        cache_read_tokens=200,
        input_audio_tokens=400,
        cache_audio_read_tokens=50,
        output_tokens=300,
        output_audio_tokens=200,
    )
    want = calc_price(
        usage, "gpt-realtime", provider_id="openai", genai_request_timestamp=rec.timestamp
    )
    assert rec.cost_usd == pytest.approx(float(want.total_price), rel=1e-9)


async def test_an_async_realtime_connection_counts_each_response(
    server: Server, records: Any
) -> None:
    async with _client(server, is_async=True).realtime.connect(model="gpt-realtime") as conn:
        for _ in range(2):
            await conn.response.create()
            async for event in conn:
                if event.type == "response.done":
                    break
    recs = records()
    assert [(r.operation, r.total_tokens) for r in recs] == [("realtime", 1300)] * 2
    assert len({r.response_id for r in recs}) == 2


def test_a_response_parsed_twice_or_sent_twice_is_counted_once(
    server: Server, records: Any
) -> None:
    server.repeat_done = True
    with _client(server).realtime.connect(model="gpt-realtime") as conn:
        conn.response.create()
        events = read_until(conn, "response.done", times=2)
        conn.parse_event(json.dumps(events[-1].to_dict()))
    assert len(records()) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [("cancelled", ("partial", None)), ("failed", ("error", "server_error"))],
)
def test_a_cancelled_or_failed_response_keeps_its_usage_and_says_so(
    server: Server, records: Any, status: str, expected: tuple[str, str | None]
) -> None:
    server.statuses = [status]
    with _client(server).realtime.connect(model="gpt-realtime") as conn:
        conn.response.create()
        read_until(conn, "response.done")
    [rec] = records()
    assert ((rec.status, rec.error_type), rec.total_tokens) == (expected, 1300)


def test_the_input_audio_transcription_is_its_own_record_with_the_sessions_model(
    server: Server, records: Any
) -> None:
    with _client(server).realtime.connect(model="gpt-realtime") as conn:
        conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_audio"}]}
        )
        read_until(conn, "conversation.item.input_audio_transcription.completed")
    [rec] = records()
    assert (rec.operation, rec.model, rec.input_tokens, rec.output_tokens) == (
        "audio.transcriptions",
        "gpt-4o-mini-transcribe",
        70,
        12,
    )
    assert rec.usage_details["input_audio_tokens"] == 70


def test_a_realtime_response_read_in_a_scope_carries_it(server: Server, records: Any) -> None:
    with _client(server).realtime.connect(model="gpt-realtime") as conn:
        conn.response.create()
        with ai_tokentrace.trace_tokens("voice-agent", user_id="u7"):
            read_until(conn, "response.done")
    [rec] = records()
    assert (rec.trace_name, rec.user_id) == ("voice-agent", "u7")


@pytest.mark.parametrize("path", ["responses", "beta.responses"])
def test_a_response_over_the_responses_websocket_is_one_record(
    server: Server, records: Any, path: str
) -> None:
    connect = method(_client(server), f"{path}.connect")
    with connect() as conn:
        conn.response.create(model="gpt-5", input="Hi")
        read_until(conn, "response.completed")
    [rec] = records()
    assert (rec.operation, rec.model, rec.response_model, rec.streamed) == (
        "responses",
        "gpt-5-2025-08-07",
        "gpt-5-2025-08-07",
        True,
    )
    assert (rec.input_tokens, rec.output_tokens, rec.reasoning_tokens) == (12, 30, 8)


def test_uninstrument_leaves_the_connections_as_they_were(server: Server, records: Any) -> None:
    from openai.resources.realtime import realtime

    ai_tokentrace.uninstrument()
    assert not hasattr(realtime.RealtimeConnection.parse_event, "__wrapped__")
    with _client(server).realtime.connect(model="gpt-realtime") as conn:
        conn.response.create()
        read_until(conn, "response.done")
    assert records() == []


class _Request:
    def __init__(self, host: str, path: str) -> None:
        self.headers = {"Host": host}
        self.path = path


class _Socket:
    def __init__(self, host: str, path: str) -> None:
        self.request = _Request(host, path)


class _Connection:
    def __init__(self, host: str, path: str) -> None:
        self._connection = _Socket(host, path)


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("api.openai.com", "/v1/realtime?model=gpt-realtime", ("openai", "gpt-realtime")),
        (
            "me.openai.azure.com",
            "/openai/realtime?api-version=2025-04-01-preview&deployment=voice",
            ("azure.ai.openai", "voice"),
        ),
        ("api.openai.com", "/v1/responses", ("openai", None)),
    ],
)
def test_the_provider_and_model_come_from_the_connections_url(
    host: str, path: str, expected: tuple[str, str | None]
) -> None:
    """Azure names the deployment in the URL; a Responses socket names no model there."""
    from ai_tokentrace.integrations._openai_websocket import _from_url

    assert _from_url(_Connection(host, path)) == expected
    assert _from_url(object()) == ("openai", None)  # no websocket to read: what can be said
