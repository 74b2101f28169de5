"""Services chosen by the environment, for zero-code use.

``AI_TOKENTRACE_SERVICE``: comma-separated names among ``logging`` (default), ``jsonl``,
``firestore``, ``pubsub`` and ``none``. ``AI_TOKENTRACE_JSONL_PATH`` alone also selects
``jsonl``. Cloud services read ``AI_TOKENTRACE_FIRESTORE_COLLECTION`` and
``AI_TOKENTRACE_PUBSUB_TOPIC`` (project from ``GOOGLE_CLOUD_PROJECT``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .._internal import logger
from ._base import TokenUsageService

__all__ = ["services_from_env"]

DEFAULT_JSONL_PATH = "ai-tokentrace-usage.jsonl"


def services_from_env(env: Mapping[str, str] | None = None) -> list[TokenUsageService]:
    from ._jsonl import JsonlFileTokenUsageService
    from ._logging import LoggingTokenUsageService

    env = os.environ if env is None else env
    jsonl_path = env.get("AI_TOKENTRACE_JSONL_PATH", "").strip()
    raw = env.get("AI_TOKENTRACE_SERVICE", "").strip().lower()
    names = [n.strip() for n in raw.split(",") if n.strip()] or (
        ["jsonl"] if jsonl_path else ["logging"]
    )
    services: list[TokenUsageService] = []
    for name in names:
        try:
            if name == "none":
                continue
            if name == "logging":
                services.append(LoggingTokenUsageService())
            elif name == "jsonl":
                services.append(JsonlFileTokenUsageService(jsonl_path or DEFAULT_JSONL_PATH))
            elif name == "firestore":
                from ._firestore import FirestoreTokenUsageService

                services.append(
                    FirestoreTokenUsageService(
                        collection=env.get("AI_TOKENTRACE_FIRESTORE_COLLECTION", "token_usage")
                    )
                )
            elif name == "pubsub":
                from ._pubsub import PubSubTokenUsageService

                topic = env.get("AI_TOKENTRACE_PUBSUB_TOPIC", "").strip()
                if not topic:
                    raise ValueError("AI_TOKENTRACE_PUBSUB_TOPIC is not set")
                services.append(PubSubTokenUsageService(topic))
            else:
                raise ValueError(f"unknown service {name!r}")
        except Exception as exc:
            logger.warning("AI_TOKENTRACE_SERVICE: cannot use %r (%s); skipped", name, exc)
    if not services and "none" not in names:
        logger.warning("AI_TOKENTRACE_SERVICE gave no usable service; using logging")
        services.append(LoggingTokenUsageService())
    return services
