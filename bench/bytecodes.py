"""Bytecodes our code runs per call, by function and line: where a call's added work is, in seconds.

``overhead.py`` gives the time a call adds, but two versions of our code differ there by less than
the noise between two processes, and ``instructions.py`` counts exactly but takes minutes and
cannot say which of our lines the instructions are. This traces the calls (``sys.settrace`` with
opcode events) and counts each bytecode our package runs, bare and with ai-tokentrace, so two
versions can be told apart by what they execute, line by line, in a few seconds.

A count is not a time. Stop 31 measured both: a caller-asked OpenAI stream runs about 580
bytecodes of ours and adds about 18 us (some 30 ns a bytecode, where a warm loop runs one in
3 to 5), and 41 fewer bytecodes on a Gemini call (its modality lists read by an ``itemgetter``,
unrolled) did not move its figure outside the noise. The cost is where the bytecodes and the
objects they touch lie in the caches, which is why code compiled from the same source ran
slower (README, "Where the time goes"). Use this to find and size our work; judge a change by
``overhead.py``.

    python bench/bytecodes.py [--only "chat stream include_usage"] [--calls 5] [--lines]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

_HERE = Path(__file__).resolve()
sys.path.insert(0, str(_HERE.parent))

import overhead  # noqa: E402  (puts the project on the path and aliases httpx2 first)

__all__ = ["count", "main"]

_OURS = str(_HERE.parent.parent / "ai_tokentrace") + os.sep  # the package, not a namesake
Key = tuple[str, str, int]  # (file, function, line)


def count(call: Callable[[], Any], calls: int, loop: asyncio.AbstractEventLoop) -> dict[Key, float]:
    """Our package's bytecodes per call of ``call``, by (file, function, line)."""
    counts: collections.Counter[Key] = collections.Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if not code.co_filename.startswith(_OURS):
            return None  # no opcode events for the SDK's frames: only ours are counted
        frame.f_trace_opcodes = True
        if event == "opcode":
            name = code.co_filename[len(_OURS) :]
            func = getattr(code, "co_qualname", code.co_name)  # 3.11 on; the name before
            counts[(name, func, frame.f_lineno or 0)] += 1
        return tracer

    def run() -> None:
        result = call()
        if inspect.isawaitable(result):
            loop.run_until_complete(result)

    sys.settrace(tracer)
    try:
        for _ in range(calls):
            run()
    finally:
        sys.settrace(None)
    return {key: n / calls for key, n in counts.items()}


def _added(sc: dict[str, Any], calls: int, loop: asyncio.AbstractEventLoop) -> dict[Key, float]:
    """Ours minus bare (our package runs in a bare call too: the fake transport's code)."""
    with overhead.ours_on(sc.get("setup")), overhead.hand_offs_kept():
        bare, ours = sc["unhooked"](), sc["call"]
        for fn in (bare, ours):  # warm: first calls resolve types, bind late imports
            count(fn, 3, loop)
        base, with_ours = count(bare, calls, loop), count(ours, calls, loop)
    return {k: with_ours.get(k, 0.0) - base.get(k, 0.0) for k in base.keys() | with_ours.keys()}


def _by_function(added: dict[Key, float]) -> list[tuple[float, str]]:
    totals: collections.defaultdict[str, float] = collections.defaultdict(float)
    for (name, func, _), n in added.items():
        totals[f"{name}:{func}"] += n
    return sorted(((n, f) for f, n in totals.items() if abs(n) >= 0.5), reverse=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--calls", type=int, default=5, help="calls counted, each way")
    parser.add_argument("--lines", action="store_true", help="also each line of ours, in order")
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    for sc in overhead.load_scenarios(args.only):
        if sc.get("unhooked") is None:
            continue
        added = _added(sc, args.calls, loop)
        print(f"\n{sc['name']}: {sum(added.values()):+.0f} bytecodes of ours a call")
        for n, where in _by_function(added):
            print(f"  {n:+7.0f}  {where}")
        if args.lines:
            for (name, func, line), n in sorted(added.items()):
                if abs(n) >= 0.5:
                    print(f"  {n:+7.1f}  {name}:{line}  {func}")
    loop.close()


if __name__ == "__main__":
    main()
