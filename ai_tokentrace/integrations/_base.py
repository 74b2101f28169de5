"""The small contract every SDK adapter implements, and the helpers they share.

An adapter module (``integrations/openai.py``, ``integrations/genai.py``) defines an
:class:`Integration`: the module it waits for, its patch targets as data, and a pure
``capture_returned`` for decorator-only mode. Everything generic (deferring patches until the
SDK is imported, idempotence, undoing) lives in ``ai_tokentrace._instrument``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Integration", "PatchTarget", "Signature", "Wrapper", "has_signature"]

# wrapt's wrapper signature: (wrapped, instance, args, kwargs) -> result.
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


# (name, kind, default) of each parameter, as ``inspect.Parameter`` spells them.
Signature = tuple[tuple[str, Any, Any], ...]


def has_signature(function: Callable[..., Any], expected: Signature) -> bool:
    """Whether ``function``'s parameters are ``expected``, names, kinds and defaults: a
    ``direct`` hook is written for one signature and must not replace another."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return tuple((p.name, p.kind, p.default) for p in parameters) == expected


@dataclass(frozen=True, slots=True)
class PatchTarget:
    """One attribute to wrap: ``module`` + dotted ``attribute`` (e.g. ``"Completions.create"``).

    ``required=False`` targets are skipped with a debug log when an SDK version lacks them, so
    private names can be tried defensively with public fallbacks. ``lean=True`` marks a hook run
    on every request: where its target is a plain or coroutine function (not a generator) it is
    patched with a function of ours calling the same wrapper, not a ``wrapt.FunctionWrapper``,
    whose binding on each attribute read cost a plain OpenAI call 2 to 4 us more (see
    ``ai_tokentrace._instrument.lean_method``). ``direct``, given the original, returns the
    hook itself, written with the original's own signature so nothing is bound or packed per
    call, or None where the original is not the one it was written for (then ``wrapper``).
    """

    module: str
    attribute: str
    wrapper: Wrapper
    required: bool = False
    lean: bool = False
    direct: Callable[[Any], Any] | None = None


class Integration(Protocol):
    """What the generic instrumentation needs from one SDK adapter."""

    name: str  # "openai", "genai": the key users pass to instrument(integrations=[...])
    root_module: str  # the module whose import triggers patching: "openai", "google.genai"

    def patch_targets(self) -> Sequence[PatchTarget]:
        """Patch targets, resolved once the SDK is imported (may depend on its version)."""
        ...

    def capture_returned(self, obj: object) -> bool:
        """Emit one capture for an SDK response returned from a traced function.

        Return True when ``obj`` was such a response. Called only while this integration is
        not instrumented (instrumented calls are counted where they happen).
        """
        ...
