"""The small contract every SDK adapter implements, and the helpers they share.

An adapter module (``integrations/openai.py``, ``integrations/genai.py``) defines an
:class:`Integration`: the module it waits for, its patch targets as data, and a pure
``capture_returned`` for decorator-only mode. Everything generic (deferring patches until the
SDK is imported, idempotence, undoing) lives in ``ai_tokentrace._instrument``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "Integration",
    "PatchTarget",
    "Wrapper",
    "bounded_put",
    "call_hook",
    "field_of",
    "first_time",
    "run_time",
    "unix_seconds",
]

_V = TypeVar("_V")
MAX_KEPT = 10_000  # ids an adapter keeps (pending, counted): the oldest go first

# wrapt's wrapper signature: (wrapped, instance, args, kwargs) -> result.
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class PatchTarget:
    """One attribute to wrap: ``module`` + dotted ``attribute`` (e.g. ``"Completions.create"``).

    ``required=False`` targets are skipped with a debug log when an SDK version lacks them, so
    private names can be tried defensively with public fallbacks. ``lean=True`` marks a hook run
    on every request: where its target is a plain or coroutine function (not a generator) it is
    patched with a function of ours calling the same wrapper, not a ``wrapt.FunctionWrapper``,
    whose binding on each attribute read cost a plain OpenAI call 2 to 4 us more (see
    ``ai_tokentrace._instrument.lean_method``). ``direct``, given the original, returns the
    hook itself, written with the SDK's own parameters so nothing is bound or packed per call;
    it is used only where the original's parameters (names, kinds, defaults) are the hook's,
    else ``wrapper`` is (an SDK version whose method takes other parameters). ``enabled``, for
    a target kept on wrapt's wrapper, is asked before each call (wrapt's own switch, called
    from C): while it gives a false value the original runs as it is, with no frame of ours.
    A C callable (a ``ContextVar``'s ``get``) makes that check cost no Python frame either.
    ``lazy=True``: a target in a module the SDK imports only when that feature is first used
    (google-genai's Interactions API: 365 modules, half a second) is patched when that module
    is imported, not imported to be patched.
    """

    module: str
    attribute: str
    wrapper: Wrapper
    required: bool = False
    lean: bool = False
    direct: Callable[[Any], Any] | None = None
    enabled: Callable[[], Any] | None = None  # any value: wrapt asks only for its truth
    lazy: bool = False


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


def field_of(obj: Any, name: str) -> Any:
    """Attribute or key ``name`` of an SDK object or its JSON (None when absent, or when
    ``obj`` is None): the SDKs build their models without validation, so any may be a dict."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def bounded_put(mapping: dict[str, _V], key: str, value: _V) -> None:
    """``mapping[key] = value``, forgetting the oldest key once :data:`MAX_KEPT` are kept."""
    if len(mapping) >= MAX_KEPT:
        with contextlib.suppress(StopIteration, RuntimeError):  # emptied by another thread
            mapping.pop(next(iter(mapping)), None)
    mapping[key] = value


def first_time(seen: dict[str, object], key: str) -> bool:
    """True for the first caller to name ``key`` (``setdefault`` is atomic: of threads racing
    on one key, one wins); usage reported apart from its call is counted once by its id."""
    if key in seen:
        return False
    mark = object()
    if len(seen) >= MAX_KEPT:
        with contextlib.suppress(StopIteration, RuntimeError):
            seen.pop(next(iter(seen)), None)
    return seen.setdefault(key, mark) is mark


def unix_seconds(value: Any) -> float | None:
    """A Unix time field (seconds) as a float; None when missing or odd."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def run_time(begun: float | None, ended: float | None) -> float | None:
    """Seconds from ``begun`` to ``ended`` (a batch's own times); None unless both are known
    and in order."""
    if begun is None or ended is None or ended < begun:
        return None
    return ended - begun


def call_hook(
    begin: Callable[[Any, dict[str, Any]], Any],
    finish: Callable[[Any, Any], None],
    is_async: bool,
) -> Wrapper:
    """A wrapt hook for a method that makes one call and returns what it made: ``begin(instance,
    kwargs)`` before it (a budget's refusal in it reaches the caller), then ``finish(begun,
    result)``, which never raises. Outside ``suppressed()`` contexts only (our own traffic)."""
    from .._internal import _suppressed

    if is_async:

        async def ahook(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            if _suppressed.get():
                return await wrapped(*args, **kwargs)
            begun = begin(instance, kwargs)
            result = await wrapped(*args, **kwargs)
            finish(begun, result)
            return result

        return ahook

    def hook(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _suppressed.get():
            return wrapped(*args, **kwargs)
        begun = begin(instance, kwargs)
        result = wrapped(*args, **kwargs)
        finish(begun, result)
        return result

    return hook
