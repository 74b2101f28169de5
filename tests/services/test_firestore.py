"""FirestoreTokenUsageService against Google's real Firestore emulator (and its pure helpers)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace import TokenUsageRecord
from ai_tokentrace._replay import add_arguments, replay, run
from ai_tokentrace.services import FirestoreTokenUsageService, RetryPolicy
from ai_tokentrace.services._firestore import plan_batches, rollup_keys
from ai_tokentrace.testing import InMemoryTokenUsageService
from tests.emulators import PROJECT, Emulator, free_port, make_record, missing_reason, wait_until

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.2, max_total_delay=1.0)


def _service(collection: str, spill: Path, **kwargs: Any) -> FirestoreTokenUsageService:
    return FirestoreTokenUsageService(
        collection=collection, project=PROJECT, spill_path=spill, **kwargs
    )


def _docs(admin: Any, collection: str) -> dict[str, dict[str, Any]]:
    return {d.id: d.to_dict() for d in admin.collection(collection).stream()}


def _spilled_ids(spill: Path) -> list[str]:
    if not spill.exists():
        return []
    return [json.loads(line)["record_id"] for line in spill.read_text().splitlines() if line]


def _export_all(service: FirestoreTokenUsageService, records: list[TokenUsageRecord]) -> None:
    for r in records:
        service.export(r)


# -- pure helpers --------------------------------------------------------------------------------
def test_plan_batches_splits_more_than_500_writes() -> None:
    """1,203 records become commits of 500, 500 and 203 writes."""
    records = [make_record(i) for i in range(1203)]
    assert [b.writes for b in plan_batches(records, rollups=False)] == [500, 500, 203]


def test_plan_batches_counts_rollup_writes_against_the_cap() -> None:
    """Rollup increments share the 500-write cap, one write per rollup document per commit."""
    records = [make_record(i, model=f"m{i % 3}", user_id=f"u{i % 2}") for i in range(1000)]
    batches = plan_batches(records, rollups=True)
    assert all(b.writes <= 500 for b in batches)
    assert sum(len(b.records) for b in batches) == 1000


def test_rollup_keys_escape_slashes_in_model_names() -> None:
    """A model name with '/' still gives a valid document id."""
    keys = rollup_keys(make_record(model="tunedModels/abc", user_id="a/b"))
    assert all("/" not in k.doc_id for k in keys)
    assert [dict(k.fields)["kind"] for k in keys] == ["model", "user"]


def test_missing_collection_name_is_rejected() -> None:
    """A collection path with a slash is an error at construction, not at export."""
    with pytest.raises(ValueError, match="collection"):
        FirestoreTokenUsageService(collection="a/b")


# -- against the emulator ------------------------------------------------------------------------
@pytest.mark.integration
def test_record_lands_with_fields_and_types(
    firestore_admin: Any, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """One document per record, id = record_id, every field typed as in the record."""
    svc = _service(unique, spill_path)
    ai_tokentrace.configure(service=svc)
    record = make_record()
    svc.export(record)
    assert ai_tokentrace.flush(30.0)
    doc = firestore_admin.collection(unique).document(record.record_id).get()
    assert doc.exists
    data = doc.to_dict()
    assert isinstance(data["timestamp"], datetime)
    assert data["timestamp"] == record.timestamp
    expected = record.to_dict()
    del expected["timestamp"]
    for key, value in expected.items():
        assert data[key] == value, key
    assert isinstance(data["input_tokens"], int)
    assert isinstance(data["cost_usd"], float)
    assert data["tags"] == ["batch", "eval"]
    assert data["metadata"] == {"team": "search", "n": expected["metadata"]["n"]}


@pytest.mark.integration
def test_batches_over_500_all_land(
    firestore_admin: Any, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """A lane batch of 1,203 records is split into commits of at most 500 and all land."""
    svc = _service(unique, spill_path)
    ai_tokentrace.configure(service=svc, batch_size=1203)
    records = [make_record(i) for i in range(1203)]
    _export_all(svc, records)
    assert ai_tokentrace.flush(60.0)
    assert set(_docs(firestore_admin, unique)) == {r.record_id for r in records}
    assert ai_tokentrace.stats()["exported"] == 1203


@pytest.mark.integration
def test_client_made_once_on_first_export_and_closed_at_retirement(
    firestore_host: str, unique: str, spill_path: Path
) -> None:
    """No client before the first export, the same one for every batch, none after close."""
    svc = _service(unique, spill_path)
    assert svc._client is None
    ai_tokentrace.configure(service=svc)
    svc.export(make_record())
    assert ai_tokentrace.flush(30.0)
    client = svc._client
    assert client is not None
    svc.export(make_record())
    assert ai_tokentrace.flush(30.0)
    assert svc._client is client
    ai_tokentrace.configure(service=InMemoryTokenUsageService())  # retires and closes svc
    assert svc._client is None


@pytest.mark.integration
def test_same_record_twice_is_one_document(
    firestore_admin: Any, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Exporting a record again (a retry, a replay) overwrites, never duplicates."""
    svc = _service(unique, spill_path)
    ai_tokentrace.configure(service=svc)
    record = make_record()
    svc.export(record)
    assert ai_tokentrace.flush(30.0)
    svc.export(record)
    assert ai_tokentrace.flush(30.0)
    assert list(_docs(firestore_admin, unique)) == [record.record_id]


