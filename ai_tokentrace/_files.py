"""Append-only JSONL files: private (0600) when new, whole lines in one write."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["append_lines", "open_append_fd"]


def open_append_fd(path: str | os.PathLike[str]) -> int:
    """Open for appending, creating parent folders, and the file itself with mode 0600."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    return os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


def append_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Append lines with one ``write`` call (O_APPEND keeps concurrent writers from tearing)."""
    data = "".join(line + "\n" for line in lines).encode()
    if not data:
        return 0
    fd = open_append_fd(path)
    try:
        return _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    written = 0
    while written < len(data):
        written += os.write(fd, view[written:])
    return written
