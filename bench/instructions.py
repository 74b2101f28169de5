"""Instructions added per call, counted by cachegrind: a figure the machine's load cannot move.

Wall-clock figures on a shared 2-vCPU machine move by several microseconds between two runs of
the same code (see ``overhead.py``), so they cannot tell two versions of our code apart. This
counts what each call executes instead: a scenario runs ``N1`` and ``N2`` calls under
``valgrind --tool=cachegrind``, and one call is ``(Ir(N2) - Ir(N1)) / (N2 - N1)`` (the start-up
cancels), bare and with ai-tokentrace. With ai-tokentrace, what the hot path hands off is
appended to a list: the background loop never runs, so the figure is the caller's thread alone.

Two cautions, both measured here:
- The collector is kept from running by a threshold out of reach, not switched off (switched
  off, every allocation past the threshold pays for the check: up to 19k instructions a call).
- Two builds of one unchanged code path differ by up to ~14k instructions: CPython's method
  cache is indexed by the addresses of attribute names, so where objects land decides which
  lookups collide. Several hash seeds (``--seeds``) spread that out; the range is printed.

    python bench/instructions.py [--only "chat stream"] [--seeds 0 1 2] [--calls 30 90]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()
sys.path.insert(0, str(_HERE.parent))

import overhead  # noqa: E402  (puts the project on the path and aliases httpx2 first)

import ai_tokentrace  # noqa: E402
from ai_tokentrace import _pricing  # noqa: E402

__all__ = ["main"]
_SUMMARY = re.compile(r"^summary: (\d+)", re.M)
_MODES = ("bare", "ours")
# One layout per hash seed: address-space randomisation off, and the same environment and
# working directory for every run (their strings sit on the heap, so other variables or another
# shell move where objects land, which moved a figure by up to 30k instructions a call).
_NO_ASLR = ("setarch", os.uname().machine, "-R") if shutil.which("setarch") else ()
_KEPT_ENV = ("PATH", "HOME", "LANG", "VIRTUAL_ENV")


def _child(name: str, mode: str, calls: int) -> None:
    """Under valgrind: warm up, then ``calls`` calls of one scenario in one mode."""
    [sc] = [s for s in overhead.load_scenarios(None) if s["name"] == name]
    ai_tokentrace.configure(service=overhead.NullService())
    _pricing.warm()
    runner = overhead.Runner("wall")
    ours = overhead.ours_on(sc.get("setup")) if mode == "ours" else contextlib.nullcontext()
    with ours, overhead.hand_offs_kept():  # bare: nothing is handed off
        runner.time_calls(sc["call"], 30)
        gc.collect()
        gc.set_threshold(10**9)
        runner.time_calls(sc["call"], calls)
    os._exit(0)  # no teardown in the count, and none of it can fail the run


def _count(name: str, mode: str, calls: int, seed: int) -> int:
    """Instructions of one valgrind run."""
    with tempfile.NamedTemporaryFile(suffix=".cachegrind") as out:
        cmd = [
            *_NO_ASLR,
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out.name}",
            sys.executable,
            str(_HERE),
            "--child",
            name,
            mode,
            str(calls),
        ]
        env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
        env.update(PYTHONHASHSEED=str(seed), PYTHONDONTWRITEBYTECODE="1")
        subprocess.run(cmd, check=True, env=env, cwd=_HERE.parent.parent, capture_output=True)
        found = _SUMMARY.search(Path(out.name).read_text())
    if found is None:
        raise RuntimeError(f"no cachegrind summary for {name} {mode}")
    return int(found.group(1))


def _per_call(name: str, mode: str, seed: int, lo: int, hi: int, pool: ThreadPoolExecutor) -> Any:
    a, b = pool.submit(_count, name, mode, lo, seed), pool.submit(_count, name, mode, hi, seed)
    return lambda: (b.result() - a.result()) / (hi - lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="PYTHONHASHSEEDs")
    parser.add_argument("--calls", type=int, nargs=2, default=[30, 90], metavar=("N1", "N2"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
    if shutil.which("valgrind") is None:
        print("valgrind not found (Debian: apt-get install valgrind); nothing counted")
        return 2

    names = [sc["name"] for sc in overhead.load_scenarios(args.only)]
    lo, hi = args.calls
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        pending = {
            (name, mode, seed): _per_call(name, mode, seed, lo, hi, pool)
            for name in names
            for seed in args.seeds
            for mode in _MODES
        }
        print(
            f"{'scenario':<44} {'bare Ir/call':>13} {'ours added':>11} {'range':>17} {'ratio':>7}"
        )
        for name in names:
            bare = [pending[(name, "bare", s)]() for s in args.seeds]
            added = [
                pending[(name, "ours", s)]() - b for s, b in zip(args.seeds, bare, strict=True)
            ]
            base = statistics.mean(bare)
            mean = statistics.mean(added)
            span = f"{min(added) / 1000:+.1f}k..{max(added) / 1000:+.1f}k"
            print(
                f"{name:<44} {base / 1e6:>12.3f}M {mean / 1000:>+10.1f}k {span:>17}"
                f" {(base + mean) / base:>7.4f}"
            )
    print(
        f"# cachegrind instructions per call, ({lo} calls .. {hi} calls), seeds {args.seeds};"
        " ours: the caller's thread (hand-offs queued to a list, the loop kept out)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
