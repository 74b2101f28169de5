"""Emulator fixtures for the cloud service tests.

Each emulator is started once per session on a free loopback port, unless
``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST`` already point at one (as under
``poe test:integration``, where honcho runs them). Tests that need an emulator are skipped,
with the reason, only when the emulator is not installed at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.testing import InMemoryTokenUsageService
from tests.emulators import PROJECT, Emulator, missing_reason, ready

_ENV = {"firestore": "FIRESTORE_EMULATOR_HOST", "pubsub": "PUBSUB_EMULATOR_HOST"}


def _session_emulator(kind: str) -> Iterator[str]:
    var = _ENV[kind]
    preset = os.environ.get(var, "").strip()
    if preset:
        if not ready(preset, timeout=5.0):
            pytest.fail(f"{var}={preset} is set but nothing answers there")
        yield preset
        return
    reason = missing_reason(kind)
    if reason is not None:
        pytest.skip(reason)
    emulator = Emulator(kind).start()
    os.environ[var] = emulator.host
    try:
        yield emulator.host
    finally:
        os.environ.pop(var, None)
        emulator.close()


@pytest.fixture(scope="session")
def firestore_host() -> Iterator[str]:
    """``host:port`` of a running Firestore emulator (FIRESTORE_EMULATOR_HOST is set)."""
    yield from _session_emulator("firestore")


@pytest.fixture(scope="session")
def pubsub_host() -> Iterator[str]:
    """``host:port`` of a running Pub/Sub emulator (PUBSUB_EMULATOR_HOST is set)."""
    yield from _session_emulator("pubsub")


@pytest.fixture(scope="session")
def firestore_admin(firestore_host: str) -> Any:
    """A plain sync Firestore client to read back what the service wrote (warmed up)."""
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT)
    client.collection("warmup").document("w").set({"ok": True})  # the first call is slow
    return client


@pytest.fixture(scope="session")
def pubsub_admin(pubsub_host: str) -> tuple[Any, Any]:
    """Sync publisher and subscriber clients to create topics and pull messages back."""
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()


@pytest.fixture
def unique() -> str:
    """A name no other test uses (Pub/Sub has no reset; collections stay apart)."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def spill_path(tmp_path: Path) -> Path:
    return tmp_path / "spill.jsonl"


@pytest.fixture
def restore_pipeline() -> Iterator[None]:
    """Leave the process-wide pipeline as the other tests expect it: closes our service."""
    yield
    ai_tokentrace.configure(service=InMemoryTokenUsageService())


__all__: list[str] = []
