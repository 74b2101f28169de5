"""Budgets (issue 7): refuse or warn before a call once spend passes a limit."""

from __future__ import annotations

from typing import Any

__all__ = ["Budget", "BudgetExceededError", "install_budget"]


class BudgetExceededError(RuntimeError):
    """Raised into the caller, before any request is sent, by a Budget in ``raise`` mode."""


class Budget:
    """Placeholder until issue 7 lands."""

    def __init__(self, limit_usd: float, **options: Any) -> None:
        self.limit_usd = limit_usd
        self.options = options


def install_budget(budget: Budget | None) -> None:
    """Make ``budget`` process-wide (``instrument(budget=...)``)."""
