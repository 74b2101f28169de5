"""The export pipeline: OpenTelemetry BatchProcessor semantics, never blocking the caller."""

from __future__ import annotations

import gc
import logging
import os
import threading
import weakref
from pathlib import Path

import pytest

import ai_tokentrace
from ai_tokentrace import _pipeline
from ai_tokentrace._config import load_settings
from ai_tokentrace.services import RetryPolicy
from ai_tokentrace.testing import InMemoryTokenUsageService

from ._support import (
    FailingService,
    HangingService,
    SignalService,
    block_loop,
    emit_usage,
    extract_pair,
    loop_held,
    make_record,
)

FOREVER = 3600.0


def test_a_backlog_is_exported_without_waiting_for_the_interval() -> None:
    """With a flush interval of an hour, a backlog of wake_size calls still goes out at once,
    in batches of batch_size."""
    svc = SignalService()
    ai_tokentrace.configure(service=svc, batch_size=5, max_queue_size=40, flush_interval=FOREVER)
    wake = _pipeline.wake_size(_pipeline.current().settings)
    assert wake == 10
    emit_usage()  # starts the worker, which exports what it finds at once
    assert ai_tokentrace.flush(30)
    for _ in range(wake):
        emit_usage()
    assert svc.wait_for(1 + wake)
    assert svc.batches == [1, 5, 5]


def test_the_worker_is_woken_once_per_wake_size_calls_not_per_batch(monkeypatch) -> None:
    """Two full batches queued do not wake the worker; the wake_size-th call does, once."""
    from ai_tokentrace import async_utils

    svc = SignalService()
    ai_tokentrace.configure(service=svc, batch_size=5, max_queue_size=40, flush_interval=FOREVER)
    wake = _pipeline.wake_size(_pipeline.current().settings)
    emit_usage()  # starts the worker
    assert ai_tokentrace.flush(30)
    release = block_loop()  # the worker takes nothing off the queue meanwhile
    wakes: list[object] = []
    schedule = async_utils.call_soon

    def noting_wakes(fn, *args):  # type: ignore[no-untyped-def]
        if getattr(fn, "__func__", None) is _pipeline.Pipeline._set_wake:
            wakes.append(fn)
        schedule(fn, *args)

    monkeypatch.setattr(async_utils, "call_soon", noting_wakes)
    try:
        for _ in range(wake - 1):
            emit_usage()
        assert wakes == []
        emit_usage()
        assert len(wakes) == 1
    finally:
        release.set()
    assert svc.wait_for(1 + wake)


def test_wake_size_is_a_few_batches_and_a_quarter_of_the_queue_at_most() -> None:
    """The worker wakes every 1024 calls by default (not every batch: each wake costs the
    callers), never later than a quarter of the queue bound, never before one batch."""
    from ai_tokentrace._config import Settings

    assert _pipeline.wake_size(Settings()) == 1024
    assert _pipeline.wake_size(Settings(batch_size=2000)) == 2000
    assert _pipeline.wake_size(Settings(max_queue_size=400)) == 100
    assert _pipeline.wake_size(Settings(max_queue_size=2)) == 1


def test_a_drain_takes_only_what_was_queued_when_it_began() -> None:
    """Calls queued while the loop builds records wait for the next wake. A drain that took
    them too never ended while a busy caller kept calling, and took the GIL from it every few
    calls."""
    import asyncio

    from ai_tokentrace._config import Settings

    with loop_held() as queued:
        for _ in range(3):
            emit_usage()
    first, later = queued[:2], queued[2:]
    svc = InMemoryTokenUsageService()
    pipeline = _pipeline.Pipeline([svc], Settings(batch_size=1))

    async def drain_while_a_call_comes_in() -> None:
        pipeline._queue.extend(first)
        # runs when the drain yields after its first batch
        asyncio.get_running_loop().call_soon(pipeline._queue.extend, later)
        await pipeline._drain()
        # the lane's worker exports what the drain built (no more: the queue is not drained again)
        await asyncio.gather(
            *(lane.wait_handled(lane.received_total()) for lane in pipeline._lanes)
        )

    asyncio.run(drain_while_a_call_comes_in())
    assert list(pipeline._queue) == later
    assert len(svc.records) == len(first)


