"""Which Google errors are retried, how the backoff is bounded, and where spills go (no
emulator: real exception classes, fake services)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions as gexc

import ai_tokentrace
from ai_tokentrace import TokenUsageRecord
from ai_tokentrace.services import (
    FirestoreTokenUsageService,
    PubSubTokenUsageService,
    RetryPolicy,
    TokenUsageService,
)
from ai_tokentrace.services._google import (
    DEFAULT_RETRY,
    default_spill_path,
    import_extra,
    is_transient,
    is_unavailable,
)
from tests.emulators import make_record


def _rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


@pytest.mark.parametrize(
    "exc",
    [
        gexc.ServiceUnavailable("down"),
        gexc.DeadlineExceeded("slow"),
        gexc.Aborted("contention"),
        gexc.ResourceExhausted("quota"),
        gexc.InternalServerError("oops"),
        ConnectionRefusedError(),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_google_errors_are_retried(exc: BaseException) -> None:
    """Unavailable, deadline, aborted, resource exhausted, internal and connection errors."""
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        gexc.NotFound("no topic"),
        gexc.InvalidArgument("bad"),
        gexc.PermissionDenied("iam"),
        gexc.Unauthenticated("creds"),
        gexc.AlreadyExists("dup"),
        gexc.FailedPrecondition("index"),
        ValueError("bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_are_not_retried(exc: BaseException) -> None:
    """Errors a retry cannot fix go straight to the spill file."""
    assert not is_transient(exc)


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, True),
        (grpc.StatusCode.ABORTED, True),
        (grpc.StatusCode.NOT_FOUND, False),
        (grpc.StatusCode.PERMISSION_DENIED, False),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_raw_grpc_errors_classified_by_status(code: grpc.StatusCode, transient: bool) -> None:
    """A bare grpc.aio.AioRpcError is classified by its status code."""
    assert is_transient(_rpc_error(code)) is transient


def test_retry_error_is_classified_by_its_cause() -> None:
    """The SDK's own RetryError is transient when the error it gave up on was."""
    assert is_transient(gexc.RetryError("gave up", cause=gexc.ServiceUnavailable("down")))
    assert not is_transient(gexc.RetryError("gave up", cause=gexc.NotFound("gone")))


def test_chained_transient_error_is_found() -> None:
    """A transient error raised 'from' another wrapper is still transient."""
    outer = RuntimeError("wrapped")
    outer.__cause__ = gexc.ServiceUnavailable("down")
    assert is_transient(outer)


def test_unavailable_asks_for_a_fresh_channel() -> None:
    """Only failures to reach the server drop the client; a deadline does not."""
    assert is_unavailable(gexc.ServiceUnavailable("down"))
    assert is_unavailable(_rpc_error(grpc.StatusCode.UNAVAILABLE))
    assert not is_unavailable(gexc.DeadlineExceeded("slow"))


def test_services_use_the_google_classification() -> None:
    """Both services answer is_retryable with the shared classification."""
    fs = FirestoreTokenUsageService(project="p")
    ps = PubSubTokenUsageService("t", project="p")
    for svc in (fs, ps):
        assert svc.is_retryable(gexc.ServiceUnavailable("down"))
        assert not svc.is_retryable(gexc.NotFound("gone"))
        assert svc.retry == DEFAULT_RETRY


