"""The default logging service."""

from __future__ import annotations

import json
import logging

import pytest

import ai_tokentrace
from ai_tokentrace import LoggingTokenUsageService

from .._support import emit_usage


def test_logs_one_json_object_per_record(caplog: pytest.LogCaptureFixture) -> None:
    """Each record is one INFO line of compact JSON on the chosen logger."""
    caplog.set_level(logging.INFO, logger="usage")
    ai_tokentrace.configure(service=LoggingTokenUsageService(logger_name="usage"))
    emit_usage(prompt=12, completion=3)
    emit_usage()
    assert ai_tokentrace.flush(30)
    lines = [r for r in caplog.records if r.name == "usage"]
    assert len(lines) == 2
    first = json.loads(lines[0].getMessage())
    assert (first["input_tokens"], first["output_tokens"]) == (12, 3)
    assert lines[0].token_usage == first  # type: ignore[attr-defined]


def test_is_the_default_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing configured, records go to the ai_tokentrace logger."""
    from ai_tokentrace import _pipeline

    monkeypatch.delenv("AI_TOKENTRACE_SERVICE", raising=False)
    monkeypatch.delenv("AI_TOKENTRACE_JSONL_PATH", raising=False)
    services = _pipeline.current().services
    assert [type(s) for s in services] == [LoggingTokenUsageService]


def test_jsonl_path_in_the_environment_selects_the_file_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """AI_TOKENTRACE_JSONL_PATH alone is enough for zero-code use."""
    from ai_tokentrace import JsonlFileTokenUsageService, _pipeline

    monkeypatch.delenv("AI_TOKENTRACE_SERVICE", raising=False)
    monkeypatch.setenv("AI_TOKENTRACE_JSONL_PATH", str(tmp_path) + "/u.jsonl")
    services = _pipeline.current().services
    assert [type(s) for s in services] == [JsonlFileTokenUsageService]


def test_unknown_service_name_is_logged_and_logging_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A typo in AI_TOKENTRACE_SERVICE never breaks the application."""
    from ai_tokentrace import _pipeline

    monkeypatch.setenv("AI_TOKENTRACE_SERVICE", "carrier-pigeon")
    services = _pipeline.current().services
    assert [type(s) for s in services] == [LoggingTokenUsageService]
    assert "carrier-pigeon" in caplog.text
