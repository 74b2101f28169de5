"""SDK adapters. Nothing here imports an SDK; adapters are imported when first needed."""

from __future__ import annotations

import importlib
import importlib.util
from typing import cast

from ._base import Integration, PatchTarget, Wrapper

__all__ = [
    "REGISTRY",
    "Integration",
    "PatchTarget",
    "Wrapper",
    "capture_returned",
    "load",
]

# name -> (adapter module, SDK root module)
REGISTRY: dict[str, tuple[str, str]] = {
    "openai": ("ai_tokentrace.integrations.openai", "openai"),
    "genai": ("ai_tokentrace.integrations.genai", "google.genai"),
}

# Type-module prefixes of SDK response objects -> integration name (decorator-only mode).
_RESPONSE_MODULES: tuple[tuple[str, str], ...] = (
    ("openai.", "openai"),
    ("google.genai.", "genai"),
)


def load(name: str) -> Integration:
    module = importlib.import_module(REGISTRY[name][0])
    return cast(Integration, module.INTEGRATION)


def sdk_installed(name: str) -> bool:
    root = REGISTRY[name][1]
    try:
        return importlib.util.find_spec(root) is not None
    except (ImportError, ValueError):
        return False


def capture_returned(obj: object) -> bool:
    """Decorator-only mode: count a returned SDK response unless its SDK is instrumented."""
    if obj is None:
        return False
    module = type(obj).__module__
    for prefix, name in _RESPONSE_MODULES:
        if module.startswith(prefix):
            from .._instrument import is_instrumented

            if is_instrumented(name):
                return False  # already counted where the call happened
            return load(name).capture_returned(obj)
    return False
