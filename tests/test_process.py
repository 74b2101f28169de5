"""Whole-interpreter behaviour, each in a child Python: exit delivery, exit bound, imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

EMIT = """
from ai_tokentrace._capture import emit, now
from ai_tokentrace._record import RawUsage
def extract(p):
    return RawUsage(prompt=p, completion=1), None, None
"""


def run_child(
    code: str, timeout: float = 60.0, with_emit: bool = True
) -> subprocess.CompletedProcess[str]:
    prelude = EMIT if with_emit else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_records_reach_the_jsonl_file_at_exit_without_flush(tmp_path: Path) -> None:
    """N records written with no explicit flush or shutdown are all in the file after exit."""
    out = tmp_path / "usage.jsonl"
    child = run_child(
        f"""
        import ai_tokentrace
        ai_tokentrace.configure(
            service=ai_tokentrace.JsonlFileTokenUsageService({str(out)!r}),
            flush_interval=3600, batch_size=100000,
        )
        for i in range(2500):
            emit("openai", "chat.completions", "gpt-test", i, extract, now())
        """
    )
    assert child.returncode == 0, child.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2500
    assert sorted(json.loads(line)["input_tokens"] for line in lines) == list(range(2500))


def test_a_hanging_service_cannot_hold_up_exit_beyond_the_shutdown_timeout() -> None:
    """Exit waits for a hung service only up to shutdown_timeout, then the process ends."""
    child = run_child(
        """
        import asyncio, ai_tokentrace
        class Hang(ai_tokentrace.TokenUsageService):
            async def aexport(self, record):
                await asyncio.Event().wait()
        ai_tokentrace.configure(service=Hang(), shutdown_timeout=0.5, export_timeout=3600)
        emit("openai", "chat.completions", "gpt-test", 1, extract, now())
        print("done", flush=True)
        """,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert "done" in child.stdout
    assert "not every record was delivered" in child.stderr


def test_import_loads_no_cloud_or_llm_sdk_and_no_event_loop() -> None:
    """import ai_tokentrace stays light: no SDK, no asyncio, no network."""
    child = run_child(
        """
        import sys, socket
        def no_network(*a, **k):
            raise AssertionError("network touched at import")
        socket.socket.connect = no_network
        import ai_tokentrace
        heavy = ("openai", "google", "genai_prices", "httpx", "httpx2", "pydantic",
                 "aiofiles", "asyncio", "wrapt")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        print(",".join(loaded))
        """,
        with_emit=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == ""


def test_instrument_before_any_sdk_import_loads_no_sdk() -> None:
    """instrument() defers patching: it imports no SDK that the program does not import."""
    child = run_child(
        """
        import sys, ai_tokentrace
        ai_tokentrace.instrument()
        print(",".join(sorted(m for m in ("openai", "google.genai") if m in sys.modules)))
        """,
        with_emit=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == ""


def test_injection_turned_off_in_the_environment_holds_for_a_stream_before_any_configure() -> None:
    """The first stream of a process, before any pipeline exists, follows the environment's
    ``AI_TOKENTRACE_INJECT_STREAM_USAGE`` (the hot path's copy of the setting is bound when the
    default pipeline is made)."""
    child = run_child(
        """
        import json, os
        os.environ["AI_TOKENTRACE_INJECT_STREAM_USAGE"] = "off"
        os.environ["AI_TOKENTRACE_SERVICE"] = "none"
        import ai_tokentrace
        from ai_tokentrace.testing.fake_openai import fake_openai_client
        ai_tokentrace.instrument(integrations=["openai"])
        client = fake_openai_client()
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
        ):
            pass
        print(json.dumps(client._fake.requests[-1][2]))
        """,
        with_emit=False,
    )
    assert child.returncode == 0, child.stderr
    sent = json.loads(child.stdout.splitlines()[-1])
    assert sent["stream"] is True
    assert "stream_options" not in sent
