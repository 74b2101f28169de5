"""The default service: one JSON object per record on a standard ``logging`` logger."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .._record import TokenUsageRecord
from ._base import TokenUsageService

__all__ = ["LoggingTokenUsageService"]


class LoggingTokenUsageService(TokenUsageService):
    """Logs each record as compact JSON (and as ``extra={"token_usage": {...}}`` for structured
    handlers). Nothing shows until logging is configured, e.g. ``logging.basicConfig(level="INFO")``.
    """

    def __init__(self, logger_name: str = "ai_tokentrace", level: int = logging.INFO) -> None:
        self.logger_name = logger_name
        self.level = level
        self._logger = logging.getLogger(logger_name)

    async def aexport(self, record: TokenUsageRecord) -> None:
        if self._logger.isEnabledFor(self.level):
            self._logger.log(self.level, record.to_json(), extra={"token_usage": record.to_dict()})

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        if not self._logger.isEnabledFor(self.level):
            return
        for record in records:
            self._logger.log(self.level, record.to_json(), extra={"token_usage": record.to_dict()})

    def __repr__(self) -> str:
        return f"LoggingTokenUsageService(logger_name={self.logger_name!r})"
