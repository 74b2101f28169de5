"""The suite's own emulator harness: it leaves nothing behind, and a start that fails says why."""

from __future__ import annotations

import pytest

from tests import emulators
from tests.emulators import Emulator


def test_a_closed_emulator_leaves_no_log_directory() -> None:
    emulator = Emulator("pubsub")
    assert emulator.log_dir.is_dir()
    emulator.close()
    assert not emulator.log_dir.exists()


def test_a_start_that_fails_raises_with_the_log_and_leaves_no_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        emulators,
        "emulator_command",
        lambda kind, port: ["sh", "-c", "echo 'port already in use' >&2; exit 3"],
    )
    emulator = Emulator("pubsub")
    with pytest.raises(RuntimeError, match="exited with 3") as raised:
        emulator.start(timeout=30.0)
    assert "port already in use" in str(raised.value)
    assert not emulator.log_dir.exists()
    assert emulator.proc is None
