"""The export pipeline, with the semantics of OpenTelemetry's BatchProcessor.

Captures go into one bounded queue (the caller never blocks: on overflow a record is dropped,
counted and warned about). A worker on the background loop builds records from them in batches
and hands each batch to one *lane* per service. Lanes are independent, so a slow, hanging or
failing service never delays the others; each lane retries what its service calls transient,
bounds every export by a timeout, and spills what still fails to a local JSONL file when its
service has a spill path.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

from . import _capture, async_utils
from ._capture import Capture, as_capture, build_records
from ._config import Settings, load_settings
from ._files import append_lines
from ._internal import internal_error, logger
from ._record import TokenUsageRecord
from .services._base import TokenUsageService

T = TypeVar("T")

__all__ = [
    "Pipeline",
    "configure",
    "current",
    "export_direct",
    "flush",
    "shutdown",
    "stats",
    "wake_size",
]


class _Counter:
    """A counter that threads can bump without a lock (``next`` on itertools.count is atomic)."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def inc(self) -> None:
        next(self._count)

    @property
    def value(self) -> int:
        # count(n) repr is "count(n)": the next value; so the number of increments is n - 1.
        return int(repr(self._count)[6:-1]) - 1


class _RateLimited:
    """Log a warning (or ``level``) at most once per ``interval`` seconds, with the number
    suppressed."""

    def __init__(self, interval: float = 30.0, level: int = logging.WARNING) -> None:
        self._interval = interval
        self._level = level
        self._last = -1e18
        self._suppressed = 0

    def warn(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= self._interval:
            if self._suppressed:
                msg += " (%d similar messages suppressed)"
                args = (*args, self._suppressed)
            self._last, self._suppressed = now, 0
            logger.log(self._level, msg, *args)
        else:
            self._suppressed += 1


if sys.version_info >= (3, 11):

    async def _bounded(aw: Awaitable[T], timeout: float) -> T:
        """``wait_for`` without its extra task: an awaitable that finishes without suspending
        (an in-memory or logging export) then costs no loop iteration, so the loop thread
        takes the GIL from the caller's thread fewer times per batch."""
        async with asyncio.timeout(timeout):
            return await aw

else:  # pragma: no cover - Python 3.10
    _bounded = asyncio.wait_for


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await _bounded(event.wait(), timeout)


class _Lane:
    """One service's queue and worker. Only the background loop touches its plain counters."""

    def __init__(self, service: TokenUsageService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.pending: deque[TokenUsageRecord] = deque()
        self.received = _Counter()  # from put_threadsafe (any thread)
        self.received_on_loop = 0  # from put (loop thread only: a plain int, bumped in bulk)
        self.dropped = _Counter()
        self.handled = 0
        self.delivered = 0
        self.failed = 0
        self.spilled = 0
        self.retried = 0
        self.wake_pending = False
        self.wake: asyncio.Event | None = None
        self.progress: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self._spills: set[asyncio.Future[None]] = set()
        self._warn_overflow = _RateLimited()
        self._warn_failure = _RateLimited()
        self._warn_spill = _RateLimited(level=logging.ERROR)  # each failed spill is a loss

    # -- any thread ---------------------------------------------------------------------------
    def put_threadsafe(self, record: TokenUsageRecord) -> None:
        if len(self.pending) >= self.settings.max_queue_size:
            async_utils.call_soon(self._overflow, [record])
            return
        self.pending.append(record)
        self.received.inc()
        if self.task is None:
            async_utils.call_soon(self.start)
        elif len(self.pending) >= self.settings.batch_size and not self.wake_pending:
            self.wake_pending = True
            async_utils.call_soon(self._set_wake)

    # -- loop thread --------------------------------------------------------------------------
    def start(self) -> None:
        if self.task is not None:
            return
        self.wake = asyncio.Event()
        self.progress = asyncio.Event()
        self.task = asyncio.ensure_future(
            _lane_worker(weakref.ref(self), self.wake, self.settings.flush_interval)
        )
        self.wake.set()

    def _set_wake(self) -> None:
        if self.wake is not None:
            self.wake.set()

    def put(self, records: Sequence[TokenUsageRecord]) -> None:
        room = self.settings.max_queue_size - len(self.pending)
        if room < len(records):
            self._overflow(records[max(room, 0) :])
            records = records[: max(room, 0)]
        self.pending.extend(records)
        self.received_on_loop += len(records)
        if self.task is None:
            self.start()
        elif len(self.pending) >= self.settings.batch_size:
            self._set_wake()

    def _overflow(self, records: Sequence[TokenUsageRecord]) -> None:
        if self.service.spill_path is not None:
            self._warn_overflow.warn(
                "%s queue full (%d records); spilling to %s",
                self.service.name,
                self.settings.max_queue_size,
                self.service.spill_path,
            )
            spill = asyncio.ensure_future(self._spill(records))
            self._spills.add(spill)
            spill.add_done_callback(self._spills.discard)
            return
        for _ in records:
            self.dropped.inc()
        self._warn_overflow.warn(
            "%s queue full (%d records); dropped %d record(s). Raise AI_TOKENTRACE_MAX_QUEUE_SIZE "
            "or use a faster service",
            self.service.name,
            self.settings.max_queue_size,
            len(records),
        )

    async def drain(self) -> None:
        batch_size = self.settings.batch_size
        while self.pending:
            n = min(batch_size, len(self.pending))
            batch = [self.pending.popleft() for _ in range(n)]
            try:
                await self._export(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one bad batch stop the lane
                self.failed += len(batch)
                logger.error("ai-tokentrace lane for %s failed: %r", self.service.name, exc)
            self.handled += n
            if self.progress is not None:
                self.progress.set()

    async def _export(self, batch: list[TokenUsageRecord]) -> None:
        policy = self.service.retry
        attempt = 0
        slept = 0.0
        while True:
            attempt += 1
            try:
                await _bounded(self.service.aexport_batch(batch), self.settings.export_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                transient = isinstance(exc, asyncio.TimeoutError) or _is_retryable(
                    self.service, exc
                )
                if policy is not None and transient and attempt < policy.max_attempts:
                    delay = policy.delay(attempt)
                    if slept + delay <= policy.max_total_delay:
                        self.retried += len(batch)
                        slept += delay
                        logger.debug(
                            "%s: transient failure %r; retry %d in %.2fs",
                            self.service.name,
                            exc,
                            attempt,
                            delay,
                        )
                        await asyncio.sleep(delay)
                        continue
                await self._fail(batch, exc)
                return
            self.delivered += len(batch)
            return

    async def _fail(self, batch: list[TokenUsageRecord], exc: BaseException) -> None:
        self.failed += len(batch)
        where = f"; spilling to {self.service.spill_path}" if self.service.spill_path else "; lost"
        what = "timed out" if isinstance(exc, asyncio.TimeoutError) else f"failed: {exc!r}"
        self._warn_failure.warn(
            "%s export of %d record(s) %s%s", self.service.name, len(batch), what, where
        )
        if self.service.spill_path is not None:
            await self._spill(batch)

    async def _spill(self, records: Sequence[TokenUsageRecord]) -> None:
        path = self.service.spill_path
        assert path is not None
        lines = [r.to_json() for r in records]
        try:
            await asyncio.get_running_loop().run_in_executor(None, append_lines, path, lines)
        except Exception as exc:
            self._warn_spill.warn(
                "could not spill %d record(s) to %s: %r (lost)", len(lines), path, exc
            )
            for _ in records:
                self.dropped.inc()
            return
        self.spilled += len(records)

    def received_total(self) -> int:
        return self.received.value + self.received_on_loop

    async def wait_handled(self, target: int) -> None:
        if self.task is None and target > 0:
            self.start()
        while self.handled < target:
            assert self.progress is not None
            assert self.wake is not None
            self.progress.clear()
            self.wake.set()
            await self.progress.wait()
        if self._spills:
            await asyncio.gather(*list(self._spills))

    async def close(self, timeout: float) -> None:
        if self.task is not None:
            self.task.cancel()
        try:
            await asyncio.wait_for(self.service.aclose(), timeout)
        except asyncio.TimeoutError:
            logger.warning("%s did not close within %.1fs", self.service.name, timeout)
        except Exception as exc:
            logger.warning("%s failed to close: %r", self.service.name, exc)

    def reset_after_fork(self) -> None:
        self.pending = deque()
        self.received = _Counter()
        self.received_on_loop = 0
        self.dropped = _Counter()
        self.handled = self.delivered = self.failed = self.spilled = self.retried = 0
        self.wake_pending = False
        self.wake = self.progress = None
        self.task = None
        try:
            self.service.after_fork()
        except Exception:
            logger.exception("%s.after_fork failed", self.service.name)


def _is_retryable(service: TokenUsageService, exc: BaseException) -> bool:
    try:
        return bool(service.is_retryable(exc))
    except Exception:
        return False


async def _lane_worker(ref: weakref.ref[_Lane], wake: asyncio.Event, interval: float) -> None:
    while True:
        await _wait(wake, interval)
        wake.clear()
        lane = ref()
        if lane is None:
            return
        lane.wake_pending = False
        await lane.drain()
        del lane


async def _pipeline_worker(
    ref: weakref.ref[Pipeline], wake: asyncio.Event, interval: float
) -> None:
    while True:
        await _wait(wake, interval)
        wake.clear()
        pipeline = ref()
        if pipeline is None:
            return
        try:
            await pipeline._drain()
        except Exception:
            logger.exception("ai-tokentrace pipeline worker error (records may be lost)")
        del pipeline


_live: weakref.WeakSet[Pipeline] = weakref.WeakSet()
_NEVER = sys.maxsize  # a _wake_at no queue reaches
_WAKE_CAP = 1024


def wake_size(settings: Settings) -> int:
    """How many queued calls wake the worker before ``flush_interval`` does.

    Larger than one export batch on purpose. Each wake makes the loop thread take the GIL
    from the callers' threads, and measured on CPU-bound callers the cost scales with how
    often that happens, not with how much is built: waking every 1024 calls instead of every
    100 took about 4 us off each call at the median. A quarter of the queue bound keeps the
    queue far from full under bursts. Records still leave within ``flush_interval`` at any
    rate.
    """
    return max(1, min(max(settings.batch_size, _WAKE_CAP), settings.max_queue_size // 4))


class Pipeline:
    """Bounded queue -> record building -> one lane per service."""

    def __init__(self, services: Iterable[TokenUsageService], settings: Settings) -> None:
        self.settings = settings
        self.services: tuple[TokenUsageService, ...] = tuple(services)
        self._lanes = [_Lane(s, settings) for s in self.services]
        self._direct: dict[int, _Lane] = {}
        self._queue: deque[Capture | tuple[Any, ...]] = deque()
        self._overflow: deque[Capture | tuple[Any, ...]] = deque()  # past the bound, to spill
        self._overflow_pending = False
        self._room = settings.max_queue_size  # 0 once closed: every submit takes the slow path
        self._wake_at = 1  # queue length that calls _wake_soon: 1 starts the worker
        self._wake_size = wake_size(settings)  # _wake_at once the worker runs
        self._taken = 0  # items the worker (or the overflow path) has taken off the queue
        self._dropped = _Counter()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost_mark = 0
        self._warn_overflow = _RateLimited()
        self._warn_closed = _RateLimited(interval=300.0)
        _live.add(self)

    # -- hot path (any thread) ----------------------------------------------------------------
    def submit(self, capture: Capture | tuple[Any, ...]) -> None:
        """Queue one capture or snapshot. Two length checks and an append in the common case."""
        q = self._queue
        if len(q) < self._room:
            q.append(capture)
            if len(q) >= self._wake_at:
                self._wake_soon()
            return
        self._reject(capture)

    def _wake_soon(self) -> None:
        """The queue reached ``_wake_at``: start the worker, or wake it (see :func:`wake_size`)."""
        if not self._started:
            self._start()
            return
        with self._lock:
            if self._wake_at == _NEVER:
                return
            self._wake_at = _NEVER  # until the worker has taken what is there
        async_utils.call_soon(self._set_wake)

    def _reject(self, capture: Capture | tuple[Any, ...]) -> None:
        """Rare path: the queue is full, or this pipeline is closed."""
        if self._closed:
            newer = _current
            if newer is None or (newer is not self and not newer._closed):
                current().submit(capture)  # replaced since this one was bound to the hot path
                return
            self._dropped.inc()
            self._warn_closed.warn("ai-tokentrace is shut down; record dropped")
            return
        if self._spill_overflow_later(capture):
            return
        self._dropped.inc()
        self._warn_overflow.warn(
            "ai-tokentrace queue full (%d records); record dropped. Raise "
            "AI_TOKENTRACE_MAX_QUEUE_SIZE or use a faster service",
            self.settings.max_queue_size,
        )

    def _spill_overflow_later(self, capture: Capture | tuple[Any, ...]) -> bool:
        """Rare path: keep an overflowing capture for the services that have a spill file."""
        if len(self._overflow) >= self.settings.max_queue_size or not any(
            lane.service.spill_path is not None for lane in self._lanes
        ):
            return False
        self._overflow.append(capture)
        if not self._overflow_pending:
            self._overflow_pending = True
            async_utils.call_soon(self._spill_overflow)
        return True

    def _spill_overflow(self) -> None:
        """On the loop: overflowed records go to each spilling lane's file, not to its queue."""
        self._overflow_pending = False
        captures = list(self._overflow)
        for _ in captures:
            self._overflow.popleft()
        if not captures:
            return
        self._taken += len(captures)
        records = []
        for capture in captures:
            try:
                records.append(as_capture(capture).record())
            except Exception:
                self._dropped.inc()
        for lane in self._lanes:
            if lane.service.spill_path is not None:
                lane._overflow(records)
            else:
                for _ in records:
                    lane.dropped.inc()

    def lane_for(self, service: TokenUsageService) -> _Lane:
        for lane in self._lanes:
            if lane.service is service:
                return lane
        direct = self._direct.get(id(service))
        if direct is None:
            with self._lock:
                direct = self._direct.get(id(service))
                if direct is None:
                    direct = self._direct[id(service)] = _Lane(service, self.settings)
        return direct

    # -- loop thread --------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._wake_at = self._wake_size
        async_utils.call_soon(self._start_on_loop)

    def _start_on_loop(self) -> None:
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(
            _pipeline_worker(weakref.ref(self), self._wake, self.settings.flush_interval)
        )
        for lane in self._lanes:
            lane.start()
        self._wake.set()

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _drain(self) -> None:
        q = self._queue
        batch_size = self.settings.batch_size
        self._wake_at = self._wake_size  # the hot path may wake us again from here on
        # Only what is queued now. Chasing the queue until it is empty never ends while a
        # CPU-bound caller keeps calling: each pass waits up to the GIL's switch interval for
        # the caller's thread, which queues a few calls meanwhile, so the loop built records a
        # few at a time and took the GIL from the caller for every few calls. Measured on
        # streams (bench/RESULTS.md, stop 24), it then ran during 49 to 84% of the calls. What
        # comes in meanwhile waits for the next wake (``_wake_size`` calls or the interval).
        left = len(q)
        while left > 0 and q:
            captures = [q.popleft() for _ in range(min(batch_size, left, len(q)))]
            left -= len(captures)
            self._taken += len(captures)
            records, failed = build_records(captures)
            if failed:
                for _ in range(failed):
                    self._dropped.inc()
                # strict mode re-raises; on the loop there is no caller to raise to
                with contextlib.suppress(Exception):
                    internal_error("building a record")
            for lane in self._lanes:
                lane.put(records)
            await asyncio.sleep(0)

    def _all_lanes(self) -> list[_Lane]:
        return [*self._lanes, *self._direct.values()]

    async def _aflush(self) -> bool:
        if self._task is None and self._started:
            self._start_on_loop()
        self._spill_overflow()
        await self._drain()
        lanes = self._all_lanes()
        await asyncio.gather(*(lane.wait_handled(lane.received_total()) for lane in lanes))
        lost = self._lost()
        ok = lost == self._lost_mark
        self._lost_mark = lost
        return ok

    def _lost(self) -> int:
        return self._dropped.value + sum(
            lane.failed + lane.dropped.value for lane in self._all_lanes()
        )

    # -- control (any thread but the loop's) --------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """True when every record so far reached every service within ``timeout``."""
        if not self._started and all(lane.received_total() == 0 for lane in self._all_lanes()):
            ok = self._lost() == self._lost_mark
            self._lost_mark = self._lost()
            return ok
        if async_utils.in_loop_thread():
            logger.warning("flush() called from the ai-tokentrace loop itself; ignored")
            return False
        fut = async_utils.submit(self._aflush())
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            return False

    def shutdown(
        self, timeout: float | None = None, keep: Sequence[TokenUsageService] = ()
    ) -> bool:
        """Flush, then close every service but those in ``keep`` (reused by a new pipeline).

        Idempotent; bounded by ``timeout`` in all.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            self._room = 0
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        ok = self.flush(timeout)
        if not ok:
            logger.warning(
                "ai-tokentrace shutdown: not every record was delivered within %.1fs", timeout
            )
        kept = {id(s) for s in keep}
        lanes = [lane for lane in self._all_lanes() if id(lane.service) not in kept]
        if lanes and async_utils.background_loop().running and not async_utils.in_loop_thread():
            remaining = max(0.0, deadline - time.monotonic())
            fut = async_utils.submit(_close_lanes(lanes, remaining))
            try:
                fut.result(remaining + 0.1)
            except concurrent.futures.TimeoutError:
                logger.warning("ai-tokentrace shutdown: services did not close in time")
            except Exception:
                logger.exception("ai-tokentrace shutdown: error while closing services")
        return ok

    def stats(self) -> dict[str, Any]:
        lanes = self._all_lanes()
        per_service = {
            f"{lane.service.name}#{i}": {
                "exported": lane.delivered,
                "failed": lane.failed,
                "spilled": lane.spilled,
                "retried": lane.retried,
                "dropped": lane.dropped.value,
                "queued": len(lane.pending),
            }
            for i, lane in enumerate(lanes)
        }
        return {
            "recorded": self._taken + len(self._queue) + len(self._overflow),
            "exported": sum(lane.delivered for lane in lanes),
            "dropped": self._dropped.value + sum(lane.dropped.value for lane in lanes),
            "failed": sum(lane.failed for lane in lanes),
            "spilled": sum(lane.spilled for lane in lanes),
            "retried": sum(lane.retried for lane in lanes),
            "replayed": _replayed(),
            "queued": len(self._queue) + sum(len(lane.pending) for lane in lanes),
            "services": per_service,
        }

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._queue = deque()
        self._overflow = deque()
        self._overflow_pending = False
        self._room = 0 if self._closed else self.settings.max_queue_size
        self._wake_at = 1
        self._taken = 0
        self._dropped = _Counter()
        self._started = False
        self._wake = None
        self._task = None
        self._lost_mark = 0
        for lane in self._all_lanes():
            lane.reset_after_fork()


def _replayed() -> int:
    """Records delivered by ``ai-tokentrace replay`` in this process (0 if never used)."""
    replay = sys.modules.get("ai_tokentrace._replay")
    return int(replay.replayed_count()) if replay is not None else 0


async def _close_lanes(lanes: list[_Lane], timeout: float) -> None:
    await asyncio.gather(*(lane.close(timeout) for lane in lanes))


# -- the process-wide pipeline -----------------------------------------------------------------
_state_lock = threading.Lock()
_current: Pipeline | None = None


def _default_services() -> list[TokenUsageService]:
    from .services._env import services_from_env

    return services_from_env()


def current() -> Pipeline:
    """The active pipeline, created from the environment on first use."""
    p = _current
    if p is not None:
        return p
    with _state_lock:
        if _current is None:
            _install(Pipeline(_default_services(), load_settings()))
        assert _current is not None
        return _current


def _install(p: Pipeline) -> None:
    global _current
    _current = p
    _capture.hand_off = p.submit  # the hot path calls the active pipeline directly
    _capture.inject_stream_usage = bool(p.settings.inject_stream_usage)  # and reads its setting


def configure(
    service: TokenUsageService | Sequence[TokenUsageService] | None = None,
    **settings: Any,
) -> Pipeline:
    """Replace where records go (and how they are batched). The old pipeline is flushed and
    its services that are not reused are closed."""
    if service is None:
        services = _default_services()
    elif isinstance(service, TokenUsageService):
        services = [service]
    else:
        services = list(service)
        for s in services:
            if not isinstance(s, TokenUsageService):
                raise TypeError(f"not a TokenUsageService: {s!r}")
    unknown = set(settings) - set(Settings._fields)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    new = Pipeline(services, load_settings(settings))
    with _state_lock:
        old = _current
        _install(new)
    if old is not None:
        # Deliver what the old pipeline holds; close only the services the new one drops.
        old.shutdown(keep=services)
    return new


def export_direct(service: TokenUsageService, record: TokenUsageRecord) -> None:
    try:
        current().lane_for(service).put_threadsafe(record)
    except Exception:
        internal_error("TokenUsageService.export")


def flush(timeout: float = 5.0) -> bool:
    p = _current
    return True if p is None else p.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    p = _current
    return True if p is None else p.shutdown(timeout)


def stats() -> dict[str, Any]:
    p = _current
    if p is None:
        return {
            "recorded": 0,
            "exported": 0,
            "dropped": 0,
            "failed": 0,
            "spilled": 0,
            "retried": 0,
            "replayed": _replayed(),
            "queued": 0,
            "services": {},
        }
    return p.stats()


def _at_exit() -> None:
    for p in list(_live):
        if not p._closed:
            try:
                p.shutdown()
            except Exception:
                logger.exception("ai-tokentrace: error at interpreter exit")


def _after_fork_in_child() -> None:
    global _state_lock
    _state_lock = threading.Lock()
    for p in list(_live):
        p._reset_after_fork()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