def test_partial_batch_is_exported_once_the_interval_passes() -> None:
    """A lone record does not wait for a full batch: the flush interval sends it."""
    svc = SignalService()
    ai_tokentrace.configure(service=svc, batch_size=1000, flush_interval=0.05)
    emit_usage()
    assert svc.wait_for(1)


def test_flush_delivers_everything_and_returns_true() -> None:
    """flush() returns True once every record so far reached every service."""
    a, b = InMemoryTokenUsageService(), InMemoryTokenUsageService()
    ai_tokentrace.configure(service=[a, b], batch_size=1000, flush_interval=FOREVER)
    for _ in range(250):
        emit_usage()
    assert ai_tokentrace.flush(30)
    assert len(a.records) == len(b.records) == 250
    assert ai_tokentrace.stats()["exported"] == 500


def test_hand_off_bound_before_a_replacement_reaches_the_new_pipeline() -> None:
    """A caller that read the hot-path hand-off just before configure() replaced the pipeline
    still gets its record into the new one, not dropped by the closed old one."""
    from ai_tokentrace import _capture

    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    stale = _capture.hand_off
    new = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=new)
    t = _capture.now()
    stale(
        _capture.Capture(
            "openai", "chat.completions", "gpt-test", (3, 2), extract_pair, t, t, 0.0, None
        )
    )
    assert ai_tokentrace.flush(10)
    assert [(r.input_tokens, r.output_tokens) for r in new.records] == [(3, 2)]
    assert ai_tokentrace.stats()["dropped"] == 0


def test_flush_with_nothing_recorded_is_true() -> None:
    """An idle pipeline flushes trivially."""
    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    assert ai_tokentrace.flush(1)


def test_shutdown_flushes_queued_records_and_closes_services() -> None:
    """shutdown() delivers what is queued, then closes each service once."""
    svc = SignalService()
    ai_tokentrace.configure(service=svc, batch_size=1000, flush_interval=FOREVER)
    for _ in range(7):
        emit_usage()
    ai_tokentrace.shutdown(30)
    assert len(svc.records) == 7
    assert svc.closed


def test_shutdown_is_idempotent() -> None:
    """A second shutdown does nothing and does not raise: each service is closed once."""
    closes: list[int] = []

    class Counting(InMemoryTokenUsageService):
        async def aclose(self) -> None:
            closes.append(1)

    svc = Counting()
    ai_tokentrace.configure(service=svc)
    emit_usage()
    ai_tokentrace.shutdown(30)
    ai_tokentrace.shutdown(30)
    assert closes == [1]
    assert len(svc.records) == 1


def test_records_after_shutdown_are_dropped_and_counted() -> None:
    """After shutdown the caller is still never blocked; the record is counted as dropped."""
    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    ai_tokentrace.shutdown(30)
    emit_usage()
    assert ai_tokentrace.stats()["dropped"] == 1


def test_queue_overflow_drops_counts_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """A full queue never blocks: the record is dropped, counted and warned about once."""
    svc = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=svc, max_queue_size=3, batch_size=1000, flush_interval=FOREVER)
    emit_usage()  # starts the loop
    assert ai_tokentrace.flush(30)
    release = block_loop()
    try:
        for _ in range(5):
            emit_usage()
    finally:
        release.set()
    assert ai_tokentrace.stats()["dropped"] == 2
    assert caplog.text.count("queue full") == 1
    assert not ai_tokentrace.flush(30)  # records were lost since the last flush
    assert len(svc.records) == 4


