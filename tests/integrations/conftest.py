"""Fixtures shared by the SDK integration tests."""

from __future__ import annotations

import inspect
from typing import Any

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


@pytest.fixture
def hook_form() -> str:
    """How the per-request hook is installed: ``"direct"``, a function with the SDK's own
    signature (``PatchTarget.direct``), or ``"wrapper"``, the ``(wrapped, instance, args,
    kwargs)`` form an SDK whose signature differs gets. ``direct_hooks_declined`` turns the
    first off; a module that overrides this fixture runs its tests both ways."""
    return "direct"


def direct_hooks_declined(monkeypatch: pytest.MonkeyPatch, module: object, *names: str) -> None:
    """The ``direct`` factories ``names`` of ``module`` decline every original, as they do
    one whose signature is not theirs (an older SDK's), so the wrapper form is installed."""
    for name in names:
        monkeypatch.setattr(module, name, lambda original: None)


def own_parameters(hook: Any) -> list[str]:
    """The names of ``hook``'s own parameters, not those of the method it wraps: the SDK's for
    a direct hook, ``self, *args, **kwargs`` for the wrapper form's lean function."""
    return list(inspect.signature(hook, follow_wrapped=False).parameters)


def expected_parameters(original: Any, hook_form: str, direct: Any) -> list[str]:
    """:func:`own_parameters` of the hook installed on ``original``: the ``direct`` factory's
    hook where it was not declined and takes the original's parameters (this SDK's version
    is the one it was written for), else the wrapper form's lean function."""
    hook = direct(original) if hook_form == "direct" else None
    if hook is not None:  # a factory may decline an original it was not written for
        written_for = own_parameters(hook)
        if written_for == list(inspect.signature(original).parameters):
            return written_for
    return ["self", "args", "kwargs"]
