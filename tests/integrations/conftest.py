"""Fixtures shared by the SDK integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_budget_watching(monkeypatch: pytest.MonkeyPatch) -> None:
    """No budget hooks, so plain calls may take the fast path (budgets, once used, stay
    registered process-wide and route every call the general way)."""
    from ai_tokentrace import _capture

    monkeypatch.setattr(_capture, "pre_call_guards", [])
    monkeypatch.setattr(_capture, "capture_listeners", [])
