"""Append records to a JSONL file with aiofiles: whole lines, one write per batch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiofiles

from .._record import TokenUsageRecord
from ._base import TokenUsageService

__all__ = ["JsonlFileTokenUsageService"]


def _private_opener(path: str, flags: int) -> int:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, flags, 0o600)


class JsonlFileTokenUsageService(TokenUsageService):
    """One JSON object per line. The file is opened in append mode with no buffering, so each
    batch is a single ``write`` of whole lines: several processes may append to one file without
    interleaving or tearing a line. A new file is created with mode 0600 (usage is private).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._file: Any = None

    async def _handle(self) -> Any:
        if self._file is None:
            self._file = await aiofiles.open(self.path, "ab", buffering=0, opener=_private_opener)
        return self._file

    async def aexport(self, record: TokenUsageRecord) -> None:
        await self.aexport_batch((record,))

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        if not records:
            return
        data = "".join([r.to_json() + "\n" for r in records]).encode()
        f = await self._handle()
        view = memoryview(data)
        written = 0
        while written < len(data):
            n = await f.write(view[written:])
            written += n if n else 0
            if not n:
                raise OSError(f"short write to {self.path}")

    async def aclose(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            await f.close()

    def after_fork(self) -> None:
        # The handle's executor belonged to the parent's loop; the child reopens (O_APPEND).
        self._file = None

    def __repr__(self) -> str:
        return f"JsonlFileTokenUsageService({str(self.path)!r})"
