"""PubSubTokenUsageService against Google's real Pub/Sub emulator (and its pure helpers)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace import TokenUsageRecord
from ai_tokentrace._record import SCHEMA_VERSION
from ai_tokentrace._replay import replay
from ai_tokentrace._schema import SCHEMA_PATH, bigquery_schema, render
from ai_tokentrace.services import PubSubTokenUsageService, RetryPolicy
from ai_tokentrace.services._pubsub import attributes, topic_path
from tests.emulators import PROJECT, Emulator, free_port, make_record, missing_reason, wait_until

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.2, max_total_delay=1.0)


def _spilled_ids(spill: Path) -> list[str]:
    if not spill.exists():
        return []
    return [json.loads(line)["record_id"] for line in spill.read_text().splitlines() if line]


def _export_all(service: PubSubTokenUsageService, records: list[TokenUsageRecord]) -> None:
    for r in records:
        service.export(r)


class Topic:
    """A fresh topic with one pull subscription, and a way to pull everything back."""

    def __init__(self, admin: tuple[Any, Any], name: str, ordering: bool = False) -> None:
        self.publisher, self.subscriber = admin
        self.path = f"projects/{PROJECT}/topics/{name}"
        self.subscription = f"projects/{PROJECT}/subscriptions/{name}-sub"
        self.ordering = ordering
        self.create()

    def create(self) -> None:
        self.publisher.create_topic(name=self.path)
        self.subscriber.create_subscription(
            request={
                "name": self.subscription,
                "topic": self.path,
                "enable_message_ordering": self.ordering,
            }
        )

    def pull(self, expected_ids: set[str], timeout: float = 60.0) -> list[Any]:
        """Pull (and ack) until every expected record id has arrived; returns the messages."""
        got: list[Any] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while not expected_ids <= seen:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(expected_ids - seen)} record(s) never arrived")
            response = self.subscriber.pull(
                request={"subscription": self.subscription, "max_messages": 1000}, timeout=10
            )
            messages = [m.message for m in response.received_messages]
            if response.received_messages:
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": [m.ack_id for m in response.received_messages],
                    }
                )
            got.extend(messages)
            seen.update(m.attributes["record_id"] for m in messages)
        return got


@pytest.fixture
def topic(pubsub_admin: tuple[Any, Any], unique: str) -> Topic:
    return Topic(pubsub_admin, unique)


def _service(topic: str, spill: Path, **kwargs: Any) -> PubSubTokenUsageService:
    return PubSubTokenUsageService(topic, project=PROJECT, spill_path=spill, **kwargs)


# -- pure helpers --------------------------------------------------------------------------------
def test_topic_path_from_name_and_project() -> None:
    """A short name plus a project gives the full topic path."""
    assert topic_path("usage", "p1") == "projects/p1/topics/usage"


def test_topic_path_keeps_a_full_path() -> None:
    """A full path is used as given, whatever the project argument."""
    assert topic_path("projects/a/topics/b", "other") == "projects/a/topics/b"


def test_short_topic_without_project_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any project the error says how to give one."""
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCLOUD_PROJECT", raising=False)
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        PubSubTokenUsageService("usage")


def test_malformed_topic_path_is_rejected() -> None:
    """A path that is not projects/P/topics/T fails at construction."""
    with pytest.raises(ValueError, match="topic path"):
        PubSubTokenUsageService("projects/p/subscriptions/s")


def test_attributes_carry_ids_for_deduplication() -> None:
    """Attributes hold provider, operation, model, schema version and record id, all strings."""
    record = make_record()
    assert attributes(record) == {
        "provider": "openai",
        "operation": "chat.completions",
        "model": "gpt-4o-mini",
        "schema_version": str(SCHEMA_VERSION),
        "record_id": record.record_id,
    }


def test_attributes_omit_a_missing_model() -> None:
    """A record without a model has no model attribute (attributes must be strings)."""
    assert "model" not in attributes(make_record(model=None))


