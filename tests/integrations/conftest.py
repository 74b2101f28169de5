"""Fixtures shared by the SDK integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_budget_watching(monkeypatch: pytest.MonkeyPatch) -> None:
    """No budget watching (one made by an earlier test leaves its hooks in place), so calls
    take the fast path: outside a scope, and in one."""
    from ai_tokentrace import _budget, _capture

    monkeypatch.setattr(_capture, "watching_unscoped", False)
    monkeypatch.setattr(_capture, "pre_call_guards", [])
    monkeypatch.setattr(_capture, "capture_listeners", [])
    monkeypatch.setattr(_budget, "_hooks_on", False)
