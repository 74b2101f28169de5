"""Live interactions (``client.aio.interactions.connect``, experimental): the interaction's
usage arrives on its websocket's last event. A real SDK connection to a real websocket server
on a free loopback port; the interaction is created through the fake HTTP transport."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client

from ..._support import LoopbackWebsocketServer

pytest.importorskip(
    "websockets.sync.server", reason="websockets (google-genai's live extra) is not installed"
)


def _has_live_interactions() -> bool:
    try:
        from google.genai import _interactions_websocket
    except ImportError:
        return False
    return hasattr(_interactions_websocket, "InteractionWebSocketConnection")


pytestmark = [
    pytest.mark.skipif(
        not _has_live_interactions(), reason="this google-genai has no live interactions"
    ),
    pytest.mark.usefixtures("instrumented"),
    pytest.mark.filterwarnings("ignore::UserWarning"),  # the SDK's "experimental" warning
]

MODEL = "gemini-3-flash"
USAGE = {
    "total_input_tokens": 310,
    "total_output_tokens": 40,
    "total_thought_tokens": 12,
    "total_tokens": 362,
    "input_tokens_by_modality": [
        {"modality": "audio", "tokens": 300},
        {"modality": "text", "tokens": 10},
    ],
    "output_tokens_by_modality": [{"modality": "audio", "tokens": 40}],
}


class Server(LoopbackWebsocketServer):
    """The Live Interactions side: ``interaction.connect`` is answered ``connected``; each
    input a step; ``interaction.complete`` the last event with the usage. Input saying
    ``hang up`` is answered by the server cancelling the interaction (with what it used)."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = USAGE
        self.paths: list[str] = []
        super().__init__()

    def _handle(self, ws: Any) -> None:
        self.paths.append(ws.request.path)
        for message in ws:
            event = json.loads(message)
            kind = event.get("event_type")
            if kind == "interaction.connect":
                ws.send(json.dumps({"event_type": "interaction.connected"}))
            elif kind == "interaction.complete":
                self._end(ws, "interaction.completed")
            elif "hang up" in json.dumps(event):
                self._end(ws, "interaction.cancelled")
            elif kind != "interaction.disconnect":
                ws.send(json.dumps({"event_type": "step.start", "index": 0}))
                ws.send(json.dumps({"event_type": "step.stop", "index": 0}))

    def _end(self, ws: Any, kind: str) -> None:
        event: dict[str, Any] = {"event_type": kind}
        if self.usage is not None:
            event["usage"] = self.usage
        ws.send(json.dumps(event))


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _client(server: Server, fake: FakeGemini | None = None) -> Any:
    return fake_genai_client(fake or FakeGemini(), base_url=f"http://127.0.0.1:{server.port}")


async def _talk(client: Any, iid: str, text: str = "Hello", *, end: str = "complete") -> list[Any]:
    """Connect to the interaction, send ``text``, end it (``complete``) or not (``detach``),
    and read its events."""
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn_context = client.aio.interactions.connect(iid)
    async with conn_context as conn:
        await conn.send(text)
        if end == "complete":
            await conn.complete()
        async for event in conn.receive():
            seen.append(event)
            if end == "detach" and getattr(event, "event_type", None) == "step.stop":
                break
    return seen


async def _created(client: Any) -> Any:
    return await client.aio.interactions.create(model=MODEL, input="Hi", background=True)


async def test_a_live_interaction_is_one_record_from_its_last_event(
    server: Server, records: Any
) -> None:
    client = _client(server)
    created = await _created(client)
    events = await _talk(client, created.id)
    assert events[-1].event_type == "interaction.completed"
    assert server.paths[-1].endswith("/interactions/live")
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.response_id) == (
        "gcp.gemini",
        "interactions",
        MODEL,
        created.id,
    )
    assert (rec.streamed, rec.status) == (True, "ok")
    assert (rec.input_tokens, rec.output_tokens, rec.reasoning_tokens) == (310, 52, 12)
    assert rec.usage_details["input_tokens_by_modality"] == {"audio": 300, "text": 10}


async def test_a_live_interaction_counts_in_the_scope_that_created_it(
    server: Server, records: Any
) -> None:
    client = _client(server)
    with ai_tokentrace.trace_tokens("voice-agent") as made:
        created = await _created(client)
    with ai_tokentrace.trace_tokens("listener") as listener:
        await _talk(client, created.id)
    [rec] = records()
    assert made.records == (rec,)
    assert listener.records == ()


async def test_a_get_after_the_live_end_counts_nothing_more(server: Server, records: Any) -> None:
    fake = FakeGemini()
    client = _client(server, fake)
    created = await _created(client)
    await _talk(client, created.id)
    await client.aio.interactions.get(created.id)
    assert len(records()) == 1


async def test_a_live_interaction_made_elsewhere_counts_in_the_reading_scope_unpriced(
    server: Server, records: Any
) -> None:
    elsewhere = f"int-elsewhere-{uuid.uuid4().hex}"
    with ai_tokentrace.trace_tokens("listener") as listener:
        await _talk(_client(server), elsewhere)
    [rec] = records()
    assert (rec.model, rec.cost_usd, rec.response_id) == (None, None, elsewhere)
    assert listener.records == (rec,)


async def test_an_interaction_seen_ending_by_two_listeners_counts_once(
    server: Server, records: Any
) -> None:
    client = _client(server)
    created = await _created(client)
    for _ in range(2):
        events = await _talk(client, created.id)
        assert events[-1].event_type == "interaction.completed"
    [rec] = records()
    assert rec.model == MODEL


async def test_a_live_interaction_the_server_cancelled_is_partial_with_its_usage(
    server: Server, records: Any
) -> None:
    client = _client(server)
    created = await _created(client)
    events = await _talk(client, created.id, "please hang up", end="none")
    assert events[-1].event_type == "interaction.cancelled"
    [rec] = records()
    assert (rec.status, rec.total_tokens) == ("partial", 362)


async def test_detaching_before_the_end_counts_nothing_yet(server: Server, records: Any) -> None:
    """The interaction lives on, resumable: a later connect that sees it end counts it."""
    client = _client(server)
    created = await _created(client)
    await _talk(client, created.id, end="detach")
    assert records() == []
    await _talk(client, created.id)
    [rec] = records()
    assert rec.response_id == created.id


async def test_a_live_end_without_usage_makes_no_record(server: Server, records: Any) -> None:
    server.usage = None
    client = _client(server)
    created = await _created(client)
    await _talk(client, created.id)
    assert records() == []


async def test_our_own_live_interactions_are_not_counted(server: Server, records: Any) -> None:
    from ai_tokentrace._internal import suppressing

    client = _client(server)
    created = await _created(client)
    with suppressing():
        await _talk(client, created.id)
    assert records() == []
