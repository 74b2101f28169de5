"""Start Google's Firestore and Pub/Sub emulators for the integration tests.

Each emulator runs directly (no ``gcloud`` wrapper) on a free loopback port, in its own process
group, with its output in a log file (an undrained pipe would stall a chatty JVM). It is ready
when ``GET /`` answers ``Ok``. Stopping signals the whole group (SIGTERM, then SIGKILL): the
Firestore launcher is a shell script whose JVM survives a kill of the parent alone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ai_tokentrace import TokenUsageRecord

__all__ = [
    "BASE_TIME",
    "PROJECT",
    "Emulator",
    "emulator_command",
    "free_port",
    "make_record",
    "missing_reason",
    "ready",
    "wait_ready",
    "wait_until",
]

PROJECT = "ai-tokentrace-local"
_SDK_ROOTS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
_RELATIVE = {
    "firestore": "platform/cloud-firestore-emulator/cloud_firestore_emulator",
    "pubsub": "platform/pubsub-emulator/bin/cloud-pubsub-emulator",
}


def _sdk_roots() -> list[Path]:
    roots = [Path(p) for p in _SDK_ROOTS]
    gcloud = shutil.which("gcloud")
    if gcloud:
        # .../google-cloud-sdk/bin/gcloud -> .../google-cloud-sdk
        roots.insert(0, Path(os.path.realpath(gcloud)).parent.parent)
    return roots


def _binary(kind: str) -> Path | None:
    for root in _sdk_roots():
        candidate = root / _RELATIVE[kind]
        if candidate.exists():
            return candidate
    return None


def missing_reason(kind: str) -> str | None:
    """Why the ``kind`` emulator cannot run here, or None when it can."""
    if _binary(kind) is None:
        return (
            f"the {kind} emulator is not installed (apt-get install "
            f"google-cloud-cli-{kind}-emulator, or gcloud components install)"
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return f"the {kind} emulator needs a Java runtime (see the README: SDKMAN!)"
    return None


def emulator_command(kind: str, port: int, host: str = "127.0.0.1") -> list[str]:
    binary = _binary(kind)
    if binary is None:
        raise RuntimeError(missing_reason(kind))
    if kind == "firestore":
        return [str(binary), "start", f"--host={host}", f"--port={port}"]
    return [str(binary), f"--host={host}", f"--port={port}"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(host: str, timeout: float = 1.0) -> bool:
    """The emulators' readiness probe: ``GET /`` answers ``Ok``."""
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=timeout) as resp:
            return bool(resp.read().strip() == b"Ok")
    except (OSError, urllib.error.URLError):
        return False


def wait_ready(
    host: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(host):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"emulator at {host} exited with {proc.returncode} before ready")
        time.sleep(0.1)  # polling a readiness probe, not synchronising on time
    raise TimeoutError(f"emulator at {host} not ready within {timeout}s")


@dataclass
class Emulator:
    """One emulator process group; ``start()``/``stop()`` may be repeated (same port), and
    ``close()`` ends it for good: stopped, with its log directory removed (a test run leaves
    nothing behind in the temporary directory). A start that fails has its log's tail in its
    error, as the directory goes with it."""

    kind: str
    port: int = field(default_factory=free_port)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ai-tt-emu-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.kind}-{self.port}.log"

    def start(self, timeout: float = 90.0) -> Emulator:
        env = dict(os.environ)
        env.setdefault("JAVA_TOOL_OPTIONS", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx512m")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                emulator_command(self.kind, self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        try:
            wait_ready(self.host, timeout, self.proc)
        except Exception as exc:
            tail = self.log_tail()
            self.close()
            raise RuntimeError(f"{self.kind} emulator did not start: {exc}\n{tail}") from exc
        except BaseException:
            self.close()
            raise
        return self

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the emulator wrote (empty: none, or no log)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Stop the emulator and remove its log directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def pause(self) -> None:
        """Freeze every process of the emulator (SIGSTOP): connections hang, nothing answers."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def stop(self, grace: float = 5.0) -> None:
        proc = self.proc
        if proc is None:
            return
        self._signal_group(signal.SIGCONT)  # a paused group must run to handle SIGTERM
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        # The JVM child may outlive the launcher: kill whatever is left of the group.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        self.proc = None
        # Wait until the port is free again, so a restart on it can bind.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _listening(self.port):
            time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# -- test data -----------------------------------------------------------------------------
_ids = itertools.count()
BASE_TIME = datetime(2026, 11, 22, 10, 30, tzinfo=timezone.utc)


def make_record(i: int | None = None, **changes: Any) -> TokenUsageRecord:
    """A fully populated record with a unique id."""
    n = next(_ids) if i is None else i
    fields: dict[str, Any] = {
        "record_id": uuid.uuid4().hex,
        "timestamp": BASE_TIME + timedelta(seconds=n % 3600),
        "provider": "openai",
        "operation": "chat.completions",
        "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "response_id": f"chatcmpl-{n}",
        "input_tokens": 100 + n % 7,
        "output_tokens": 20,
        "total_tokens": 120 + n % 7,
        "cached_input_tokens": 50,
        "reasoning_tokens": 5,
        "streamed": n % 2 == 0,
        "latency_ms": 123.5,
        "cost_usd": 0.00025,
        "trace_name": "summarize",
        "user_id": "u1",
        "session_id": "s1",
        "tags": ("batch", "eval"),
        "metadata": {"team": "search", "n": n},
        "price_source": "genai-prices",
    }
    fields.update(changes)
    return TokenUsageRecord(**fields)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll a condition (not a fixed sleep): returns as soon as it holds, fails at ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)
