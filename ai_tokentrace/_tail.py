"""``ai-tokentrace tail FILE``: follow a JSONL usage file and show running totals live.

On a terminal the view is redrawn in place (totals by model, then the grand total); otherwise
one line is printed per record with the running total, which suits logs and pipes. The file may
grow, be truncated or be replaced (log rotation): tail notices and starts over on the new file.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from ._report import APART_OPERATIONS, Malformed, Totals

__all__ = ["Tail"]


class Tail:
    """Reads new lines of ``path`` as they arrive and keeps totals by ``by`` (a record field)."""

    def __init__(
        self,
        path: str,
        out: IO[str],
        *,
        by: str = "model",
        from_start: bool = True,
        live: bool | None = None,
        on_update: Callable[[Tail], Any] | None = None,
    ) -> None:
        self.path = path
        self.out = out
        self.by = by
        self.from_start = from_start
        self.live = out.isatty() if live is None else live
        self.on_update = on_update
        self.groups: dict[str, Totals] = {}
        self.total = Totals()
        self.malformed: list[Malformed] = []
        self.lineno = 0
        self._pos = 0
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self._seen: set[object] = set()  # record ids of usage reported apart, read already

    def _reset(self) -> None:
        self._pos = 0
        self._partial = b""
        self.lineno = 0

    def poll(self) -> int:
        """Read whatever was appended since the last poll; returns how many records were added."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0
        ident = (st.st_dev, st.st_ino)
        if self._inode is None:
            self._inode = ident
            if not self.from_start:
                self._pos = st.st_size
        elif ident != self._inode or st.st_size < self._pos:  # rotated or truncated
            self._inode = ident
            self._reset()
        if st.st_size == self._pos:
            return 0
        with open(self.path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        self._pos += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return 0
        self._partial = data[cut + 1 :]
        added = 0
        for line in data[:cut].split(b"\n"):
            self.lineno += 1
            if line.strip() and self._add(line):
                added += 1
        if added:
            self._render()
        if self.on_update is not None:
            self.on_update(self)
        return added

    def _add(self, line: bytes) -> bool:
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            bad = Malformed(self.path, self.lineno, f"not a usage record ({exc})")
            self.malformed.append(bad)
            if not self.live:
                self.out.write(f"ai-tokentrace: {bad}\n")
            return False
        if rec.get("operation") in APART_OPERATIONS:  # another process may have written it too
            rid = rec.get("record_id")
            if isinstance(rid, str):
                if rid in self._seen:
                    return False
                self._seen.add(rid)
        raw_cost = rec.get("cost_usd")
        priced = isinstance(raw_cost, (int, float)) and not isinstance(raw_cost, bool)
        cost = float(raw_cost) if isinstance(raw_cost, (int, float)) and priced else 0.0
        t = Totals(
            1,
            _int(rec.get("input_tokens")),
            _int(rec.get("output_tokens")),
            _int(rec.get("total_tokens")),
            _int(rec.get("cached_input_tokens")),
            _int(rec.get("reasoning_tokens")),
            cost,
            0 if priced else 1,
        )
        value = rec.get(self.by)
        if isinstance(value, list):
            value = ",".join(map(str, value))
        key = "(none)" if value in (None, "") else str(value)
        self.groups.setdefault(key, Totals()).add(t)
        self.total.add(t)
        if not self.live:
            stamp = str(rec.get("timestamp", ""))[11:19]
            price = f"${t.cost_usd:.6f}" if priced else "unpriced"
            self.out.write(
                f"{stamp} {key} in={t.input_tokens} out={t.output_tokens} {price} | "
                f"total calls={self.total.calls} tokens={self.total.total_tokens} "
                f"cost=${self.total.cost_usd:.6f}\n"
            )
        return True

    def _render(self) -> None:
        if not self.live:
            self.out.flush()
            return
        rows = sorted(self.groups.items(), key=lambda kv: -kv[1].cost_usd)
        width = max([len(self.by), 5, *(len(k) for k, _ in rows)])
        lines = [
            f"ai-tokentrace tail {self.path}  ({datetime.now():%H:%M:%S}, Ctrl-C to stop)",
            "",
            f"{self.by:<{width}}  {'calls':>8}  {'input':>12}  {'output':>12}  {'cost_usd':>12}",
        ]
        for key, t in rows:
            lines.append(
                f"{key:<{width}}  {t.calls:>8,}  {t.input_tokens:>12,}  {t.output_tokens:>12,}  "
                f"{t.cost_usd:>12.6f}"
            )
        t = self.total
        lines.append(
            f"{'TOTAL':<{width}}  {t.calls:>8,}  {t.input_tokens:>12,}  {t.output_tokens:>12,}  "
            f"{t.cost_usd:>12.6f}"
        )
        if t.unpriced:
            lines.append(f"{t.unpriced:,} unpriced calls (cost is a lower bound)")
        if self.malformed:
            lines.append(f"{len(self.malformed):,} malformed lines skipped")
        self.out.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
        self.out.flush()

    def follow(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Poll until ``stop`` is set (waiting on the event, so a stop is immediate)."""
        self._render()
        while not stop.is_set():
            self.poll()
            stop.wait(interval)


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0
