"""``ai-tokentrace report``: totals and cost from JSONL usage files, fast.

Lines written by ai-tokentrace itself (keys in :meth:`TokenUsageRecord.to_dict` order) take a fast
path: the few values a report needs are sliced out of the raw bytes and parsed in bulk per group
at the end. Any other line (another writer's key order, escaped strings) is parsed with ``json``;
a line that is not a JSON object is reported with its line number and skipped.
"""

from __future__ import annotations

import calendar
import csv
import html
import io
import json
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import IO, Any

__all__ = [
    "GROUPS",
    "Malformed",
    "Report",
    "Totals",
    "aggregate",
    "forecast",
    "generate_jsonl",
    "render_csv",
    "render_html",
    "render_json",
    "render_table",
]

# --by name -> record field
GROUPS: dict[str, str] = {
    "model": "model",
    "provider": "provider",
    "operation": "operation",
    "status": "status",
    "day": "timestamp",
    "month": "timestamp",
    "user": "user_id",
    "session": "session_id",
    "trace": "trace_name",
    "tag": "tags",
}
_NEEDLES = {
    "model": b'"model":',
    "provider": b'"provider":',
    "operation": b'"operation":',
    "status": b'"status":',
    "user": b'"user_id":',
    "session": b'"session_id":',
    "trace": b'"trace_name":',
    "tag": b'"tags":',
}
_NONE = "(none)"
_UTC = b'+00:00"'
# Records of usage reported apart from a call (a batch, an agent session's turn, a Live
# session): every process that counts one writes it with the same record_id, so a report reads
# each such id once. (Other record ids are unique: those lines are not looked up.)
_APART = (b'batches"', b'agents.turns"', b'live"')
APART_OPERATIONS = frozenset(name.decode()[:-1] for name in _APART)
_OPERATION = b'"operation":"'
_CHUNK = 8 << 20
# Everything in the token slice that is not a number or a comma: the key names, quotes, colons.
_KEY_CHARS = b'abcdefghijklmnopqrstuvwxyz_":'


