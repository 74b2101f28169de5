"""``report``: exact totals over a generated file, grouping, filters, malformed lines, HTML."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ai_tokentrace import _report
from ai_tokentrace._record import TokenUsageRecord
from ai_tokentrace._report import Totals, aggregate, forecast, generate_jsonl

N = 100_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Totals]:
    path = tmp_path_factory.mktemp("report") / "usage.jsonl"
    return path, generate_jsonl(path, N)


def test_totals_over_100k_records_are_exact(big: tuple[Path, Totals]) -> None:
    """Every token bucket and the call count match the generated truth exactly; cost to 1e-9."""
    path, truth = big
    report = aggregate([path])
    got = report.total
    assert (got.calls, got.input_tokens, got.output_tokens, got.total_tokens) == (
        truth.calls,
        truth.input_tokens,
        truth.output_tokens,
        truth.total_tokens,
    )
    assert got.cached_input_tokens == truth.cached_input_tokens
    assert got.reasoning_tokens == truth.reasoning_tokens
    assert got.unpriced == truth.unpriced
    assert got.cost_usd == pytest.approx(truth.cost_usd, rel=1e-12)
    assert report.malformed == []


@pytest.mark.parametrize("by", ["model", "provider", "day", "user", "trace", "operation"])
def test_groups_add_up_to_the_total(big: tuple[Path, Totals], by: str) -> None:
    """Whatever the grouping, the groups' totals sum to the file's total."""
    path, truth = big
    report = aggregate([path], by=(by,))
    assert sum(t.calls for _, t in report.rows) == truth.calls
    assert sum(t.input_tokens for _, t in report.rows) == truth.input_tokens
    assert sum(t.cost_usd for _, t in report.rows) == pytest.approx(truth.cost_usd)


def test_group_by_tag_counts_untagged_records_under_none(big: tuple[Path, Totals]) -> None:
    """Records without tags are grouped as '(none)'; tagged ones under each tag."""
    path, truth = big
    rows = dict(aggregate([path], by=("tag",)).rows)
    assert set(rows) == {("(none)",), ("batch",)}
    assert rows[("(none)",)].calls + rows[("batch",)].calls == truth.calls


def test_group_by_two_fields(big: tuple[Path, Totals]) -> None:
    """--by model,day gives one row per model and day."""
    path, _ = big
    report = aggregate([path], by=("model", "day"))
    assert len(report.rows) == 6 * 30
    assert all(len(key) == 2 for key, _ in report.rows)


def test_since_and_until_select_whole_days(big: tuple[Path, Totals]) -> None:
    """--since and --until (bare dates, both inclusive) keep only those days."""
    path, _ = big
    by_day = dict(aggregate([path], by=("day",)).rows)
    report = aggregate([path], by=("day",), since="2026-10-10", until="2026-10-12")
    assert [k for k, _ in report.rows] == [("2026-10-10",), ("2026-10-11",), ("2026-10-12",)]
    assert report.total.calls == sum(
        by_day[(d,)].calls for d in ("2026-10-10", "2026-10-11", "2026-10-12")
    )


def test_bad_since_is_a_clear_error(big: tuple[Path, Totals]) -> None:
    """A --since that is not a date says so."""
    with pytest.raises(ValueError, match="not a date"):
        aggregate([big[0]], since="last tuesday")


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def record(n: int, **fields: object) -> TokenUsageRecord:
    values: dict[str, object] = {
        "record_id": f"r{n}",
        "timestamp": datetime(2026, 11, 2, 10, 0, n % 60, 1000, tzinfo=timezone.utc),
        "provider": "openai",
        "operation": "chat.completions",
        "model": "gpt-4o",
        "input_tokens": 100,
        "output_tokens": 10,
        "total_tokens": 110,
        "cost_usd": 0.001,
    }
    values.update(fields)
    return TokenUsageRecord(**values)  # type: ignore[arg-type]


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_counted(
    tmp_path: Path,
) -> None:
    """Bad lines are listed by number; every good line is still counted."""
    good = [record(i).to_json() for i in range(5)]
    path = write(
        tmp_path / "u.jsonl",
        [good[0], "not json at all", good[1], "", good[2], '["a list"]', good[3], good[4][:40]],
    )
    report = aggregate([path])
    assert report.total.calls == 4
    assert [(m.line, m.path) for m in report.malformed] == [
        (2, str(path)),
        (6, str(path)),
        (8, str(path)),
    ]


def test_lines_from_other_writers_are_counted_like_our_own(tmp_path: Path) -> None:
    """Keys in another order, escaped strings and 'Z' timestamps take the slow path, same sums."""
    recs = [record(i, user_id='quote"d', model=f"m{i % 2}") for i in range(6)]
    ours = write(tmp_path / "ours.jsonl", [r.to_json() for r in recs])
    other_lines = []
    for r in recs:
        d = r.to_dict()
        d["timestamp"] = d["timestamp"].replace("+00:00", "Z")
        other_lines.append(json.dumps(d, sort_keys=True))
    other = write(tmp_path / "other.jsonl", other_lines)
    a = aggregate([ours], by=("user", "model"))
    b = aggregate([other], by=("user", "model"))
    assert a.rows == b.rows
    assert a.rows[0][0][0] == 'quote"d'


@pytest.mark.parametrize("operation", ["batches", "agents.turns", "live"])
@pytest.mark.parametrize("layout", ["ours", "another writer's"])
def test_usage_reported_apart_is_read_once_however_many_processes_wrote_it(
    tmp_path: Path, operation: str, layout: str
) -> None:
    """A batch (or an agent turn, a Live session) counted by two processes is one record id,
    written twice: the report reads it once. Calls' records are all read."""
    apart = record(50, operation=operation, record_id="1f2e3d4c-aaaa-bbbb-cccc-000000000001")
    other = record(51, operation=operation, record_id="1f2e3d4c-aaaa-bbbb-cccc-000000000002")

    def line(r: TokenUsageRecord) -> str:
        return r.to_json() if layout == "ours" else json.dumps(r.to_dict(), sort_keys=True)

    first = write(tmp_path / "a.jsonl", [line(record(0)), line(apart), line(other)])
    second = write(tmp_path / "b.jsonl", [line(record(1)), line(apart)])
    total = aggregate([first, second]).total
    assert (total.calls, total.input_tokens) == (4, 400)
    assert total.cost_usd == pytest.approx(0.004)


