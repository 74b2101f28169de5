"""Settings: defaults, then ``AI_TOKENTRACE_*`` variables, then keyword overrides; a bad value
is logged and replaced, never raised."""

from __future__ import annotations

import logging

import pytest

from ai_tokentrace._config import Settings, load_settings


def test_no_environment_and_no_overrides_give_the_defaults() -> None:
    assert load_settings(env={}) == Settings()


def test_environment_variables_set_each_setting() -> None:
    env = {
        "AI_TOKENTRACE_MAX_QUEUE_SIZE": "500",
        "AI_TOKENTRACE_BATCH_SIZE": " 20 ",
        "AI_TOKENTRACE_FLUSH_INTERVAL": "0.25",
        "AI_TOKENTRACE_EXPORT_TIMEOUT": "3",
        "AI_TOKENTRACE_SHUTDOWN_TIMEOUT": "1.5",
        "AI_TOKENTRACE_INJECT_STREAM_USAGE": "off",
    }
    assert load_settings(env=env) == Settings(500, 20, 0.25, 3.0, 1.5, False)


def test_an_override_beats_the_environment() -> None:
    settings = load_settings({"batch_size": 7}, env={"AI_TOKENTRACE_BATCH_SIZE": "20"})
    assert settings.batch_size == 7


def test_a_none_override_leaves_the_environments_value() -> None:
    settings = load_settings({"batch_size": None}, env={"AI_TOKENTRACE_BATCH_SIZE": "20"})
    assert settings.batch_size == 20


def test_an_empty_variable_is_ignored() -> None:
    assert load_settings(env={"AI_TOKENTRACE_BATCH_SIZE": "  "}).batch_size == 100


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("AI_TOKENTRACE_MAX_QUEUE_SIZE", "0"),
        ("AI_TOKENTRACE_BATCH_SIZE", "-3"),
        ("AI_TOKENTRACE_BATCH_SIZE", "1.5"),
        ("AI_TOKENTRACE_FLUSH_INTERVAL", "nan"),
        ("AI_TOKENTRACE_FLUSH_INTERVAL", "inf"),
        ("AI_TOKENTRACE_EXPORT_TIMEOUT", "0"),
        ("AI_TOKENTRACE_INJECT_STREAM_USAGE", "maybe"),
    ],
)
def test_an_invalid_variable_is_logged_and_the_default_used(
    key: str, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ai_tokentrace"):
        assert load_settings(env={key: raw}) == Settings()
    [message] = caplog.messages
    assert key in message
    assert repr(raw) in message


def test_an_invalid_override_keeps_the_environments_value_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ai_tokentrace"):
        settings = load_settings({"batch_size": 0}, env={"AI_TOKENTRACE_BATCH_SIZE": "20"})
    assert settings.batch_size == 20
    [message] = caplog.messages
    assert "batch_size=0" in message
    assert message.endswith("using 20")


def test_a_bool_override_is_taken_as_it_is() -> None:
    assert load_settings({"inject_stream_usage": False}, env={}).inject_stream_usage is False


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("YES", True), ("no", False)])
def test_bool_variables_accept_the_usual_spellings(raw: str, expected: bool) -> None:
    env = {"AI_TOKENTRACE_INJECT_STREAM_USAGE": raw}
    assert load_settings(env=env).inject_stream_usage is expected