@pytest.mark.integration
def test_rollups_sum_daily_totals_per_model_and_user(
    firestore_admin: Any, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Daily rollups hold the exact totals per model and per user."""
    svc = _service(unique, spill_path, rollups=True)
    ai_tokentrace.configure(service=svc, batch_size=50)
    records = [
        make_record(i, model="m-a" if i % 2 else "m-b", user_id="alice" if i % 3 else None)
        for i in range(120)
    ]
    _export_all(svc, records)
    assert ai_tokentrace.flush(60.0)
    rollups = _docs(firestore_admin, f"{unique}_daily")
    day = records[0].timestamp.date().isoformat()
    model_a = rollups[f"{day}_openai_m-a"]
    ours = [r for r in records if r.model == "m-a"]
    assert model_a["records"] == len(ours)
    assert model_a["input_tokens"] == sum(r.input_tokens for r in ours)
    assert model_a["cost_usd"] == pytest.approx(sum(r.cost_usd or 0 for r in ours))
    alice_b = rollups[f"{day}_openai_m-b_user_alice"]
    ours = [r for r in records if r.model == "m-b" and r.user_id == "alice"]
    assert alice_b["records"] == len(ours)
    assert alice_b["total_tokens"] == sum(r.total_tokens for r in ours)


@pytest.mark.integration
def test_rollups_never_count_a_stored_record_twice(
    firestore_admin: Any, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Replaying records that are already stored leaves the rollup totals unchanged."""
    svc = _service(unique, spill_path, rollups=True)
    ai_tokentrace.configure(service=svc)
    records = [make_record(i, model="m") for i in range(30)]
    _export_all(svc, records)
    assert ai_tokentrace.flush(30.0)
    # A fresh service (as in another process) gets ten known records plus five new ones.
    spill_path.write_text("".join(r.to_json() + "\n" for r in records[:10]))
    extra = [make_record(i, model="m") for i in range(5)]
    spill_path.write_text(spill_path.read_text() + "".join(r.to_json() + "\n" for r in extra))
    result = replay(spill_path, _service(unique, spill_path, rollups=True))
    assert result.delivered == 15
    day = records[0].timestamp.date().isoformat()
    totals = _docs(firestore_admin, f"{unique}_daily")[f"{day}_openai_m"]
    assert totals["records"] == 35
    assert totals["input_tokens"] == sum(r.input_tokens for r in records + extra)
    assert len(_docs(firestore_admin, unique)) == 35


@pytest.mark.integration
def test_dead_port_never_breaks_the_caller(
    monkeypatch: pytest.MonkeyPatch, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Pointed at a port where nothing listens: export returns at once, records are spilled."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    svc = _service(unique, spill_path, retry=FAST_RETRY, rpc_timeout=1.0)
    ai_tokentrace.configure(service=svc, export_timeout=2.0)
    records = [make_record(i) for i in range(50)]
    _export_all(svc, records)  # would raise or hang here if the caller were exposed
    assert ai_tokentrace.flush(60.0) is False
    stats = ai_tokentrace.stats()
    assert stats["spilled"] == 50
    assert stats["retried"] > 0
    assert sorted(_spilled_ids(spill_path)) == sorted(r.record_id for r in records)


# -- faults: an emulator of our own, stopped and restarted mid-run --------------------------------
@pytest.fixture
def own_firestore(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A Firestore emulator only this test uses, so it can be paused, killed and restarted."""
    reason = missing_reason("firestore")
    if reason is not None:
        pytest.skip(reason)
    emulator = Emulator("firestore").start()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    try:
        yield emulator
    finally:
        emulator.close()


def _admin() -> Any:
    """A sync client for the emulator named by FIRESTORE_EMULATOR_HOST, warmed up (the first
    request to a fresh emulator takes seconds, which is not what these tests measure)."""
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    client.collection("warmup").document("w").set({"ok": True})
    return client


@pytest.mark.integration
def test_pause_mid_run_loses_nothing_and_replay_never_duplicates(
    own_firestore: Emulator, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Emulator frozen mid-stream: every record is stored or spilled; replay completes it
    with each record stored once and rollups counted once."""
    admin = _admin()
    svc = _service(unique, spill_path, rollups=True, retry=FAST_RETRY, rpc_timeout=0.5)
    ai_tokentrace.configure(service=svc, batch_size=50, export_timeout=1.0)
    records = [make_record(i, model="m", user_id="alice") for i in range(600)]
    _export_all(svc, records[:200])
    assert ai_tokentrace.flush(60.0)
    own_firestore.pause()
    try:
        _export_all(svc, records[200:400])
        wait_until(lambda: ai_tokentrace.stats()["spilled"] >= 200, what="spills while frozen")
    finally:
        own_firestore.resume()
    _export_all(svc, records[400:])
    ai_tokentrace.flush(60.0)
    stats = ai_tokentrace.stats()
    assert stats["exported"] + stats["spilled"] == 600
    stored = set(_docs(admin, unique))
    spilled = set(_spilled_ids(spill_path))
    assert stored | spilled == {r.record_id for r in records}

    result = replay(spill_path, _service(unique, spill_path, rollups=True))
    assert result.remaining == 0
    assert not spill_path.exists() or spill_path.read_text() == ""
    assert set(_docs(admin, unique)) == {r.record_id for r in records}
    day = records[0].timestamp.date().isoformat()
    rollups = _docs(admin, f"{unique}_daily")
    for doc_id in (f"{day}_openai_m", f"{day}_openai_m_user_alice"):
        assert rollups[doc_id]["records"] == 600
        assert rollups[doc_id]["input_tokens"] == sum(r.input_tokens for r in records)


@pytest.mark.integration
def test_kill_and_restart_spills_then_recovers_and_replays(
    own_firestore: Emulator, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Emulator killed: records made meanwhile go to the spill file; after a restart the same
    service delivers again, and replay delivers the spilled ones exactly once."""
    admin = _admin()
    svc = _service(unique, spill_path, retry=FAST_RETRY, rpc_timeout=1.0)
    ai_tokentrace.configure(service=svc, batch_size=50, export_timeout=2.0)
    before, during, after = (
        [make_record(i) for i in range(100)],
        [make_record(i) for i in range(100)],
        [make_record(i) for i in range(100)],
    )
    _export_all(svc, before)
    assert ai_tokentrace.flush(60.0)
    assert set(_docs(admin, unique)) == {r.record_id for r in before}

    own_firestore.stop()
    _export_all(svc, during)
    assert ai_tokentrace.flush(60.0) is False
    assert sorted(_spilled_ids(spill_path)) == sorted(r.record_id for r in during)

    own_firestore.start()  # same port; the emulator keeps nothing across a restart
    admin = _admin()
    _export_all(svc, after)
    ok = ai_tokentrace.flush(60.0)
    print("DEBUG", ai_tokentrace.stats())
    assert ok
    result = replay(spill_path, svc)
    assert (result.delivered, result.remaining) == (100, 0)
    assert set(_docs(admin, unique)) == {r.record_id for r in during + after}
    assert replay(spill_path, svc).delivered == 0
    assert len(_docs(admin, unique)) == 200


@pytest.mark.integration
def test_cli_replay_into_firestore(firestore_admin: Any, unique: str, spill_path: Path) -> None:
    """`ai-tokentrace replay SPILL --to firestore` stores every spilled record and exits 0."""
    records = [make_record(i) for i in range(12)]
    spill_path.write_text("".join(r.to_json() + "\n" for r in records))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [str(spill_path), "--to", "firestore", "--collection", unique, "--project", PROJECT]
    )
    assert run(args) == 0
    assert set(_docs(firestore_admin, unique)) == {r.record_id for r in records}
    assert not spill_path.exists()
