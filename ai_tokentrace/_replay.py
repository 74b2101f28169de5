"""``ai-tokentrace replay SPILL --to ...``: send spilled records to a service, keep the rest.

A spill file is what a service could not deliver (its destination down, its queue full). Replay
first renames the file aside, so a running process that spills meanwhile starts a new file and
no line is read twice or lost; then it delivers the records in batches, with the service's own
retry policy, appends what still fails back to the spill file, and only then removes the
renamed copy. A crash mid-way can therefore repeat a record but never lose one: Firestore
overwrites the same document (the record id is the document id) and Pub/Sub messages carry the
record id for downstream de-duplication.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import async_utils
from ._files import append_lines
from ._internal import logger
from ._record import TokenUsageRecord
from .services._base import TokenUsageService

__all__ = [
    "ReplayResult",
    "add_arguments",
    "areplay",
    "main",
    "replay",
    "replayed_count",
    "run",
    "service_for",
]

_CLAIM = ".replaying-"
_lock = threading.Lock()
_replayed = 0


def replayed_count() -> int:
    """Records delivered by replay in this process (for ``stats()["replayed"]``)."""
    return _replayed


def _count(n: int) -> None:
    global _replayed
    with _lock:
        _replayed += n


@dataclass(frozen=True, slots=True)
class ReplayResult:
    delivered: int  # records the service accepted
    remaining: int  # records written back to the spill file (delivery failed)
    invalid: int  # lines that are not records; kept in the spill file untouched
    duplicates: int  # lines repeating a record id already in this replay; sent once

    @property
    def complete(self) -> bool:
        return self.remaining == 0 and self.invalid == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(path: Path) -> list[Path]:
    """Rename the spill file aside (atomic), and adopt copies left by a replay that died."""
    claimed: list[Path] = []
    for leftover in sorted(path.parent.glob(path.name + _CLAIM + "*")):
        try:
            pid = int(leftover.name[len(path.name + _CLAIM) :].split("-", 1)[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            claimed.append(leftover)
    target = path.with_name(f"{path.name}{_CLAIM}{os.getpid()}-{time.time_ns()}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        pass
    else:
        claimed.append(target)
    return claimed


def _read(
    spill_path: str | os.PathLike[str],
) -> tuple[Path, list[Path], list[tuple[TokenUsageRecord, str]], list[str], int, int]:
    """Claim the spill file and parse it: records to send (first of each id), lines to keep."""
    path = Path(spill_path).expanduser()
    claimed = _claim(path)
    seen: set[str] = set()
    pending: list[tuple[TokenUsageRecord, str]] = []
    keep: list[str] = []
    invalid = duplicates = 0
    for file in claimed:
        with open(file, encoding="utf-8", errors="replace") as f:
            for raw in f:
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                try:
                    record = TokenUsageRecord.from_json(line)
                except Exception:
                    invalid += 1
                    keep.append(line)
                    continue
                if record.record_id in seen:
                    duplicates += 1
                    continue
                seen.add(record.record_id)
                pending.append((record, line))
    return path, claimed, pending, keep, invalid, duplicates


async def _deliver(
    service: TokenUsageService, batch: list[TokenUsageRecord], timeout: float
) -> BaseException | None:
    """One batch with the service's retry policy; the final error, or None when delivered."""
    policy = service.retry
    attempt = 0
    slept = 0.0
    while True:
        attempt += 1
        try:
            await asyncio.wait_for(service.aexport_batch(batch), timeout)
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            transient = isinstance(exc, asyncio.TimeoutError)
            if not transient:
                try:
                    transient = bool(service.is_retryable(exc))
                except Exception:
                    transient = False
            if policy is None or not transient or attempt >= policy.max_attempts:
                return exc
            delay = policy.delay(attempt)
            if slept + delay > policy.max_total_delay:
                return exc
            slept += delay
            await asyncio.sleep(delay)


