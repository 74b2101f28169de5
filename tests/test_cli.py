"""The ``ai-tokentrace`` command line: report, tail, prices, and clear errors (no tracebacks)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ai_tokentrace import pricing
from ai_tokentrace._cli import main
from ai_tokentrace._record import TokenUsageRecord
from ai_tokentrace._tail import Tail


def record(n: int, **fields: object) -> TokenUsageRecord:
    values: dict[str, object] = {
        "record_id": f"r{n}",
        "timestamp": datetime(2026, 11, 1 + n % 3, 12, 0, 0, tzinfo=timezone.utc),
        "provider": "openai",
        "operation": "chat.completions",
        "model": "gpt-4o" if n % 2 else "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 100,
        "total_tokens": 1100,
        "cost_usd": 0.01,
        "user_id": f"u{n % 2}",
    }
    values.update(fields)
    return TokenUsageRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def usage(tmp_path: Path) -> Path:
    path = tmp_path / "usage.jsonl"
    path.write_text("".join(record(i).to_json() + "\n" for i in range(6)), encoding="utf-8")
    return path


def test_report_prints_a_table_with_totals(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`report FILE` prints one row per model and a TOTAL row."""
    assert main(["report", str(usage)]) == 0
    out = capsys.readouterr().out
    assert "gpt-4o-mini" in out
    total = next(line for line in out.splitlines() if line.startswith("TOTAL"))
    assert "6,600" in total
    assert "0.060000" in total
    assert "Forecast for 2026-11" in out


