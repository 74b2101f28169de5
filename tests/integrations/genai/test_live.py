"""The Live API: a real ``client.aio.live`` session against a real websocket server on a
free loopback port (TLS: the SDK only speaks ``wss`` to an API-key endpoint), scripted as the
Live API answers a turn."""

from __future__ import annotations

import gc
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ai_tokentrace

from ..._support import LoopbackWebsocketServer

pytest.importorskip(
    "websockets.sync.server", reason="websockets (google-genai's live extra) is not installed"
)

MODEL = "gemini-live-2.5-flash"
pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make a TLS cert"),
    pytest.mark.usefixtures("instrumented"),
]


def usage(prompt: int, response: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt,
        "responseTokenCount": response,
        "totalTokenCount": prompt + response,
        "promptTokensDetails": [
            {"modality": "AUDIO", "tokenCount": prompt - 8},
            {"modality": "TEXT", "tokenCount": 8},
        ],
        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
    }


class LiveServer(LoopbackWebsocketServer):
    """Answers each turn with a model turn and ``turnComplete``; ``mode`` says where the
    usage goes: on the ``turnComplete`` message (``turn``), on two messages of the turn as a
    running total (``running``), or in a message of its own after ``turnComplete``
    (``after``). ``cut``: close the socket after the model turn, before the turn ends."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.mode = "turn"
        self.cut = False
        self.turns = 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        super().__init__(context)

    def _handle(self, ws: Any) -> None:
        ws.recv()  # the setup
        ws.send(json.dumps({"setupComplete": {}}))
        for _ in ws:
            self.turns += 1
            prompt = 20 * self.turns  # the history grows turn by turn
            ws.send(json.dumps({"serverContent": {"modelTurn": {"parts": [{"text": "Hi"}]}}}))
            if self.cut:
                ws.send(json.dumps({"usageMetadata": usage(prompt, 3)}))
                return
            done: dict[str, Any] = {"serverContent": {"turnComplete": True}}
            if self.mode == "turn":
                done["usageMetadata"] = usage(prompt, 6)
            elif self.mode == "running":
                ws.send(json.dumps({"usageMetadata": usage(prompt, 3)}))
                ws.send(json.dumps({"usageMetadata": usage(prompt, 6)}))
            ws.send(json.dumps(done))
            if self.mode == "after":
                ws.send(json.dumps({"usageMetadata": usage(prompt, 6)}))


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the SDK's client trusts this server
    server = LiveServer(cert, key)
    yield server
    server.close()


def _client(server: LiveServer) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=f"https://127.0.0.1:{server.port}")
    return genai.Client(api_key="fake-key", http_options=options)


async def _turns(server: LiveServer, n: int, *, read_after: bool = False) -> None:
    """``n`` turns of a session, each read to its end (and the message after it)."""
    config = {"response_modalities": ["TEXT"]}
    async with _client(server).aio.live.connect(model=MODEL, config=config) as session:
        for i in range(n):
            await session.send_client_content(turns={"role": "user", "parts": [{"text": f"{i}"}]})
            async for _ in session.receive():
                pass
            if read_after:
                await session._receive()


async def test_a_turn_is_one_record_with_its_audio_tokens(live: LiveServer, records: Any) -> None:
    await _turns(live, 1)
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.streamed) == (
        "gcp.gemini",
        "live",
        MODEL,
        True,
    )
    assert (rec.input_tokens, rec.output_tokens, rec.usage_available) == (20, 6, True)
    assert rec.usage_details["prompt_tokens_details"] == {"AUDIO": 12, "TEXT": 8}
    assert rec.usage_details["response_tokens_details"] == {"AUDIO": 6}


async def test_each_turn_is_its_own_record(live: LiveServer, records: Any) -> None:
    await _turns(live, 3)
    assert [r.input_tokens for r in records()] == [20, 40, 60]


async def test_a_running_total_within_a_turn_is_taken_once_not_summed(
    live: LiveServer, records: Any
) -> None:
    live.mode = "running"
    await _turns(live, 2)
    assert [(r.input_tokens, r.output_tokens) for r in records()] == [(20, 6), (40, 6)]


async def test_usage_sent_after_the_turn_ended_is_still_that_turns(
    live: LiveServer, records: Any
) -> None:
    live.mode = "after"
    await _turns(live, 2, read_after=True)
    assert [(r.input_tokens, r.output_tokens) for r in records()] == [(20, 6), (40, 6)]


async def test_a_turn_cut_off_by_the_server_keeps_the_usage_it_reported(
    live: LiveServer, records: Any
) -> None:
    """The socket closes mid-turn: the SDK's error reaches the caller, and the usage the turn
    had reported is recorded."""
    live.cut = True
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a closed socket
        await _turns(live, 1, read_after=True)
    [rec] = records()
    assert (rec.input_tokens, rec.output_tokens) == (20, 3)


async def test_usage_left_when_the_session_closes_is_recorded_as_it_closes(
    live: LiveServer, records: Any
) -> None:
    """The last turn's usage, sent after its end: recorded on leaving ``async with``, while
    the session object is still held."""
    live.mode = "after"
    config = {"response_modalities": ["TEXT"]}
    async with _client(live).aio.live.connect(model=MODEL, config=config) as session:
        await session.send_client_content(turns={"role": "user", "parts": [{"text": "hi"}]})
        async for _ in session.receive():
            pass
        await session._receive()  # the usage, after turnComplete
    assert [(r.input_tokens, r.output_tokens) for r in records()] == [(20, 6)]
    assert session is not None


async def test_a_session_opened_before_instrument_is_recorded_when_let_go(
    live: LiveServer, records: Any
) -> None:
    """Opened before ``instrument()``, the session names no model; its pending usage is
    recorded when it is freed."""
    ai_tokentrace.uninstrument()
    config = {"response_modalities": ["TEXT"]}
    live.mode = "after"
    async with _client(live).aio.live.connect(model=MODEL, config=config) as session:
        ai_tokentrace.instrument(integrations=["genai"])
        await session.send_client_content(turns={"role": "user", "parts": [{"text": "hi"}]})
        async for _ in session.receive():
            pass
        await session._receive()
    assert records() == []
    del session
    gc.collect()
    [rec] = records()
    assert (rec.model, rec.input_tokens) == (None, 20)


async def test_uninstrumented_sessions_make_no_record(live: LiveServer, records: Any) -> None:
    from google.genai import live as live_module

    ai_tokentrace.uninstrument()
    assert not hasattr(live_module.AsyncSession._receive, "__wrapped__")
    await _turns(live, 1)
    assert records() == []