@dataclass
class Totals:
    """Sums over a group of records; ``cost_usd`` covers the priced ones only."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0

    def add(self, other: Totals) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cost_usd += other.cost_usd
        self.unpriced += other.unpriced

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": round(self.cost_usd, 9),
            "unpriced": self.unpriced,
        }


@dataclass(frozen=True)
class Malformed:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class Report:
    by: tuple[str, ...]
    rows: list[tuple[tuple[str, ...], Totals]]
    total: Totals
    daily: dict[str, dict[str, float]]  # day -> model -> cost
    malformed: list[Malformed] = field(default_factory=list)
    files: tuple[str, ...] = ()

    @property
    def forecast(self) -> dict[str, Any] | None:
        return forecast(self.daily)


def _bound(value: str | None, *, upper: bool) -> bytes | None:
    """``--since``/``--until``: a date, a datetime (UTC unless it says), or ``7d`` / ``24h``."""
    if value is None:
        return None
    text = value.strip()
    m = re.fullmatch(r"(\d+)([dhm])", text)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        moment = datetime.now(timezone.utc) - timedelta(**{unit: int(m.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a date, datetime or age like 7d: {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        if upper and len(text) == 10:  # a bare date: include the whole day
            moment += timedelta(days=1)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S").encode()


class _Acc:
    """Per-file accumulation state: raw fast-path slices and exact slow-path totals."""

    def __init__(self, by: Sequence[str], since: bytes | None, until: bytes | None) -> None:
        self.by = tuple(by)
        self.since = since
        self.until = until
        # Extra group fields to slice out (model, day and month are always in the key).
        # (key bytes, its length, whether it comes after "model" in our writer's layout)
        self.needles = [
            (_NEEDLES[b], len(_NEEDLES[b]), b not in ("provider", "operation"))
            for b in self.by
            if b in _NEEDLES and b != "model"
        ]
        # key -> (token slices, cost slices), parsed in bulk by _fold
        self.fast: defaultdict[tuple[bytes, ...], tuple[list[bytes], list[bytes]]] = defaultdict(
            lambda: ([], [])
        )
        self.slow: dict[tuple[bytes, ...], Totals] = {}
        self.malformed: list[Malformed] = []
        self.seen: set[bytes] = set()  # record ids of usage reported apart, read already

    def feed_lines(self, lines: list[bytes], path: str, first_lineno: int) -> None:
        """The hot loop: one pass over lines (each ending in a newline), slicing out raw bytes.

        A line that does not fit the fast path (another writer, an escaped quote, no final
        newline at the end of the file, not JSON at all) is parsed in full by :meth:`_slow`.
        """
        fast = self.fast
        since, until = self.since or b"", self.until or b"\xff"
        filtering = self.since is not None or self.until is not None
        needles = self.needles
        bad: list[bytes] = []
        for line in lines:
            i = line.find(b'"timestamp":"')
            # Our writer's layout only (keys in to_dict order), and UTC timestamps:
            # "...:SS.ffffff+00:00" or "...:SS+00:00" (isoformat drops zero microseconds).
            if (
                i < 0
                or not line.startswith(b'{"record_id":')
                or not line.endswith(b"}\n")
                or not (line.startswith(_UTC, i + 39) or line.startswith(_UTC, i + 32))
            ):
                bad.append(line)
                continue
            if filtering and not since <= line[i + 13 : i + 32] < until:
                continue
            k = line.find(_OPERATION, i) + 13
            if k > 12 and line.startswith(_APART, k) and self._again(line[14 : i - 2]):
                continue
            day = line[i + 13 : i + 23]
            i = line.find(b'"model":', i) + 8
            if i < 8:
                bad.append(line)
                continue
            end = line.find(b'"', i + 1) + 1 if line[i] == 34 else line.find(b",", i)
            model = line[i:end]
            if needles:
                key = [day, model]
                for needle, skip, after_model in needles:
                    i = line.find(needle, end if after_model else 0)
                    if i < 0:
                        break
                    i += skip
                    c = line[i]
                    if c == 34:
                        j = line.find(b'"', i + 1) + 1
                    elif c == 91:
                        j = line.find(b"]", i) + 1
                    else:
                        j = line.find(b",", i)
                    raw = line[i:j]
                    if c != 110 and b"\\" in raw:  # not null, and escaped: parse in full
                        i = -1
                        break
                    key.append(raw)
                if i < 0 or b"\\" in model:
                    bad.append(line)
                    continue
                tkey = tuple(key)
            else:
                if b"\\" in model:
                    bad.append(line)
                    continue
                tkey = (day, model)
            i = line.find(b'"input_tokens":', end)
            j = line.find(b',"streamed":', i)
            k = line.find(b'"cost_usd":', j)
            e = line.find(b",", k)
            if i < 0 or j < 0 or k < 0 or e < 0:
                bad.append(line)
                continue
            slot = fast[tkey]
            slot[0].append(line[i:j])
            slot[1].append(line[k + 11 : e])
        self._fold()
        if bad:  # rare: find their line numbers, then parse them fully
            wanted = {id(line) for line in bad}
            for idx, line in enumerate(lines):
                if id(line) in wanted and line.strip():
                    self._slow(line, path, first_lineno + idx)

    def _again(self, record_id: bytes) -> bool:
        """Whether a record of usage reported apart was read already (another process's copy)."""
        if record_id in self.seen:
            return True
        self.seen.add(record_id)
        return False

    def _slow(self, line: bytes, path: str, lineno: int) -> None:
        try:
            data = json.loads(line)
        except ValueError as exc:
            self.malformed.append(Malformed(path, lineno, f"not valid JSON ({exc})"))
            return
        if not isinstance(data, dict):
            self.malformed.append(Malformed(path, lineno, "not a JSON object"))
            return
        try:
            moment = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            self.malformed.append(Malformed(path, lineno, "no valid timestamp"))
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ts = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S").encode()
        if (self.since is not None and ts < self.since) or (
            self.until is not None and ts >= self.until
        ):
            return
        if data.get("operation") in APART_OPERATIONS and self._again(
            str(data.get("record_id")).encode()
        ):
            return

        def raw(name: str) -> bytes:
            value = data.get(name)
            if name == "tags":
                value = list(value) if isinstance(value, (list, tuple)) else []
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

        model = raw("model")
        key = [ts[:10], model]
        for name in self.by:
            if name in _NEEDLES and name != "model":
                key.append(raw(GROUPS[name]))
        t = self.slow.setdefault(tuple(key), Totals())
        t.calls += 1
        t.input_tokens += _int(data.get("input_tokens"))
        t.output_tokens += _int(data.get("output_tokens"))
        t.total_tokens += _int(data.get("total_tokens"))
        t.cached_input_tokens += _int(data.get("cached_input_tokens"))
        t.reasoning_tokens += _int(data.get("reasoning_tokens"))
        cost = data.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost):
            t.cost_usd += float(cost)
        else:
            t.unpriced += 1

    def _fold(self) -> None:
        """Parse the fast path's raw slices in bulk (per chunk, to keep memory flat).

        Token slices are ``"input_tokens":1,"output_tokens":2,...,"reasoning_tokens":5``: with
        the key names deleted (one C pass) they are a JSON list of five numbers per record.
        """
        out = self.slow
        for key, (segments, costs) in self.fast.items():
            n = len(segments)
            t = Totals(calls=n)
            try:
                nums = json.loads(b"[" + b",".join(segments).translate(None, _KEY_CHARS) + b"]")
            except ValueError:
                nums = []
            if len(nums) == 5 * n:
                t.input_tokens = int(sum(nums[0::5]))
                t.output_tokens = int(sum(nums[1::5]))
                t.total_tokens = int(sum(nums[2::5]))
                t.cached_input_tokens = int(sum(nums[3::5]))
                t.reasoning_tokens = int(sum(nums[4::5]))
            else:  # odd values somewhere: parse each slice
                for seg in segments:
                    try:
                        d = json.loads(b"{" + seg + b"}")
                    except ValueError:
                        d = {}
                    t.input_tokens += _int(d.get("input_tokens"))
                    t.output_tokens += _int(d.get("output_tokens"))
                    t.total_tokens += _int(d.get("total_tokens"))
                    t.cached_input_tokens += _int(d.get("cached_input_tokens"))
                    t.reasoning_tokens += _int(d.get("reasoning_tokens"))
            try:
                values = json.loads(b"[" + b",".join(costs) + b"]")
            except ValueError:
                values = [_float(c) for c in costs]
            priced = [v for v in values if type(v) is float or type(v) is int]
            t.unpriced = n - len(priced)
            t.cost_usd = math.fsum(priced)
            if key in out:
                out[key].add(t)
            else:
                out[key] = t
        self.fast.clear()

    def settle(self) -> dict[tuple[bytes, ...], Totals]:
        self._fold()
        return self.slow