# -- against the emulator ------------------------------------------------------------------------
@pytest.mark.integration
def test_messages_pulled_back_with_body_and_attributes(
    topic: Topic, spill_path: Path, restore_pipeline: None
) -> None:
    """Each record is one message: JSON body equal to to_dict(), attributes for filtering."""
    svc = _service(topic.path, spill_path)
    ai_tokentrace.configure(service=svc)
    records = [make_record(i) for i in range(20)]
    _export_all(svc, records)
    assert ai_tokentrace.flush(30.0)
    messages = topic.pull({r.record_id for r in records})
    by_id = {m.attributes["record_id"]: m for m in messages}
    for record in records:
        message = by_id[record.record_id]
        assert json.loads(message.data) == record.to_dict()
        assert dict(message.attributes) == attributes(record)
        assert message.ordering_key == ""


@pytest.mark.integration
def test_short_topic_name_uses_the_project(
    topic: Topic, spill_path: Path, restore_pipeline: None
) -> None:
    """A short topic name with project= publishes to projects/<project>/topics/<name>."""
    svc = _service(topic.path.rsplit("/", 1)[-1], spill_path)
    assert svc.topic == topic.path
    ai_tokentrace.configure(service=svc)
    record = make_record()
    svc.export(record)
    assert ai_tokentrace.flush(30.0)
    assert len(topic.pull({record.record_id})) == 1