# -- backoff -------------------------------------------------------------------------------------
def test_default_backoff_is_bounded_with_full_jitter() -> None:
    """Each delay lies in [0, min(max_delay, initial * 2^(n-1))]; the worst total fits the cap."""
    rng = random.Random(7)
    for attempt in range(1, DEFAULT_RETRY.max_attempts):
        cap = min(
            DEFAULT_RETRY.max_delay,
            DEFAULT_RETRY.initial_delay * DEFAULT_RETRY.multiplier ** (attempt - 1),
        )
        delays = [DEFAULT_RETRY.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jittered, not a fixed schedule
    worst = sum(
        min(DEFAULT_RETRY.max_delay, DEFAULT_RETRY.initial_delay * 2 ** (a - 1))
        for a in range(1, DEFAULT_RETRY.max_attempts)
    )
    assert worst <= DEFAULT_RETRY.max_total_delay


class Flaky(TokenUsageService):
    """Raises the given errors in turn, then accepts every batch."""

    retry = RetryPolicy(max_attempts=4, initial_delay=0.001, max_delay=0.002)

    def __init__(self, errors: Sequence[BaseException], spill: Path) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.delivered: list[TokenUsageRecord] = []
        self.spill_path = spill

    async def aexport(self, record: TokenUsageRecord) -> None:
        await self.aexport_batch([record])

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.extend(records)

    def is_retryable(self, exc: BaseException) -> bool:
        return is_transient(exc)


def test_transient_failures_are_retried_until_delivered(
    tmp_path: Path, restore_pipeline: None
) -> None:
    """Two UNAVAILABLE answers, then success: delivered, counted as retried, nothing spilled."""
    svc = Flaky([gexc.ServiceUnavailable("a"), gexc.ServiceUnavailable("b")], tmp_path / "s")
    ai_tokentrace.configure(service=svc)
    svc.export(make_record())
    assert ai_tokentrace.flush(10.0)
    assert (svc.calls, len(svc.delivered)) == (3, 1)
    stats = ai_tokentrace.stats()
    assert (stats["retried"], stats["spilled"]) == (2, 0)
    assert not (tmp_path / "s").exists()


def test_retries_are_bounded_then_spilled(tmp_path: Path, restore_pipeline: None) -> None:
    """A destination that stays unavailable gets max_attempts tries, then the batch is spilled."""
    svc = Flaky([gexc.ServiceUnavailable("down")] * 10, tmp_path / "s")
    ai_tokentrace.configure(service=svc)
    svc.export(make_record())
    assert ai_tokentrace.flush(10.0) is False
    assert svc.calls == Flaky.retry.max_attempts
    assert ai_tokentrace.stats()["spilled"] == 1
    assert len((tmp_path / "s").read_text().splitlines()) == 1


def test_permanent_failure_is_spilled_at_once(tmp_path: Path, restore_pipeline: None) -> None:
    """NotFound is tried once, never retried."""
    svc = Flaky([gexc.NotFound("no topic")], tmp_path / "s")
    ai_tokentrace.configure(service=svc)
    svc.export(make_record())
    assert ai_tokentrace.flush(10.0) is False
    assert (svc.calls, ai_tokentrace.stats()["retried"]) == (1, 0)


# -- spill path and lazy imports -----------------------------------------------------------------
def test_spill_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AI_TOKENTRACE_SPILL_DIR decides where the default spill files go."""
    monkeypatch.setenv("AI_TOKENTRACE_SPILL_DIR", str(tmp_path))
    assert default_spill_path("pubsub", "a/b c") == tmp_path / "pubsub-a_b_c.jsonl"
    assert FirestoreTokenUsageService("usage", project="p").spill_path == (
        tmp_path / "firestore-usage.jsonl"
    )


def test_default_spill_dir_is_user_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the variable, spills go under $XDG_STATE_HOME/ai-tokentrace/spill."""
    monkeypatch.delenv("AI_TOKENTRACE_SPILL_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_spill_path("firestore", "usage") == (
        tmp_path / "ai-tokentrace" / "spill" / "firestore-usage.jsonl"
    )


def test_missing_extra_names_the_install_command() -> None:
    """A missing SDK fails with the pip command for the right extra."""
    with pytest.raises(ImportError, match=r"pip install 'ai-tokentrace\[firestore\]'"):
        import_extra("google.cloud.no_such_module", "firestore")


def test_import_loads_no_google_sdk() -> None:
    """`import ai_tokentrace` (services package included) imports neither cloud SDK."""
    code = (
        "import sys, ai_tokentrace, ai_tokentrace.services;"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud', 'google.pubsub'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