async def areplay(
    spill_path: str | os.PathLike[str],
    service: TokenUsageService,
    *,
    batch_size: int = 500,
    timeout: float = 30.0,
) -> ReplayResult:
    """Deliver the records of ``spill_path`` to ``service``; what fails stays in the file."""
    loop = asyncio.get_running_loop()
    path, claimed, pending, keep, invalid, duplicates = await loop.run_in_executor(
        None, _read, spill_path
    )
    delivered = 0
    failed: BaseException | None = None
    for start in range(0, len(pending), max(1, batch_size)):
        chunk = pending[start : start + max(1, batch_size)]
        if failed is None:
            failed = await _deliver(service, [r for r, _ in chunk], timeout)
            if failed is None:
                delivered += len(chunk)
                _count(len(chunk))
                continue
            logger.warning("replay to %s stopped: %r", service.name, failed)
        keep.extend(line for _, line in chunk)  # once the destination fails, keep the rest
    if keep:
        # Append (never overwrite): the live file may already hold new spills.
        await loop.run_in_executor(None, append_lines, path, keep)
    for file in claimed:
        await loop.run_in_executor(None, file.unlink, True)
    return ReplayResult(delivered, len(keep) - invalid, invalid, duplicates)


def replay(
    spill_path: str | os.PathLike[str],
    service: TokenUsageService,
    *,
    batch_size: int = 500,
    timeout: float = 30.0,
) -> ReplayResult:
    """Blocking :func:`areplay`, run on ai-tokentrace's background loop (where the service's
    client lives). Call it from any thread but that loop."""
    fut = async_utils.submit(areplay(spill_path, service, batch_size=batch_size, timeout=timeout))
    return fut.result()


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``replay`` subcommand's arguments."""
    parser.add_argument("spill", help="the spill file (JSONL) to replay")
    parser.add_argument(
        "--to",
        required=True,
        metavar="SERVICE",
        help="firestore, pubsub, or jsonl:PATH",
    )
    parser.add_argument(
        "--collection",
        default=os.environ.get("AI_TOKENTRACE_FIRESTORE_COLLECTION", "token_usage"),
        help="Firestore collection (default: %(default)s)",
    )
    parser.add_argument("--rollups", action="store_true", help="also update Firestore rollups")
    parser.add_argument(
        "--topic",
        default=os.environ.get("AI_TOKENTRACE_PUBSUB_TOPIC"),
        help="Pub/Sub topic: a name or projects/P/topics/T",
    )
    parser.add_argument("--project", default=None, help="Google Cloud project")
    parser.add_argument("--batch-size", type=int, default=500, help="records per export call")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds allowed per export call"
    )


def service_for(args: argparse.Namespace) -> TokenUsageService:
    """The service named by ``--to``."""
    to: str = args.to
    if to == "firestore":
        from .services._firestore import FirestoreTokenUsageService

        return FirestoreTokenUsageService(
            collection=args.collection, project=args.project, rollups=args.rollups
        )
    if to == "pubsub":
        from .services._pubsub import PubSubTokenUsageService

        if not args.topic:
            raise ValueError("--to pubsub needs --topic (or AI_TOKENTRACE_PUBSUB_TOPIC)")
        return PubSubTokenUsageService(args.topic, project=args.project)
    if to.startswith("jsonl:") and len(to) > len("jsonl:"):
        from .services._jsonl import JsonlFileTokenUsageService

        return JsonlFileTokenUsageService(to[len("jsonl:") :])
    raise ValueError(f"unknown --to {to!r}: use firestore, pubsub or jsonl:PATH")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand: 0 when everything was delivered, 1 when some remains, 2 on error."""
    try:
        service = service_for(args)
    except (ImportError, ValueError) as exc:
        print(f"ai-tokentrace replay: {exc}", file=sys.stderr)
        return 2

    async def go() -> ReplayResult:
        try:
            return await areplay(
                args.spill, service, batch_size=args.batch_size, timeout=args.timeout
            )
        finally:
            await service.aclose()

    result = async_utils.submit(go()).result()
    print(
        f"replayed {result.delivered} record(s) to {service!r}"
        + (f", {result.duplicates} duplicate line(s) skipped" if result.duplicates else "")
        + (f"; {result.remaining} remain in {args.spill}" if result.remaining else "")
        + (f"; {result.invalid} unreadable line(s) kept" if result.invalid else "")
    )
    return 0 if result.remaining == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ai-tokentrace replay", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
