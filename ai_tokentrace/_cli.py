"""The ``ai-tokentrace`` command line: report, tail, prices, demo, replay.

Errors a user can cause (a missing file, a bad option, a malformed line) are reported in one
clear line on stderr, never as a traceback. Exit status: 0 ok, 1 nothing found, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]

PROG = "ai-tokentrace"
_MAX_SHOWN = 10  # malformed lines listed one by one; the rest are counted


class _UsageError(Exception):
    """A mistake in what the user asked for: shown as one line, exit status 2."""


def _err(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Token usage and cost for OpenAI and Gemini calls: reports, live view, prices.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from ._report import GROUPS

    rep = sub.add_parser(
        "report",
        help="summarise JSONL usage files: tokens and cost by model, day, user, ...",
        description="Totals and cost from JSONL usage files, with a forecast of the month.",
    )
    rep.add_argument(
        "files", nargs="+", metavar="FILE", help="JSONL files written by ai-tokentrace"
    )
    rep.add_argument(
        "--by",
        default="model",
        help=f"group by one or more of {', '.join(GROUPS)} (comma separated; default: model)",
    )
    rep.add_argument(
        "--since", help="only records at or after: 2026-11-01, 2026-11-01T12:00, 7d, 24h"
    )
    rep.add_argument("--until", help="only records before (a bare date includes that whole day)")
    rep.add_argument("--format", choices=("table", "csv", "json"), default="table")
    rep.add_argument(
        "--html", metavar="OUT", help="also write a self-contained HTML page with a chart"
    )
    rep.add_argument("--no-progress", action="store_true", help="never show a progress bar")

    tail = sub.add_parser(
        "tail",
        help="follow a JSONL usage file and show running totals live",
        description="Follow a JSONL usage file; redraws totals on a terminal, one line per record otherwise.",
    )
    tail.add_argument("file", metavar="FILE")
    tail.add_argument("--by", default="model", help="record field to total by (default: model)")
    tail.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    tail.add_argument("--new", action="store_true", help="count only lines added from now on")
    tail.add_argument("--no-follow", action="store_true", help="read what is there and exit")

    prices = sub.add_parser(
        "prices",
        help="show the price used for a model and where it came from",
        description="The price a record for MODEL would get, from your overrides or genai-prices.",
    )
    prices.add_argument("model", metavar="MODEL")
    prices.add_argument(
        "--provider",
        help="openai, azure.ai.openai, gcp.gemini or gcp.vertex_ai (default: guess from the name)",
    )
    prices.add_argument("--prices-file", help="load your prices from this JSON file first")
    prices.add_argument("--json", action="store_true", help="print JSON")

    sub.add_parser(
        "demo",
        help="run a short offline demo (options are passed on; see `demo --help`)",
        add_help=False,
    )

    replay = sub.add_parser("replay", help="send spilled records to a service")
    try:
        from . import _replay

        _replay.add_arguments(replay)
    except ImportError:
        replay.add_argument("rest", nargs=argparse.REMAINDER)
        replay.set_defaults(replay_missing=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "demo":
        return _demo(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    commands = {
        "report": _report_cmd,
        "tail": _tail_cmd,
        "prices": _prices_cmd,
        "replay": _replay_cmd,
    }
    try:
        return commands[args.command](args)
    except _UsageError as exc:
        _err(str(exc))
        return 2
    except FileNotFoundError as exc:
        _err(f"no such file: {exc.filename}")
        return 2
    except IsADirectoryError as exc:
        _err(f"is a directory, not a file: {exc.filename}")
        return 2
    except PermissionError as exc:
        _err(f"permission denied: {exc.filename}")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ai-tokentrace report ... | head`
        return 0


def _demo(rest: list[str]) -> int:
    try:
        from . import _demo as demo
    except ImportError:
        _err("the demo is not available in this installation")
        return 2
    return int(demo.main(rest) or 0)


def _replay_cmd(args: argparse.Namespace) -> int:
    if getattr(args, "replay_missing", False):
        _err("replay is not available in this installation")
        return 2
    from . import _replay

    return int(_replay.run(args))


def _report_cmd(args: argparse.Namespace) -> int:
    from . import _report

    by = tuple(b.strip() for b in args.by.split(",") if b.strip())
    unknown = [b for b in by if b not in _report.GROUPS]
    if not by or unknown:
        raise _UsageError(
            f"--by {args.by!r}: choose from {', '.join(_report.GROUPS)} (comma separated)"
        )
    for name in args.files:
        _check_file(name)
    try:
        report = _report.aggregate(
            args.files, by=by, since=args.since, until=args.until, progress=not args.no_progress
        )
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    _show_malformed(report.malformed)
    if args.format == "csv":
        out = _report.render_csv(report)
    elif args.format == "json":
        out = _report.render_json(report)
    else:
        out = _report.render_table(report)
    sys.stdout.write(out)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(_report.render_html(report))
        sys.stderr.write(f"{PROG}: wrote {args.html}\n")
    return 0


def _check_file(name: str) -> None:
    import os

    if not os.path.exists(name):
        raise _UsageError(f"no such file: {name}")
    if os.path.isdir(name):
        raise _UsageError(f"is a directory, not a file: {name}")


def _show_malformed(malformed: Sequence[Any]) -> None:
    for bad in malformed[:_MAX_SHOWN]:
        sys.stderr.write(f"{PROG}: warning: {bad} (skipped)\n")
    if len(malformed) > _MAX_SHOWN:
        sys.stderr.write(
            f"{PROG}: warning: {len(malformed) - _MAX_SHOWN} more malformed lines skipped\n"
        )
    if malformed:
        sys.stderr.write(
            f"{PROG}: {len(malformed)} malformed line(s) skipped; the rest are counted\n"
        )


def _tail_cmd(args: argparse.Namespace) -> int:
    from ._tail import Tail

    _check_file(args.file)
    if args.interval <= 0:
        raise _UsageError("--interval must be positive")
    tail = Tail(args.file, sys.stdout, by=args.by, from_start=not args.new)
    if args.no_follow:
        tail.poll()
        if tail.live:
            tail._render()
        return 0
    stop = threading.Event()
    try:
        tail.follow(stop, args.interval)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _prices_cmd(args: argparse.Namespace) -> int:
    from . import pricing

    if args.prices_file:
        _check_file(args.prices_file)
        try:
            pricing.load_prices(args.prices_file)
        except ValueError as exc:
            raise _UsageError(f"{args.prices_file}: {exc}") from None
    info = pricing.lookup(args.model, provider=args.provider)
    if info is None:
        sys.stderr.write(
            f"{PROG}: no price known for {args.model!r}"
            f"{f' (provider {args.provider})' if args.provider else ''}; records for it get "
            "cost_usd=null. Add one with ai_tokentrace.pricing.set_price() or alias().\n"
        )
        return 1
    rates = info.rates.per_mtok()
    if args.json:
        payload = {
            "model": args.model,
            "provider": args.provider,
            "matched": info.matched,
            "source": info.source,
            "usd_per_million_tokens": rates,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0

    def show(rate: Any, fallback: str) -> str:
        if rate is None:
            return f"(as {fallback})"
        if isinstance(rate, dict):
            tiers = ", ".join(
                f"${t['price']} above {t['above_input_tokens']:,} input" for t in rate["tiers"]
            )
            return f"${rate['base']}  (tiers: {tiers})"
        return f"${rate}"

    lines = [
        f"model:         {args.model}",
        f"matched:       {info.matched}",
        f"source:        {info.source}",
        "USD per million tokens:",
        f"  input:        {show(rates['input'], 'input')}",
        f"  cached input: {show(rates['cached_input'], 'input')}",
        f"  output:       {show(rates['output'], 'output')}",
        f"  reasoning:    {show(rates['reasoning'], 'output')}",
    ]
    if rates["per_request"]:
        lines.append(f"per request:   ${rates['per_request']}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
