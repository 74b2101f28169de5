"""ai-tokentrace: exact token counts and cost for every OpenAI and Gemini call.

``import ai_tokentrace`` imports no cloud or LLM SDK and touches no network; the export
pipeline (and asyncio with it) loads on the first record.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._record import TokenUsage, TokenUsageRecord
from ._scope import Scope, carry_scope, current_scope, set_default_labels, trace_tokens
from .services._base import TokenUsageService
from .services._logging import LoggingTokenUsageService

if TYPE_CHECKING:
    from ._budget import Budget, BudgetExceededError
    from .services._jsonl import JsonlFileTokenUsageService

__all__ = [
    "Budget",
    "BudgetExceededError",
    "JsonlFileTokenUsageService",
    "LoggingTokenUsageService",
    "Scope",
    "TokenUsage",
    "TokenUsageRecord",
    "TokenUsageService",
    "__version__",
    "carry_scope",
    "configure",
    "current_scope",
    "flush",
    "instrument",
    "set_default_labels",
    "shutdown",
    "stats",
    "trace_tokens",
    "uninstrument",
]

__version__ = "0.1.0"

ServiceArg = TokenUsageService | Sequence[TokenUsageService] | None


def __getattr__(name: str) -> Any:
    # Lazy so that `import ai_tokentrace` stays cheap (aiofiles, calendar... load on first use).
    if name == "JsonlFileTokenUsageService":
        from .services._jsonl import JsonlFileTokenUsageService

        return JsonlFileTokenUsageService
    if name in ("Budget", "BudgetExceededError"):
        from . import _budget

        return getattr(_budget, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure(service: ServiceArg = None, **settings: Any) -> None:
    """Choose where records go (and queue/batch settings) without patching any SDK.

    Settings: ``max_queue_size``, ``batch_size``, ``flush_interval``, ``export_timeout``,
    ``shutdown_timeout``, ``inject_stream_usage``; each also from ``AI_TOKENTRACE_<NAME>``.
    Like ``instrument()``, it starts loading the price table on a thread of its own: left to
    the first record, the load held the export loop for seconds under busy threads.
    """
    from . import _pipeline, _pricing

    _pricing.warm_in_background()
    _pipeline.configure(service, **settings)


def instrument(
    service: ServiceArg = None,
    *,
    integrations: Iterable[str] | None = None,
    budget: Budget | None = None,
    **settings: Any,
) -> None:
    """Count every OpenAI and google-genai call from now on. Safe to call twice.

    Works before or after the SDKs are imported and patches only those installed. With no
    ``service``, records go where ``configure()`` or the environment says (default: logging).
    """
    from . import _instrument, _pipeline, _pricing

    _pricing.warm_in_background()
    if service is not None or settings:
        _pipeline.configure(service, **settings)
    else:
        _pipeline.current()
    if budget is not None:
        from ._budget import install_budget

        install_budget(budget)
    _instrument.instrument_sdks(integrations)


def uninstrument() -> None:
    """Undo every patch; calls are no longer recorded. Records already made are still exported."""
    from . import _instrument

    _instrument.uninstrument_sdks()
    budgets = sys.modules.get("ai_tokentrace._budget")
    if budgets is not None:
        budgets.install_budget(None)


def flush(timeout: float = 5.0) -> bool:
    """Wait until every record so far reached every service; False on timeout or loss."""
    from . import _pipeline

    return _pipeline.flush(timeout)


def shutdown(timeout: float = 5.0) -> None:
    """Flush and close the services. Also runs at interpreter exit; idempotent."""
    from . import _pipeline

    _pipeline.shutdown(timeout)


def stats() -> dict[str, Any]:
    """Counters: recorded, exported, dropped, failed, spilled, retried, queued (and per service)."""
    from . import _pipeline

    return _pipeline.stats()