def test_report_json_groups_by_user(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--by user --format json` gives machine-readable groups."""
    assert main(["report", str(usage), "--by", "user", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {g["user"]: g["calls"] for g in payload["groups"]} == {"u0": 3, "u1": 3}


def test_report_csv_with_since(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--since` drops older records; `--format csv` prints a header and rows."""
    assert (
        main(["report", str(usage), "--by", "day", "--since", "2026-11-02", "--format", "csv"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("day,calls,")
    assert [line.split(",")[0] for line in lines[1:]] == ["2026-11-02", "2026-11-03"]


def test_report_writes_an_html_page(usage: Path, tmp_path: Path) -> None:
    """`--html OUT` writes the page next to the table."""
    out = tmp_path / "report.html"
    assert main(["report", str(usage), "--html", str(out)]) == 0
    assert 'id="daily-spend-chart"' in out.read_text(encoding="utf-8")


def test_missing_file_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file exits 2 with one clear line and no traceback."""
    assert main(["report", "/nonexistent/usage.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err == "ai-tokentrace: error: no such file: /nonexistent/usage.jsonl\n"


def test_directory_instead_of_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Passing a directory says so instead of failing to read it."""
    assert main(["report", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown option exits 2 with argparse's usage line, no traceback."""
    with pytest.raises(SystemExit) as info:
        main(["report", str(usage), "--colour", "red"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --colour red" in err
    assert "Traceback" not in err


def test_unknown_group_is_a_usage_error(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--by colour` lists the groups one can use."""
    assert main(["report", str(usage), "--by", "colour"]) == 2
    assert "choose from model, provider" in capsys.readouterr().err


def test_bad_date_is_a_usage_error(usage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable --since is reported in one line."""
    assert main(["report", str(usage), "--since", "yesterday-ish"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_malformed_lines_are_warned_by_number_and_the_rest_counted(
    usage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad line is named FILE:LINE on stderr; the good lines are still reported."""
    with usage.open("a", encoding="utf-8") as f:
        f.write("{oops\n")
        f.write(record(9).to_json() + "\n")
    assert main(["report", str(usage), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert f"{usage}:7: not valid JSON" in captured.err
    assert json.loads(captured.out)["total"]["calls"] == 7


def test_many_malformed_lines_are_summarised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past ten bad lines, the rest are counted rather than listed."""
    path = tmp_path / "bad.jsonl"
    path.write_text("garbage\n" * 25, encoding="utf-8")
    assert main(["report", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("(skipped)") == 10
    assert "15 more malformed lines skipped" in err


def test_prices_shows_rate_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    """`prices MODEL` shows the rates used and where they came from."""
    assert main(["prices", "gpt-4o-mini"]) == 0
    out = capsys.readouterr().out
    assert "source:        genai-prices" in out
    assert "input:        $0.15" in out
    assert "cached input: $0.075" in out


def test_prices_shows_an_override(capsys: pytest.CaptureFixture[str]) -> None:
    """A user price is shown with source 'override'."""
    pricing.set_price("house-model", input_per_mtok=3, output_per_mtok=9)
    try:
        assert main(["prices", "house-model", "--json"]) == 0
    finally:
        pricing.clear()
    payload = json.loads(capsys.readouterr().out)
    assert payload["source"] == "override"
    assert payload["usd_per_million_tokens"]["output"] == 9


def test_prices_for_an_unknown_model_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown model is not an error in usage, but nothing was found: exit 1."""
    assert main(["prices", "acme-llm-unreleased"]) == 1
    assert "no price known for 'acme-llm-unreleased'" in capsys.readouterr().err


def test_tail_no_follow_prints_running_totals(
    usage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tail --no-follow` prints each record with the running total, then exits."""
    assert main(["tail", str(usage), "--no-follow"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[-1].endswith("total calls=6 tokens=6600 cost=$0.060000")


def test_tail_sees_lines_appended_later(usage: Path) -> None:
    """Each poll picks up the lines appended since the last one, whole lines only."""
    out = io.StringIO()
    tail = Tail(str(usage), out, live=False)
    assert tail.poll() == 6
    line = record(7).to_json() + "\n"
    with usage.open("a", encoding="utf-8") as f:
        f.write(line[:50])  # a writer caught mid-line
    assert tail.poll() == 0
    with usage.open("a", encoding="utf-8") as f:
        f.write(line[50:])
    assert tail.poll() == 1
    assert tail.total.calls == 7


def test_tail_reads_usage_reported_apart_once(usage: Path) -> None:
    """A batch two processes both counted is one record id written twice: counted once."""
    tail = Tail(str(usage), io.StringIO(), live=False)
    assert tail.poll() == 6
    batch = record(9, operation="batches", record_id="0b7c9e2a-1111-2222-3333-444455556666")
    with usage.open("a", encoding="utf-8") as f:
        f.write(batch.to_json() + "\n" + batch.to_json() + "\n" + record(10).to_json() + "\n")
    assert tail.poll() == 2
    assert tail.total.calls == 8


def test_tail_new_only_skips_what_is_already_there(usage: Path) -> None:
    """`--new` counts only records added after tail started."""
    tail = Tail(str(usage), io.StringIO(), from_start=False, live=False)
    assert tail.poll() == 0
    with usage.open("a", encoding="utf-8") as f:
        f.write(record(8).to_json() + "\n")
    assert tail.poll() == 1
    assert tail.total.calls == 1


def test_tail_starts_over_when_the_file_is_truncated(usage: Path) -> None:
    """A truncated (rotated in place) file is read again from the start."""
    tail = Tail(str(usage), io.StringIO(), live=False)
    tail.poll()
    usage.write_text(record(1).to_json() + "\n", encoding="utf-8")
    assert tail.poll() == 1
    assert tail.total.calls == 7


def test_tail_live_view_redraws_totals_by_model(usage: Path) -> None:
    """On a terminal the view is redrawn with one row per model and the total."""
    out = io.StringIO()
    Tail(str(usage), out, live=True).poll()
    screen = out.getvalue().split("\x1b[H\x1b[2J")[-1]
    assert "gpt-4o-mini" in screen
    assert "TOTAL" in screen


def test_tail_reports_a_malformed_line(usage: Path) -> None:
    """A malformed line is reported with its number and skipped."""
    with usage.open("a", encoding="utf-8") as f:
        f.write("nope\n")
    out = io.StringIO()
    tail = Tail(str(usage), out, live=False)
    tail.poll()
    assert tail.malformed[0].line == 7
    assert f"{usage}:7:" in out.getvalue()


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command, the help lists the subcommands."""
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("report", "tail", "prices", "demo", "replay"):
        assert command in out


@pytest.mark.subprocess
def test_python_dash_m_runs_the_command_line(usage: Path) -> None:
    """`python -m ai_tokentrace report FILE` works like the console script."""
    done = subprocess.run(
        [sys.executable, "-m", "ai_tokentrace", "report", str(usage), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"]["calls"] == 6


@pytest.mark.subprocess
def test_missing_file_from_the_shell_has_no_traceback(tmp_path: Path) -> None:
    """From a real process, a missing file prints one line and exits 2."""
    done = subprocess.run(
        [sys.executable, "-m", "ai_tokentrace", "tail", str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"ai-tokentrace: error: no such file: {tmp_path / 'none.jsonl'}"
