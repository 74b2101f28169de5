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

With ``--misses`` the caches are simulated too, the last level sized as this machine's L2
(cachegrind models two levels: L1 and the last): what misses it goes to L3 or memory, and our
code, run once per call, misses it far more often than the SDK's code does, which runs per
chunk, per header, per field. Measured in stop 24 on a caller-asked stream, our code added
0.55% of the instructions and 17% of the misses of a 1 MiB L2 (this machine's; with 512 KiB,
0.68% and 6.8% / 7.1% of the instruction / data misses); at 20 to 35 ns a miss those explain
most of the wall-clock figure that the instructions alone do not.

    python bench/instructions.py [--only "chat stream"] [--seeds 0 1 2] [--calls 30 90] [--misses]
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
_SUMMARY = re.compile(r"^summary: ([\d ]+)$", re.M)
# cachegrind's summary with --cache-sim=yes: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
_LL_MISSES = (2, 5, 8)
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


def l2_size() -> int:
    """This machine's L2 in bytes (Linux's sysfs), else 1 MiB."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError, ValueError):
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * 1024 if size.endswith("K") else int(size)
    return 1 << 20


def _count(name: str, mode: str, calls: int, seed: int, misses: bool) -> tuple[int, int]:
    """Instructions of one valgrind run, and (``misses``) its misses of the modelled L2."""
    sim = ["--cache-sim=yes", f"--LL={l2_size()},16,64"] if misses else ["--cache-sim=no"]
    with tempfile.NamedTemporaryFile(suffix=".cachegrind") as out:
        cmd = [
            *_NO_ASLR,
            "valgrind",
            "--tool=cachegrind",
            *sim,
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
    counts = [int(x) for x in found.group(1).split()]
    return counts[0], sum(counts[i] for i in _LL_MISSES) if misses else 0


def _per_call(
    name: str, mode: str, seed: int, lo: int, hi: int, misses: bool, pool: ThreadPoolExecutor
) -> Any:
    """``() -> (instructions, L2 misses)`` per call, from runs of ``lo`` and ``hi`` calls."""
    a = pool.submit(_count, name, mode, lo, seed, misses)
    b = pool.submit(_count, name, mode, hi, seed, misses)

    def per_call() -> tuple[float, float]:
        (ir_a, ll_a), (ir_b, ll_b) = a.result(), b.result()
        return (ir_b - ir_a) / (hi - lo), (ll_b - ll_a) / (hi - lo)

    return per_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="PYTHONHASHSEEDs")
    parser.add_argument("--calls", type=int, nargs=2, default=[30, 90], metavar=("N1", "N2"))
    parser.add_argument(
        "--misses", action="store_true", help="also count misses of a modelled L2 (slower)"
    )
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
            (name, mode, seed): _per_call(name, mode, seed, lo, hi, args.misses, pool)
            for name in names
            for seed in args.seeds
            for mode in _MODES
        }
        misses = f" {'L2 misses':>10} {'ours added':>11} {'range':>13}" if args.misses else ""
        print(
            f"{'scenario':<44} {'bare Ir/call':>13} {'ours added':>11} {'range':>17} {'ratio':>7}"
            + misses
        )
        for name in names:
            bare = [pending[(name, "bare", s)]() for s in args.seeds]
            ours = [pending[(name, "ours", s)]() for s in args.seeds]
            added = [o[0] - b[0] for o, b in zip(ours, bare, strict=True)]
            base = statistics.mean(b[0] for b in bare)
            mean = statistics.mean(added)
            span = f"{min(added) / 1000:+.1f}k..{max(added) / 1000:+.1f}k"
            line = (
                f"{name:<44} {base / 1e6:>12.3f}M {mean / 1000:>+10.1f}k {span:>17}"
                f" {(base + mean) / base:>7.4f}"
            )
            if args.misses:
                extra = [o[1] - b[1] for o, b in zip(ours, bare, strict=True)]
                line += (
                    f" {statistics.mean(b[1] for b in bare):>10.0f}"
                    f" {statistics.mean(extra):>+11.0f}"
                    f" {f'{min(extra):+.0f}..{max(extra):+.0f}':>13}"
                )
            print(line)
    print(
        f"# cachegrind instructions per call, ({lo} calls .. {hi} calls), seeds {args.seeds};"
        " ours: the caller's thread (hand-offs queued to a list, the loop kept out)"
        + (f"; L2 misses: a {l2_size() >> 10} KiB last level, 16-way" if args.misses else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
