"""``instrument()`` / ``uninstrument()``: apply and undo the adapters' patch targets.

Patches are deferred with wrapt post-import hooks, so ``instrument()`` works before or after the
SDK is imported; both calls are idempotent and thread-safe.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import types
from collections.abc import Iterable, Sequence
from typing import Any

import wrapt

from ._internal import logger
from .integrations import REGISTRY, PatchTarget, Wrapper, load, sdk_installed

__all__ = [
    "alean_method",
    "instrument_sdks",
    "instrumented",
    "is_instrumented",
    "lean_method",
    "patched",
    "uninstrument_sdks",
]

_lock = threading.RLock()
_wanted: dict[str, int] = {}  # integration name -> generation asked for (0: not wanted)
_generation = 0
_applied: dict[str, list[tuple[Any, str, Any]]] = {}  # name -> [(parent, attribute, original)]
_lazy: set[tuple[str, str, str]] = set()  # (name, module, attribute) waiting for its import
_hooked: set[str] = set()  # names whose post-import hook is registered (wrapt cannot remove one)


def is_instrumented(name: str) -> bool:
    return name in _applied


def instrumented() -> tuple[str, ...]:
    return tuple(sorted(_applied))


def instrument_sdks(names: Iterable[str] | None = None) -> list[str]:
    """Ask for ``names`` (default: every installed SDK). Returns the names now wanted."""
    global _generation
    explicit = names is not None
    chosen = list(REGISTRY) if names is None else list(names)
    for name in chosen:
        if name not in REGISTRY:
            raise ValueError(f"unknown integration {name!r}; known: {', '.join(REGISTRY)}")
    with _lock:
        _generation += 1
        wanted = []
        for name in chosen:
            if not sdk_installed(name):
                if explicit:
                    raise ImportError(
                        f"ai-tokentrace: the {name!r} integration needs its SDK: "
                        f"pip install 'ai-tokentrace[{name}]'"
                    )
                continue
            wanted.append(name)
            if _wanted.get(name):
                continue  # already wanted: no double patching
            _wanted[name] = _generation
            if name not in _hooked:
                _hooked.add(name)
                wrapt.register_post_import_hook(_make_hook(name), REGISTRY[name][1])
            else:
                # Hook already fired once (SDK imported): apply now if it is loaded.
                import sys

                if REGISTRY[name][1] in sys.modules:
                    _apply(name)
        return wanted


def _make_hook(name: str) -> Any:
    def hook(_module: object) -> None:
        with _lock:
            if _wanted.get(name):
                _apply(name)

    return hook


def lean_method(original: types.FunctionType, wrapper: Wrapper) -> Any:
    """A method hook without wrapt's binding: the same ``wrapper(wrapped, instance, args,
    kwargs)`` call, from a plain function that carries ``original``'s name, docstring,
    signature and ``__wrapped__``.

    A ``wrapt.FunctionWrapper`` on a class makes a ``BoundFunctionWrapper`` on every attribute
    read (its arguments parsed by keyword) before the call reaches the wrapper, and the SDK
    reads ``self.request`` once per request. Measured call by call against the SDK's own
    method, interleaved in one process (three processes): a pass-through FunctionWrapper
    added 1.5 to 2 us a plain OpenAI call more than a plain pass-through function, and our
    hook through this function cost 2.5 to 4 us less than through the FunctionWrapper (a
    stream: about 7 us less).
    """
    bind = original.__get__

    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        return wrapper(bind(self), self, args, kwargs)

    return functools.update_wrapper(hook, original)


def alean_method(original: types.FunctionType, wrapper: Wrapper) -> Any:
    """:func:`lean_method` for a coroutine function: an ``async def`` awaiting the wrapper, so
    the hook is still a coroutine function to whoever inspects it."""
    bind = original.__get__

    async def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await wrapper(bind(self), self, args, kwargs)

    return functools.update_wrapper(hook, original)


def _parameters(function: Any) -> tuple[tuple[str, Any, Any], ...] | None:
    """``(name, kind, default)`` of each of ``function``'s own parameters (not its
    ``__wrapped__``'s), or None when they cannot be read."""
    try:
        signature = inspect.signature(function, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    return tuple((p.name, p.kind, p.default) for p in signature.parameters.values())


def _patch_for(target: PatchTarget, original: Any) -> Any:
    """What replaces ``original``: the target's ``direct`` hook where its parameters are the
    original's (one written for another SDK version's must not replace it), else a :func:`lean_method` (or :func:`alean_method`) where the target asks for one and the
    original is a plain or coroutine function (a generator one would stop looking like one to
    whoever inspects it), else wrapt's FunctionWrapper."""
    if target.direct is not None and type(original) is types.FunctionType:
        hook = target.direct(original)
        expected = _parameters(original)
        if hook is not None and expected is not None and _parameters(hook) == expected:
            return functools.update_wrapper(hook, original)
    if (
        target.lean
        and type(original) is types.FunctionType
        and not inspect.isgeneratorfunction(original)
        and not inspect.isasyncgenfunction(original)
    ):
        if inspect.iscoroutinefunction(original):
            return alean_method(original, target.wrapper)
        return lean_method(original, target.wrapper)
    return wrapt.FunctionWrapper(original, target.wrapper, enabled=target.enabled)


def patched() -> list[tuple[Any, str, Any]]:
    """``(parent, attribute, original)`` of every patch applied now (the benchmarks build
    clients that skip them from this)."""
    with _lock:
        return [entry for done in _applied.values() for entry in done]


def _apply(name: str) -> None:
    if name in _applied:
        return
    try:
        integration = load(name)
        targets = list(integration.patch_targets())
    except Exception:
        logger.exception("ai-tokentrace: could not load the %s integration; not instrumented", name)
        return
    done: list[tuple[Any, str, Any]] = []
    _applied[name] = done
    for t in targets:
        if t.lazy and t.module not in sys.modules:
            _patch_on_import(name, t)
            continue
        _patch_one(name, t, done)
    logger.debug("ai-tokentrace: %s instrumented (%d patches)", name, len(done))


def _patch_on_import(name: str, target: PatchTarget) -> None:
    """Patch ``target`` once its module is imported, if ``name`` is instrumented then (one
    import hook a target, however often instrument() runs before the import)."""
    key = (name, target.module, target.attribute)
    if key in _lazy:
        return
    _lazy.add(key)

    def hook(_module: object) -> None:
        with _lock:
            _lazy.discard(key)
            done = _applied.get(name)  # None: undone since (uninstrument drops it)
            if done is not None:
                _patch_one(name, target, done)

    wrapt.register_post_import_hook(hook, target.module)


def _patch_one(name: str, t: PatchTarget, done: list[tuple[Any, str, Any]]) -> None:
    try:
        parent, attribute, original = wrapt.resolve_path(t.module, t.attribute)
    except (ImportError, AttributeError) as exc:
        if t.required:
            logger.warning(
                "ai-tokentrace: %s: cannot patch %s.%s (%s)", name, t.module, t.attribute, exc
            )
        else:
            logger.debug("ai-tokentrace: %s: no %s.%s here; skipped", name, t.module, t.attribute)
        return
    wrapt.apply_patch(parent, attribute, _patch_for(t, original))
    done.append((parent, attribute, original))


def uninstrument_sdks(names: Sequence[str] | None = None) -> None:
    with _lock:
        for name in list(names if names is not None else REGISTRY):
            _wanted[name] = 0
            for parent, attribute, original in reversed(_applied.pop(name, [])):
                setattr(parent, attribute, original)
