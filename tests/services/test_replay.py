"""``ai-tokentrace replay``: spilled records delivered once, the rest kept, nothing lost."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from ai_tokentrace import TokenUsageRecord
from ai_tokentrace._files import append_lines
from ai_tokentrace._replay import add_arguments, replay, replayed_count, run
from ai_tokentrace.services import RetryPolicy, TokenUsageService
from ai_tokentrace.services._google import is_transient
from tests.emulators import make_record


class Sink(TokenUsageService):
    """Accepts batches, failing the ones listed in ``fail_calls`` (1-based) with ``error``."""

    retry = RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.002)

    def __init__(self, fail_calls: Sequence[int] = (), error: BaseException | None = None) -> None:
        self.fail_calls = set(fail_calls)
        self.error = error or gexc.NotFound("gone")
        self.calls = 0
        self.delivered: list[TokenUsageRecord] = []
        self.during_call: list[object] = []

    async def aexport(self, record: TokenUsageRecord) -> None:
        await self.aexport_batch([record])

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        self.calls += 1
        for action in self.during_call:
            action()  # type: ignore[operator]
        if self.calls in self.fail_calls:
            raise self.error
        self.delivered.extend(records)

    def is_retryable(self, exc: BaseException) -> bool:
        return is_transient(exc)


def _write(path: Path, records: Sequence[TokenUsageRecord]) -> None:
    append_lines(path, [r.to_json() for r in records])


def _ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["record_id"] for line in path.read_text().splitlines() if line]


def test_replay_delivers_everything_and_removes_the_file(tmp_path: Path) -> None:
    """All records reach the service, equal to what was spilled; the spill file is gone."""
    spill = tmp_path / "spill.jsonl"
    records = [make_record(i) for i in range(7)]
    _write(spill, records)
    sink = Sink()
    result = replay(spill, sink, batch_size=3)
    assert (result.delivered, result.remaining, sink.calls) == (7, 0, 3)
    assert sink.delivered == records
    assert not spill.exists()
    assert list(tmp_path.iterdir()) == []


def test_replay_counts_delivered_records(tmp_path: Path) -> None:
    """The module counter (for stats()["replayed"]) grows by what was delivered."""
    spill = tmp_path / "spill.jsonl"
    _write(spill, [make_record(i) for i in range(4)])
    before = replayed_count()
    replay(spill, Sink())
    assert replayed_count() - before == 4


def test_failed_batches_stay_in_the_spill_file(tmp_path: Path) -> None:
    """Delivered batches are removed; once a batch fails, it and the rest are kept."""
    spill = tmp_path / "spill.jsonl"
    records = [make_record(i) for i in range(10)]
    _write(spill, records)
    result = replay(spill, Sink(fail_calls=[2]), batch_size=4)
    assert (result.delivered, result.remaining) == (4, 6)
    assert _ids(spill) == [r.record_id for r in records[4:]]


def test_transient_failure_is_retried_during_replay(tmp_path: Path) -> None:
    """Replay uses the service's retry policy for transient errors."""
    spill = tmp_path / "spill.jsonl"
    _write(spill, [make_record()])
    sink = Sink(fail_calls=[1], error=gexc.ServiceUnavailable("blip"))
    assert replay(spill, sink).delivered == 1
    assert sink.calls == 2


def test_unreadable_lines_are_kept(tmp_path: Path) -> None:
    """A line that is not a record is never dropped: it stays for a human to look at."""
    spill = tmp_path / "spill.jsonl"
    record = make_record()
    append_lines(spill, ["{not json", record.to_json()])
    result = replay(spill, Sink())
    assert (result.delivered, result.invalid, result.remaining) == (1, 1, 0)
    assert spill.read_text() == "{not json\n"


def test_repeated_record_is_sent_once(tmp_path: Path) -> None:
    """The same record spilled twice is replayed once."""
    spill = tmp_path / "spill.jsonl"
    record = make_record()
    _write(spill, [record, record])
    sink = Sink()
    result = replay(spill, sink)
    assert (result.delivered, result.duplicates, len(sink.delivered)) == (1, 1, 1)


def test_spills_appended_during_replay_are_kept(tmp_path: Path) -> None:
    """A running process that spills while replay runs loses nothing: its line stays."""
    spill = tmp_path / "spill.jsonl"
    _write(spill, [make_record(i) for i in range(3)])
    late = make_record()
    sink = Sink()
    sink.during_call.append(lambda: _write(spill, [late]) if sink.calls == 1 else None)
    result = replay(spill, sink)
    assert result.delivered == 3
    assert _ids(spill) == [late.record_id]


def test_copy_left_by_a_dead_replay_is_adopted(tmp_path: Path) -> None:
    """A renamed-aside file whose replay process died is replayed too."""
    spill = tmp_path / "spill.jsonl"
    proc = subprocess.Popen(["true"])
    proc.wait()
    orphan = tmp_path / f"spill.jsonl.replaying-{proc.pid}-1"
    records = [make_record(i) for i in range(2)]
    _write(orphan, records[:1])
    _write(spill, records[1:])
    sink = Sink()
    assert replay(spill, sink).delivered == 2
    assert list(tmp_path.iterdir()) == []


def test_missing_spill_file_replays_nothing(tmp_path: Path) -> None:
    """No spill file is not an error."""
    result = replay(tmp_path / "none.jsonl", Sink())
    assert (result.delivered, result.remaining) == (0, 0)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_replays_into_a_jsonl_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`replay SPILL --to jsonl:PATH` moves every record and exits 0."""
    spill, out = tmp_path / "spill.jsonl", tmp_path / "out.jsonl"
    records = [make_record(i) for i in range(3)]
    _write(spill, records)
    assert run(_parse(str(spill), "--to", f"jsonl:{out}")) == 0
    assert _ids(out) == [r.record_id for r in records]
    assert not spill.exists()
    assert "replayed 3 record(s)" in capsys.readouterr().out


def test_cli_rejects_an_unknown_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --to exits 2 with a message naming the choices."""
    assert run(_parse(str(tmp_path / "s"), "--to", "kafka")) == 2
    assert "firestore, pubsub or jsonl:PATH" in capsys.readouterr().err


def test_cli_pubsub_needs_a_topic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--to pubsub without a topic exits 2 and says what is missing."""
    monkeypatch.delenv("AI_TOKENTRACE_PUBSUB_TOPIC", raising=False)
    args = _parse(str(tmp_path / "s"), "--to", "pubsub")
    args.topic = None
    assert run(args) == 2
    assert "--topic" in capsys.readouterr().err