def test_queue_overflow_is_spilled_for_services_with_a_spill_file(tmp_path: Path) -> None:
    """Past the queue bound, a service that spills gets the overflow in its file, not dropped."""
    svc = SignalService()
    svc.spill_path = tmp_path / "overflow.jsonl"
    ai_tokentrace.configure(service=svc, max_queue_size=2, batch_size=1000, flush_interval=FOREVER)
    emit_usage()
    assert ai_tokentrace.flush(30)
    release = block_loop()
    try:
        for n in range(4):
            emit_usage(prompt=n)
    finally:
        release.set()
    ai_tokentrace.flush(30)
    s = ai_tokentrace.stats()
    assert s["dropped"] == 0
    assert s["spilled"] == 2
    assert len(svc.records) == 3
    assert len(svc.spill_path.read_text().splitlines()) == 2


def test_failing_service_is_isolated_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """One service raising does not stop the others; the failure is logged, never raised."""
    bad, good = FailingService(ValueError("boom")), InMemoryTokenUsageService()
    ai_tokentrace.configure(service=[bad, good])
    for _ in range(3):
        emit_usage()
    assert not ai_tokentrace.flush(30)
    assert len(good.records) == 3
    s = ai_tokentrace.stats()
    assert s["failed"] == 3
    assert "boom" in caplog.text


def test_hanging_service_does_not_delay_the_others() -> None:
    """A service that never answers holds up only its own lane."""
    hang, good = HangingService(), SignalService()
    ai_tokentrace.configure(service=[hang, good], export_timeout=FOREVER)
    emit_usage()
    assert hang.started.wait(30)
    emit_usage()
    assert good.wait_for(2)
    hang.release()


def test_hanging_service_is_bounded_by_the_flush_timeout() -> None:
    """flush() gives up (False) at its timeout rather than waiting on a hung service."""
    hang = HangingService()
    ai_tokentrace.configure(service=hang, export_timeout=FOREVER)
    emit_usage()
    assert hang.started.wait(30)
    assert ai_tokentrace.flush(0.2) is False
    hang.release()


def test_export_timeout_turns_a_hang_into_a_failure() -> None:
    """A batch that does not finish within export_timeout counts as failed."""
    hang = HangingService()
    ai_tokentrace.configure(service=hang, export_timeout=0.05)
    emit_usage()
    assert not ai_tokentrace.flush(30)
    assert ai_tokentrace.stats()["failed"] == 1


def test_transient_failures_are_retried_until_delivered() -> None:
    """A retryable error is retried with backoff; the record arrives once."""
    svc = FailingService(ConnectionError("unavailable"), failures=2)
    svc.retry = RetryPolicy(max_attempts=5, initial_delay=0.001, max_delay=0.002)
    ai_tokentrace.configure(service=svc)
    emit_usage()
    assert ai_tokentrace.flush(30)
    assert len(svc.records) == 1
    assert ai_tokentrace.stats()["retried"] == 2


def test_non_retryable_failures_are_not_retried() -> None:
    """Only what the service calls transient is retried."""
    svc = FailingService(ValueError("bad request"))
    svc.retry = RetryPolicy(initial_delay=0.001)
    ai_tokentrace.configure(service=svc)
    emit_usage()
    assert not ai_tokentrace.flush(30)
    assert svc.calls == 1


def test_what_still_fails_is_spilled_to_the_services_spill_file(tmp_path: Path) -> None:
    """With a spill path, a record that cannot be delivered is appended there, not lost."""
    svc = FailingService(ConnectionError("down"))
    svc.retry = RetryPolicy(max_attempts=2, initial_delay=0.001)
    svc.spill_path = tmp_path / "spill" / "svc.jsonl"
    ai_tokentrace.configure(service=svc)
    for _ in range(3):
        emit_usage()
    ai_tokentrace.flush(30)
    lines = svc.spill_path.read_text().splitlines()
    assert len(lines) == 3
    assert ai_tokentrace.stats()["spilled"] == 3
    assert oct(svc.spill_path.stat().st_mode & 0o777) == "0o600"


