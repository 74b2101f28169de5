"""Fixtures shared by the SDK integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_budget_watching(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process-wide budget, so calls outside a scope may take the fast path."""
    from ai_tokentrace import _capture

    monkeypatch.setattr(_capture, "watching_unscoped", False)
