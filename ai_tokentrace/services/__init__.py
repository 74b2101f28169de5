"""Where records go. The cloud services load their SDKs only when constructed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import RetryPolicy, TokenUsageService
from ._logging import LoggingTokenUsageService

if TYPE_CHECKING:
    from ._firestore import FirestoreTokenUsageService
    from ._jsonl import JsonlFileTokenUsageService
    from ._pubsub import PubSubTokenUsageService

__all__ = [
    "FirestoreTokenUsageService",
    "JsonlFileTokenUsageService",
    "LoggingTokenUsageService",
    "PubSubTokenUsageService",
    "RetryPolicy",
    "TokenUsageService",
]

_LAZY = {
    "JsonlFileTokenUsageService": "._jsonl",
    "FirestoreTokenUsageService": "._firestore",
    "PubSubTokenUsageService": "._pubsub",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