def test_lane_overflow_spills_when_the_service_has_a_spill_path(tmp_path: Path) -> None:
    """A service that cannot keep up spills its overflow instead of dropping it."""
    hang = HangingService()
    hang.spill_path = tmp_path / "overflow.jsonl"
    ai_tokentrace.configure(service=hang, max_queue_size=2, batch_size=1, export_timeout=FOREVER)
    hang.export(make_record(0))
    assert hang.started.wait(30)  # record 0 is in flight, the lane's queue is empty
    for n in range(1, 6):
        hang.export(make_record(n))  # 1 and 2 fit; 3, 4, 5 overflow
    hang.release()
    ai_tokentrace.flush(30)
    assert [r.record_id for r in hang.records] == ["rec-0", "rec-1", "rec-2"]
    assert ai_tokentrace.stats()["spilled"] == 3
    assert len(hang.spill_path.read_text().splitlines()) == 3


def test_lane_overflow_without_a_spill_path_drops_counts_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service that cannot keep up and has nowhere to spill loses the overflow, counted and
    warned about once; what fitted is delivered."""
    hang = HangingService()
    ai_tokentrace.configure(service=hang, max_queue_size=2, batch_size=1, export_timeout=FOREVER)
    hang.export(make_record(0))
    assert hang.started.wait(30)
    for n in range(1, 6):
        hang.export(make_record(n))  # 1 and 2 fit; 3, 4, 5 overflow
    hang.release()
    assert not ai_tokentrace.flush(30)  # records were lost
    assert [r.record_id for r in hang.records] == ["rec-0", "rec-1", "rec-2"]
    assert ai_tokentrace.stats()["dropped"] == 3
    assert caplog.text.count("HangingService queue full (2 records); dropped") == 1


def test_a_spill_file_that_cannot_be_written_counts_the_records_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Spilling to a path under a regular file fails: the records are counted dropped and the
    error logged once (rate-limited), and the caller never sees it."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    svc = FailingService(ValueError("permanent"))
    svc.spill_path = blocker / "spill.jsonl"
    ai_tokentrace.configure(service=svc, batch_size=1)  # two batches, two failed spills
    for _ in range(2):
        emit_usage()
    assert not ai_tokentrace.flush(30)
    stats = ai_tokentrace.stats()
    assert (stats["spilled"], stats["dropped"]) == (0, 2)
    [logged] = [r for r in caplog.records if "could not spill" in r.getMessage()]
    assert logged.levelname == "ERROR"  # once: the second batch's failure is counted, not logged
    assert "FileExistsError" in logged.getMessage()


def test_a_service_whose_close_hangs_is_left_behind_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """shutdown() is bounded: a close that never returns is warned about, not waited for."""
    import asyncio

    class NeverCloses(InMemoryTokenUsageService):
        async def aclose(self) -> None:
            await asyncio.Event().wait()

    svc = NeverCloses()
    ai_tokentrace.configure(service=svc)
    emit_usage()
    ai_tokentrace.shutdown(0.5)
    assert len(svc.records) == 1  # delivered before the close was asked for
    assert "NeverCloses did not close within" in caplog.text


def test_a_service_whose_close_fails_is_logged_and_shutdown_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FailsToClose(InMemoryTokenUsageService):
        async def aclose(self) -> None:
            raise OSError("socket gone")

    closed = SignalService()
    ai_tokentrace.configure(service=[FailsToClose(), closed])
    emit_usage()
    ai_tokentrace.shutdown(30)
    assert closed.closed
    assert len(closed.records) == 1
    assert "FailsToClose failed to close: OSError('socket gone')" in caplog.text


def test_service_export_is_fire_and_forget_and_flushed() -> None:
    """TokenUsageService.export() queues onto the background loop; flush() covers it."""
    svc = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    svc.export(make_record(1))
    svc.export(make_record(2))
    assert ai_tokentrace.flush(30)
    assert [r.record_id for r in svc.records] == ["rec-1", "rec-2"]


def test_configure_closes_replaced_services_but_not_reused_ones() -> None:
    """Re-configuring delivers what the old pipeline held and closes only services it drops."""
    kept, dropped = SignalService(), SignalService()
    ai_tokentrace.configure(service=[kept, dropped], flush_interval=FOREVER, batch_size=1000)
    emit_usage()
    ai_tokentrace.configure(service=[kept])
    assert len(dropped.records) == 1
    assert dropped.closed
    assert not kept.closed


async def test_recording_inside_a_running_event_loop_starts_no_thread_per_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sync SDK call inside an async handler hands off without a thread or loop per call."""
    svc = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=svc)
    emit_usage()
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", spy)
    before = threading.active_count()
    for _ in range(100):
        emit_usage()
    assert started == []  # not even a short-lived one
    assert threading.active_count() == before
    assert ai_tokentrace.flush(30)
    assert len(svc.records) == 101