@pytest.mark.integration
def test_ordering_key_from_the_record(
    pubsub_admin: tuple[Any, Any], unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """An ordering-key function sets each message's key; one key's messages arrive in order."""
    topic = Topic(pubsub_admin, unique, ordering=True)
    svc = _service(topic.path, spill_path, ordering_key=lambda r: r.user_id)
    ai_tokentrace.configure(service=svc, batch_size=10)
    records = [make_record(i, user_id="alice") for i in range(30)]
    _export_all(svc, records)
    assert ai_tokentrace.flush(30.0)
    messages = topic.pull({r.record_id for r in records})
    assert {m.ordering_key for m in messages} == {"alice"}
    assert [m.attributes["record_id"] for m in messages] == [r.record_id for r in records]


@pytest.mark.integration
def test_batch_over_1000_messages_all_published(
    topic: Topic, spill_path: Path, restore_pipeline: None
) -> None:
    """A lane batch of 2,500 records goes out as several requests of at most 1,000 messages."""
    svc = _service(topic.path, spill_path)
    ai_tokentrace.configure(service=svc, batch_size=2500)
    records = [make_record(i) for i in range(2500)]
    _export_all(svc, records)
    assert ai_tokentrace.flush(60.0)
    assert ai_tokentrace.stats()["exported"] == 2500
    assert len(topic.pull({r.record_id for r in records})) >= 2500


@pytest.mark.integration
def test_missing_topic_is_spilled_without_retries(
    pubsub_host: str, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """NotFound is permanent: no retry, the records go straight to the spill file."""
    svc = _service(f"projects/{PROJECT}/topics/{unique}-absent", spill_path)
    ai_tokentrace.configure(service=svc)
    records = [make_record(i) for i in range(5)]
    _export_all(svc, records)
    assert ai_tokentrace.flush(30.0) is False
    assert ai_tokentrace.stats()["retried"] == 0
    assert sorted(_spilled_ids(spill_path)) == sorted(r.record_id for r in records)


@pytest.mark.integration
def test_dead_port_never_breaks_the_caller(
    monkeypatch: pytest.MonkeyPatch, spill_path: Path, restore_pipeline: None
) -> None:
    """Pointed at a port where nothing listens: export returns at once, records are spilled."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    svc = _service("usage", spill_path, retry=FAST_RETRY, rpc_timeout=1.0)
    ai_tokentrace.configure(service=svc, export_timeout=2.0)
    records = [make_record(i) for i in range(50)]
    _export_all(svc, records)  # would raise or hang here if the caller were exposed
    assert ai_tokentrace.flush(60.0) is False
    stats = ai_tokentrace.stats()
    assert stats["spilled"] == 50
    assert stats["retried"] > 0
    assert sorted(_spilled_ids(spill_path)) == sorted(r.record_id for r in records)


# -- faults --------------------------------------------------------------------------------------
@pytest.fixture
def own_pubsub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A Pub/Sub emulator only this test uses, so it can be paused, killed and restarted."""
    reason = missing_reason("pubsub")
    if reason is not None:
        pytest.skip(reason)
    emulator = Emulator("pubsub").start()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    try:
        yield emulator
    finally:
        emulator.close()


def _own_admin() -> tuple[Any, Any]:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()


@pytest.mark.integration
def test_pause_mid_run_loses_nothing_and_duplicates_are_marked(
    own_pubsub: Emulator, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Emulator frozen mid-stream: every record is published or spilled; replay publishes the
    rest, and any record that arrives twice carries the same record_id attribute."""
    topic = Topic(_own_admin(), unique)
    svc = _service(topic.path, spill_path, retry=FAST_RETRY, rpc_timeout=0.5)
    ai_tokentrace.configure(service=svc, batch_size=50, export_timeout=1.0)
    records = [make_record(i) for i in range(600)]
    _export_all(svc, records[:200])
    assert ai_tokentrace.flush(60.0)
    own_pubsub.pause()
    try:
        _export_all(svc, records[200:400])
        wait_until(lambda: ai_tokentrace.stats()["spilled"] >= 200, what="spills while frozen")
    finally:
        own_pubsub.resume()
    _export_all(svc, records[400:])
    ai_tokentrace.flush(60.0)
    stats = ai_tokentrace.stats()
    assert stats["exported"] + stats["spilled"] == 600
    spilled = set(_spilled_ids(spill_path))
    assert spilled
    # Every record that is not in the spill file was published (pull fails on a missing one).
    messages = topic.pull({r.record_id for r in records} - spilled)

    result = replay(spill_path, svc)
    assert (result.delivered, result.remaining) == (len(spilled), 0)
    messages += topic.pull(spilled)
    for message in messages:
        assert json.loads(message.data)["record_id"] == message.attributes["record_id"]
    assert {m.attributes["record_id"] for m in messages} == {r.record_id for r in records}


@pytest.mark.integration
def test_kill_and_restart_spills_then_recovers_and_replays(
    own_pubsub: Emulator, unique: str, spill_path: Path, restore_pipeline: None
) -> None:
    """Emulator killed: records made meanwhile are spilled; after a restart the same service
    publishes again, and replay publishes the spilled records."""
    topic = Topic(_own_admin(), unique)
    svc = _service(topic.path, spill_path, retry=FAST_RETRY, rpc_timeout=1.0)
    ai_tokentrace.configure(service=svc, batch_size=50, export_timeout=2.0)
    before, during, after = ([make_record(i) for i in range(100)] for _ in range(3))
    _export_all(svc, before)
    assert ai_tokentrace.flush(60.0)
    topic.pull({r.record_id for r in before})

    own_pubsub.stop()
    _export_all(svc, during)
    assert ai_tokentrace.flush(60.0) is False
    assert sorted(_spilled_ids(spill_path)) == sorted(r.record_id for r in during)

    own_pubsub.start()  # same port; the emulator keeps no topics across a restart
    topic = Topic(_own_admin(), unique)
    _export_all(svc, after)
    assert ai_tokentrace.flush(60.0)
    result = replay(spill_path, svc)
    assert (result.delivered, result.remaining) == (100, 0)
    messages = topic.pull({r.record_id for r in during + after})
    assert {m.attributes["record_id"] for m in messages} == {r.record_id for r in during + after}


# -- the BigQuery table schema -------------------------------------------------------------------
def test_shipped_bigquery_schema_is_the_generated_one() -> None:
    """ai_tokentrace/schema/bigquery_schema.json is up to date with the record type."""
    assert SCHEMA_PATH.read_text() == render()


def test_bigquery_columns_are_the_message_keys() -> None:
    """Every key of a message body is a column, in order, so a table-schema subscription
    writes each message as one row."""
    assert [c["name"] for c in bigquery_schema()] == list(make_record().to_dict())


def test_bigquery_types_match_the_message_values() -> None:
    """Each value in a message body has the JSON type its column expects."""
    body = json.loads(make_record(cost_usd=0.5, provider_total_tokens=3).to_json())
    expected = {
        "STRING": str,
        "INTEGER": int,
        "FLOAT": float,
        "BOOLEAN": bool,
        "TIMESTAMP": str,
        "JSON": dict,
    }
    for column in bigquery_schema():
        value = body[column["name"]]
        if value is None:
            assert column["mode"] == "NULLABLE", column["name"]
        elif column["mode"] == "REPEATED":
            assert all(isinstance(v, expected[column["type"]]) for v in value)
        else:
            assert isinstance(value, expected[column["type"]]), column["name"]
