"""Internal errors: logged once, never raised into the caller (unless strict, as in our suite)."""

from __future__ import annotations

import logging

import pytest

from ai_tokentrace import _internal


def fail(where: str) -> None:
    try:
        raise RuntimeError("our bug")
    except RuntimeError:
        _internal.internal_error(where)


def test_internal_error_is_logged_once_per_place(
    lenient: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The first occurrence is an ERROR with traceback; repeats go to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="ai_tokentrace")
    for _ in range(3):
        fail("test.once")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "test.once" in errors[0].getMessage()
    assert errors[0].exc_info is not None


def test_internal_error_is_not_raised_when_lenient(lenient: object) -> None:
    """Users' programs never see our bugs."""
    fail("test.lenient")


def test_internal_error_reraises_in_strict_mode() -> None:
    """Our own suite runs strict, so a bug fails the test that hit it."""
    with pytest.raises(RuntimeError, match="our bug"):
        fail("test.strict")


def test_emit_survives_a_broken_extractor_when_lenient(lenient: object) -> None:
    """A failing hand-off returns None instead of raising into the caller."""
    from ai_tokentrace import _capture

    class Exploding:
        @property
        def labels(self) -> object:
            raise RuntimeError("broken scope")

        def _add(self, capture: object) -> None:
            raise RuntimeError("broken scope")

    result = _capture.emit(
        "openai",
        "chat.completions",
        "m",
        None,
        lambda p: (None, None, None),
        0.0,
        scope=Exploding(),
    )
    assert result is None