def test_unreferenced_pipeline_is_garbage_collected() -> None:
    """The background loop holds no strong reference to a pipeline nobody uses."""
    p = _pipeline.Pipeline([InMemoryTokenUsageService()], load_settings())
    from ai_tokentrace._capture import Capture

    from ._support import extract_pair

    p.submit(Capture("openai", "chat.completions", "m", (1, 1), extract_pair, 0.0, 0.0, 0.0, None))
    assert p.flush(30)
    ref = weakref.ref(p)
    del p
    gc.collect()
    assert ref() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_forked_child_keeps_recording(tmp_path: Path) -> None:
    """After fork the child gets a fresh worker and its records are delivered."""
    out = tmp_path / "child.jsonl"
    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    emit_usage()
    assert ai_tokentrace.flush(30)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            ai_tokentrace.configure(service=ai_tokentrace.JsonlFileTokenUsageService(out))
            for _ in range(3):
                emit_usage()
            code = 0 if ai_tokentrace.flush(30) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(out.read_text().splitlines()) == 3


def test_stats_has_every_counter() -> None:
    """stats() names recorded, exported, dropped, failed, spilled, retried and queued."""
    ai_tokentrace.configure(service=InMemoryTokenUsageService())
    emit_usage()
    ai_tokentrace.flush(30)
    s = ai_tokentrace.stats()
    assert {
        "recorded",
        "exported",
        "dropped",
        "failed",
        "spilled",
        "retried",
        "replayed",
        "queued",
    } <= set(s)
    assert s["recorded"] == 1
    assert s["exported"] == 1
    assert s["queued"] == 0


def test_invalid_setting_values_are_logged_and_replaced(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in the environment never takes the application down."""
    caplog.set_level(logging.WARNING, logger="ai_tokentrace")
    monkeypatch.setenv("AI_TOKENTRACE_BATCH_SIZE", "lots")
    monkeypatch.setenv("AI_TOKENTRACE_FLUSH_INTERVAL", "0.25")
    settings = load_settings()
    assert settings.batch_size == 100
    assert settings.flush_interval == 0.25
    assert "AI_TOKENTRACE_BATCH_SIZE" in caplog.text


def test_the_stream_injection_setting_is_bound_for_the_hot_path_and_asked_for_before_any_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each installed pipeline binds its ``inject_stream_usage`` where a stream's begin reads it;
    asked for before any pipeline exists, the setting installs one from the environment."""
    from ai_tokentrace import _capture
    from ai_tokentrace.integrations import openai as adapter

    monkeypatch.setenv("AI_TOKENTRACE_INJECT_STREAM_USAGE", "off")
    monkeypatch.setenv("AI_TOKENTRACE_SERVICE", "none")
    assert (_pipeline._current, _capture.inject_stream_usage) == (None, None)
    assert adapter._settings_inject() is False
    assert _pipeline._current is not None
    assert _capture.inject_stream_usage is False
    ai_tokentrace.configure(service=InMemoryTokenUsageService(), inject_stream_usage=True)
    assert _capture.inject_stream_usage is True
    assert adapter._settings_inject() is True