def test_unpriced_records_are_counted_not_priced_zero(tmp_path: Path) -> None:
    """Records with cost_usd null are counted in 'unpriced'."""
    path = write(tmp_path / "u.jsonl", [record(0).to_json(), record(1, cost_usd=None).to_json()])
    total = aggregate([path]).total
    assert (total.calls, total.unpriced) == (2, 1)
    assert total.cost_usd == pytest.approx(0.001)


def test_generated_lines_are_exactly_what_the_record_writes(tmp_path: Path) -> None:
    """The generator's lines round-trip through TokenUsageRecord unchanged (same format)."""
    path = tmp_path / "g.jsonl"
    generate_jsonl(path, 50)
    for line in path.read_text().splitlines():
        assert TokenUsageRecord.from_json(line).to_json() == line


def test_forecast_adds_the_recent_daily_rate_for_the_days_left() -> None:
    """Month-to-date plus the last 7 days' average times the days left in the month."""
    daily = {f"2026-11-{d:02d}": {"gpt-4o": float(d)} for d in range(1, 11)}
    fc = forecast(daily)
    assert fc is not None
    rate = sum(range(4, 11)) / 7
    assert fc["daily_rate_usd"] == pytest.approx(rate)
    assert fc["month_to_date_usd"] == pytest.approx(sum(range(1, 11)))
    assert fc["days_left"] == 20
    assert fc["forecast_usd"] == pytest.approx(sum(range(1, 11)) + rate * 20)


def test_forecast_uses_fewer_days_when_data_is_young() -> None:
    """Two days of data average over two days, not seven."""
    fc = forecast({"2026-11-01": {"a": 1.0}, "2026-11-02": {"a": 3.0}})
    assert fc is not None
    assert fc["window_days"] == 2
    assert fc["daily_rate_usd"] == pytest.approx(2.0)


def test_csv_output_has_a_header_and_one_row_per_group(big: tuple[Path, Totals]) -> None:
    """--format csv: header then one row per group, numbers unformatted."""
    report = aggregate([big[0]], by=("provider",))
    rows = list(csv.DictReader(io.StringIO(_report.render_csv(report))))
    assert {r["provider"] for r in rows} == {
        "openai",
        "gcp.gemini",
        "gcp.vertex_ai",
        "azure.ai.openai",
    }
    assert sum(int(r["calls"]) for r in rows) == N


def test_json_output_carries_groups_total_and_forecast(big: tuple[Path, Totals]) -> None:
    """--format json: groups, total and forecast as one JSON document."""
    payload = json.loads(_report.render_json(aggregate([big[0]], by=("model",))))
    assert payload["total"]["calls"] == N
    assert {g["model"] for g in payload["groups"]} >= {"gpt-4o", "gemini-2.5-pro"}
    assert payload["forecast"]["month"] == "2026-10"


def test_html_page_is_self_contained(big: tuple[Path, Totals]) -> None:
    """The HTML page loads nothing from the network and holds the chart inline."""
    page = _report.render_html(aggregate([big[0]]))
    assert 'id="daily-spend-chart"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert "<script" not in page


def _chromium() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


@pytest.mark.subprocess
def test_html_chart_renders_in_headless_chromium(big: tuple[Path, Totals], tmp_path: Path) -> None:
    """Headless Chromium renders the page: the chart has one bar per day and model, and a legend."""
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (scripts/ensure-chromium.sh installs it)")
    page = tmp_path / "report.html"
    page.write_text(_report.render_html(aggregate([big[0]])), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=True,
    ).stdout
    assert 'id="daily-spend-chart"' in dom
    priced_models = 5  # the generator's sixth model has no price, so no bar
    assert dom.count('class="bar"') == 30 * priced_models
    assert dom.count('class="legend"') == priced_models
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1000,800", page.as_uri()],
        capture_output=True,
        timeout=90,
        env=env,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_is_drawn_only_on_a_terminal() -> None:
    """The progress bar writes to a TTY stream and stays silent otherwise."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = _report._Progress(100, "usage.jsonl", stream)
        bar.update(50)
        bar.close()
    assert "50.0%" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_last_line_without_a_newline_is_still_counted(tmp_path: Path) -> None:
    """A file whose final record lacks the trailing newline loses nothing."""
    path = tmp_path / "u.jsonl"
    path.write_text(record(0).to_json() + "\n" + record(1).to_json(), encoding="utf-8")
    report = aggregate([path])
    assert report.total.calls == 2
    assert report.malformed == []
