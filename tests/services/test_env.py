"""Services chosen by the environment (zero-code use): each name, the cloud services' settings,
and a name that cannot be used, which never stops the application."""

from __future__ import annotations

import pytest

from ai_tokentrace.services import (
    FirestoreTokenUsageService,
    JsonlFileTokenUsageService,
    LoggingTokenUsageService,
    PubSubTokenUsageService,
)
from ai_tokentrace.services._env import DEFAULT_JSONL_PATH, services_from_env


def test_a_comma_list_gives_one_service_per_name_in_order() -> None:
    services = services_from_env({"AI_TOKENTRACE_SERVICE": " Logging , jsonl "})
    assert [type(s) for s in services] == [LoggingTokenUsageService, JsonlFileTokenUsageService]


def test_jsonl_without_a_path_writes_to_the_default_file() -> None:
    [svc] = services_from_env({"AI_TOKENTRACE_SERVICE": "jsonl"})
    assert isinstance(svc, JsonlFileTokenUsageService)
    assert str(svc.path) == DEFAULT_JSONL_PATH


def test_none_gives_no_service_and_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert services_from_env({"AI_TOKENTRACE_SERVICE": "none"}) == []
    assert caplog.text == ""


def test_firestore_takes_its_collection_from_the_environment() -> None:
    [svc] = services_from_env(
        {"AI_TOKENTRACE_SERVICE": "firestore", "AI_TOKENTRACE_FIRESTORE_COLLECTION": "usage"}
    )
    assert isinstance(svc, FirestoreTokenUsageService)
    assert svc.collection == "usage"


def test_pubsub_takes_its_topic_and_project_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    [svc] = services_from_env(
        {"AI_TOKENTRACE_SERVICE": "pubsub", "AI_TOKENTRACE_PUBSUB_TOPIC": "token-usage"}
    )
    assert isinstance(svc, PubSubTokenUsageService)
    assert svc.topic == "projects/my-project/topics/token-usage"


def test_pubsub_without_a_topic_is_skipped_with_a_warning_and_logging_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = services_from_env({"AI_TOKENTRACE_SERVICE": "pubsub"})
    assert [type(s) for s in services] == [LoggingTokenUsageService]
    assert "cannot use 'pubsub' (AI_TOKENTRACE_PUBSUB_TOPIC is not set); skipped" in caplog.text
    assert "gave no usable service; using logging" in caplog.text


def test_a_usable_name_beside_an_unusable_one_is_kept_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = services_from_env({"AI_TOKENTRACE_SERVICE": "carrier-pigeon,jsonl"})
    assert [type(s) for s in services] == [JsonlFileTokenUsageService]
    assert "cannot use 'carrier-pigeon'" in caplog.text
    assert "using logging" not in caplog.text