def _float(raw: bytes) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


class _Progress:
    """A dependency-free stderr progress bar, shown only on a terminal."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = max(total, 1)
        self.label = label
        self.enabled = self.stream.isatty()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        frac = min(done / self.total, 1.0)
        width = 30
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {frac * 100:5.1f}%")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.label) + 42) + "\r")
            self.stream.flush()


def aggregate(
    paths: Iterable[str | os.PathLike[str]],
    by: Sequence[str] = ("model",),
    since: str | None = None,
    until: str | None = None,
    progress: bool = True,
    progress_stream: IO[str] | None = None,
) -> Report:
    """Read JSONL usage files and sum them by the ``by`` groups (see :data:`GROUPS`)."""
    by = tuple(by)
    for name in by:
        if name not in GROUPS:
            raise ValueError(f"cannot group by {name!r}; choose from {', '.join(GROUPS)}")
    acc = _Acc(by, _bound(since, upper=False), _bound(until, upper=True))
    files = []
    for path in paths:
        name = os.fspath(path)
        files.append(name)
        size = os.path.getsize(name)
        bar = _Progress(size, os.path.basename(name), progress_stream)
        bar.enabled = bar.enabled and progress and size > (32 << 20)
        _read_file(name, acc, bar)
        bar.close()
    merged = acc.settle()
    return _build(by, merged, acc.malformed, tuple(files))


def _read_file(path: str, acc: _Acc, bar: _Progress) -> None:
    lineno = 1
    with open(path, "rb") as f:
        while True:
            lines = f.readlines(_CHUNK)  # whole lines, newline kept; C speed
            if not lines:
                break
            acc.feed_lines(lines, path, lineno)
            lineno += len(lines)
            bar.update(f.tell())


def _decode(raw: bytes) -> str | list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
    if value is None:
        return _NONE
    if isinstance(value, list):
        return [str(v) for v in value] or [_NONE]
    return str(value)


def _build(
    by: tuple[str, ...],
    merged: dict[tuple[bytes, ...], Totals],
    malformed: list[Malformed],
    files: tuple[str, ...],
) -> Report:
    groups: dict[tuple[str, ...], Totals] = {}
    daily: dict[str, dict[str, float]] = {}
    total = Totals()
    cache: dict[bytes, str | list[str]] = {}

    def dec(raw: bytes) -> str | list[str]:
        v = cache.get(raw)
        if v is None:
            v = cache[raw] = _decode(raw)
        return v

    for key, t in merged.items():
        day = key[0].decode()
        model = dec(key[1])
        assert isinstance(model, str)
        total.add(t)
        per_model = daily.setdefault(day, {})
        per_model[model] = per_model.get(model, 0.0) + t.cost_usd
        # Expand the group key; a record with several tags counts under each tag.
        combos: list[tuple[str, ...]] = [()]
        extra = iter(key[2:])
        for name in by:
            if name == "day":
                values: list[str] = [day]
            elif name == "model":
                values = [model]
            elif name == "month":
                values = [day[:7]]
            else:
                v = dec(next(extra))
                values = v if isinstance(v, list) else [v]
            combos = [(*c, v) for c in combos for v in values]
        for combo in combos:
            g = groups.get(combo)
            if g is None:
                g = groups[combo] = Totals()
            g.add(t)
    if any(b in ("day", "month") for b in by):
        rows = sorted(groups.items(), key=lambda kv: kv[0])
    else:
        rows = sorted(groups.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].calls, kv[0]))
    return Report(by, rows, total, dict(sorted(daily.items())), malformed, files)


def forecast(daily: dict[str, dict[str, float]], window: int = 7) -> dict[str, Any] | None:
    """The month's spend: month-to-date plus the recent daily rate for the days left.

    "Now" is the last day with data (so a report on an old file forecasts that file's month).
    The rate averages the last ``window`` calendar days (fewer when the data is younger).
    """
    if not daily:
        return None
    days = sorted(daily)
    last = date.fromisoformat(days[-1])
    first = date.fromisoformat(days[0])
    span = min(window, (last - first).days + 1)
    start = last - timedelta(days=span - 1)
    cost_by_day = {d: sum(models.values()) for d, models in daily.items()}
    recent = sum(c for d, c in cost_by_day.items() if start <= date.fromisoformat(d) <= last)
    rate = recent / span
    month = last.strftime("%Y-%m")
    mtd = sum(c for d, c in cost_by_day.items() if d.startswith(month))
    days_in_month = calendar.monthrange(last.year, last.month)[1]
    remaining = days_in_month - last.day
    return {
        "month": month,
        "as_of": last.isoformat(),
        "window_days": span,
        "daily_rate_usd": round(rate, 6),
        "month_to_date_usd": round(mtd, 6),
        "days_left": remaining,
        "forecast_usd": round(mtd + rate * remaining, 6),
    }


# -- rendering ----------------------------------------------------------------------------------

_COLUMNS = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost_usd",
    "unpriced",
)
_HEAD = ("calls", "input", "output", "cached", "reasoning", "total", "cost_usd", "unpriced")


def _cells(t: Totals) -> list[str]:
    d = t.to_dict()
    return [f"{d[c]:,}" if c != "cost_usd" else f"{d[c]:.6f}" for c in _COLUMNS]


def render_table(report: Report) -> str:
    header = [*report.by, *_HEAD]
    body = [[*key, *_cells(t)] for key, t in report.rows]
    footer = [*(["TOTAL"] + [""] * (len(report.by) - 1)), *_cells(report.total)]
    widths = [max(len(str(r[i])) for r in [header, *body, footer]) for i in range(len(header))]
    n = len(report.by)

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < n else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(header), rule, *(fmt(r) for r in body), rule, fmt(footer)]
    if report.total.unpriced:
        lines.append(
            f"{report.total.unpriced:,} calls have no known price: cost_usd is a lower bound."
        )
    fc = report.forecast
    if fc is not None:
        lines.append(
            f"Forecast for {fc['month']}: ${fc['forecast_usd']:.2f} "
            f"(${fc['month_to_date_usd']:.2f} so far + ${fc['daily_rate_usd']:.2f}/day "
            f"over the last {fc['window_days']} day(s) x {fc['days_left']} day(s) left)"
        )
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*report.by, *_COLUMNS])
    for key, t in report.rows:
        d = t.to_dict()
        w.writerow([*key, *(d[c] for c in _COLUMNS)])
    return out.getvalue()


def render_json(report: Report) -> str:
    payload = {
        "by": list(report.by),
        "groups": [
            {**dict(zip(report.by, key, strict=False)), **t.to_dict()} for key, t in report.rows
        ],
        "total": report.total.to_dict(),
        "forecast": report.forecast,
        "malformed_lines": len(report.malformed),
        "files": list(report.files),
    }
    return json.dumps(payload, indent=2) + "\n"


_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def _chart_svg(daily: dict[str, dict[str, float]]) -> str:
    """A stacked bar chart of daily spend by model, as inline SVG (no script, no network)."""
    days = list(daily)
    totals_by_model: dict[str, float] = {}
    for per_model in daily.values():
        for m, c in per_model.items():
            totals_by_model[m] = totals_by_model.get(m, 0.0) + c
    models = sorted(
        (m for m, c in totals_by_model.items() if c > 0), key=lambda m: -totals_by_model[m]
    )
    color = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}
    peak = max((sum(v.values()) for v in daily.values()), default=0.0) or 1.0
    width, height, left, bottom, top = 900, 360, 70, 40, 20
    plot_w, plot_h = width - left - 20, height - bottom - top
    step = plot_w / max(len(days), 1)
    bar_w = max(step * 0.8, 1.0)
    parts = [
        f'<svg id="daily-spend-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height + 20 * ((len(models) + 3) // 4)}" role="img" '
        f'aria-label="Daily spend by model">'
    ]
    for i in range(5):  # y grid and labels
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"${value:.2f}</text>"
        )
    for d_i, day in enumerate(days):
        x = left + d_i * step + (step - bar_w) / 2
        y = top + plot_h
        for m in models:
            cost = daily[day].get(m, 0.0)
            if cost <= 0:
                continue
            h = plot_h * cost / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{color[m]}" data-day="{day}" '
                f'data-model="{html.escape(m)}" data-cost="{cost:.6f}">'
                f"<title>{day} {html.escape(m)}: ${cost:.4f}</title></rect>"
            )
        if len(days) <= 31 or d_i % max(len(days) // 15, 1) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" font-size="10" '
                f'text-anchor="middle">{day[5:]}</text>'
            )
    for i, m in enumerate(models):  # legend
        lx = left + (i % 4) * 210
        ly = height + 4 + (i // 4) * 20
        parts.append(
            f'<rect class="legend" x="{lx}" y="{ly}" width="12" height="12" fill="{color[m]}"/>'
            f'<text x="{lx + 18}" y="{ly + 11}" font-size="12">{html.escape(m)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: Report) -> str:
    """One self-contained page: the chart, the forecast and the summary table."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (*report.by, *_HEAD))
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(k))}</td>" for k in key)
        + "".join(f'<td class="n">{c}</td>' for c in _cells(t))
        + "</tr>"
        for key, t in report.rows
    )
    total = (
        "<tr class='total'>"
        + "".join(f"<td>{'TOTAL' if i == 0 else ''}</td>" for i in range(len(report.by)))
        + "".join(f'<td class="n">{c}</td>' for c in _cells(report.total))
        + "</tr>"
    )
    fc = report.forecast
    forecast_html = (
        f"<p id='forecast'>Forecast for {fc['month']}: <b>${fc['forecast_usd']:.2f}</b> "
        f"(${fc['month_to_date_usd']:.2f} so far, ${fc['daily_rate_usd']:.2f}/day over the last "
        f"{fc['window_days']} day(s))</p>"
        if fc
        else ""
    )
    unpriced = (
        f"<p>{report.total.unpriced:,} calls have no known price: costs are a lower bound.</p>"
        if report.total.unpriced
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ai-tokentrace usage report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin-top:1em}}
td,th{{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}
tr.total td{{font-weight:bold;border-top:2px solid #999}}
</style></head><body>
<h1>Token usage and cost</h1>
<p>{report.total.calls:,} calls, ${report.total.cost_usd:.2f} in total.</p>
{forecast_html}{unpriced}
<h2>Daily spend by model (USD)</h2>
{_chart_svg(report.daily)}
<h2>By {html.escape(", ".join(report.by))}</h2>
<table><thead><tr>{head}</tr></thead><tbody>{rows}{total}</tbody></table>
</body></html>
"""


# -- test and benchmark data --------------------------------------------------------------------

_MODELS = (
    ("openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "responses", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "chat.completions", "o3", "o3-2025-04-16"),
    ("gcp.gemini", "generate_content", "gemini-2.5-flash", "gemini-2.5-flash"),
    ("gcp.vertex_ai", "generate_content", "gemini-2.5-pro", "gemini-2.5-pro"),
    ("azure.ai.openai", "chat.completions", "prod-deploy", None),
)


def generate_jsonl(
    path: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 7,
    start: datetime = datetime(2026, 10, 1, tzinfo=timezone.utc),
    days: int = 30,
    price: Callable[[Any], tuple[float | None, str | None]] | None = None,
) -> Totals:
    """Write ``n`` realistic records (as the JSONL service would) and return their true totals.

    Records are built as :class:`TokenUsageRecord` and serialised with ``to_json``; costs come
    from ``price`` (default: a fixed fake price per model, the last model unpriced).
    """
    import random

    from ._record import TokenUsageRecord

    rnd = random.Random(seed)
    total = Totals()
    span = days * 86400
    users = [f"u{i}" for i in range(20)] + [None]
    traces = ["summarize", "chat", "classify", None]
    fake = {m[2]: 0.5 + i for i, m in enumerate(_MODELS[:-1])}
    base = TokenUsageRecord(
        record_id="", timestamp=start, provider="openai", operation="chat.completions", model=None
    )
    with open(path, "w", encoding="utf-8") as f:
        buf: list[str] = []
        for k in range(n):
            provider, op, model, response_model = _MODELS[rnd.randrange(len(_MODELS))]
            inp = rnd.randrange(1, 20000)
            cached = rnd.randrange(0, inp) if rnd.random() < 0.3 else 0
            out = rnd.randrange(1, 4000)
            reasoning = rnd.randrange(0, out) if model in ("o3", "gemini-2.5-pro") else 0
            ts = start + timedelta(seconds=span * k / n)
            tags = ("batch",) if rnd.random() < 0.2 else ()
            rec = base.replace(
                record_id=f"{seed:08x}-0000-0000-0000-{k:012x}",
                timestamp=ts,
                provider=provider,
                operation=op,
                model=model,
                response_model=response_model,
                input_tokens=inp,
                output_tokens=out,
                total_tokens=inp + out,
                cached_input_tokens=cached,
                reasoning_tokens=reasoning,
                latency_ms=round(rnd.random() * 2000, 3),
                trace_name=traces[k % len(traces)],
                user_id=users[k % len(users)],
                tags=tags,
            )
            if price is not None:
                cost, source = price(rec)
            elif model in fake:
                cost = round((inp + out) * fake[model] / 1e6, 9)
                source = "test"
            else:
                cost, source = None, None
            rec = rec.replace(cost_usd=cost, price_source=source)
            buf.append(rec.to_json())
            total.add(
                Totals(
                    1,
                    inp,
                    out,
                    inp + out,
                    cached,
                    reasoning,
                    cost or 0.0,
                    int(cost is None),
                )
            )
            if len(buf) >= 10000:
                f.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            f.write("\n".join(buf) + "\n")
    return total
