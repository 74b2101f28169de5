"""The exporter contract every service implements."""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from .._record import TokenUsageRecord

if TYPE_CHECKING:
    import random

__all__ = ["RetryPolicy", "TokenUsageService"]


class RetryPolicy(NamedTuple):
    """Exponential backoff with full jitter, bounded in attempts and in total delay."""

    max_attempts: int = 5
    initial_delay: float = 0.2
    max_delay: float = 5.0
    multiplier: float = 2.0
    max_total_delay: float = 20.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``attempt`` (1-based): uniform in [0, capped backoff]."""
        import random

        cap = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return (rng or random).uniform(0.0, cap)


class TokenUsageService(abc.ABC):
    """Where records go. Implement :meth:`aexport`; everything else has a sensible default.

    Services run on ai-tokentrace's background loop, never on the caller's thread. Whatever they
    raise is logged on the ``ai_tokentrace`` logger and counted in ``stats()``, never raised to
    the caller. A service that sets :attr:`retry` gets its retryable failures retried; one that
    sets :attr:`spill_path` gets what still fails (or overflows) appended there as JSONL.
    """

    retry: RetryPolicy | None = None
    spill_path: str | os.PathLike[str] | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    @abc.abstractmethod
    async def aexport(self, record: TokenUsageRecord) -> None:
        """Deliver one record."""

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        """Deliver a batch; override when the destination takes batches natively."""
        for record in records:
            await self.aexport(record)

    def export(self, record: TokenUsageRecord) -> None:
        """Fire and forget, from any thread: queued for the background loop, never blocks."""
        from .._pipeline import export_direct

        export_direct(self, record)

    async def aclose(self) -> None:
        """Release connections and files; called once by ``shutdown()``."""

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failure is transient (worth a retry when :attr:`retry` is set)."""
        return False

    def after_fork(self) -> None:
        """Drop clients bound to the parent's loop; called in a forked child."""
