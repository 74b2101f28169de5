"""One daemon thread running one asyncio loop, shared by every service.

Started lazily on the first record. Callers on any thread (including threads that are running
their own event loop) hand work over with :func:`call_soon` / :func:`submit`; nothing here ever
starts a thread or a loop per call.

The loop gets its own small I/O executor for ``run_in_executor`` (aiofiles uses it) because the
standard ``ThreadPoolExecutor`` refuses work once the interpreter has begun to exit, which is
exactly when the last records must still be written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._internal import _suppressed, logger

__all__ = ["BackgroundLoop", "background_loop", "call_soon", "in_loop_thread", "submit"]

T = TypeVar("T")


class _IOExecutor(concurrent.futures.ThreadPoolExecutor):
    """A fixed set of daemon worker threads that keep working during interpreter shutdown.

    Subclasses ThreadPoolExecutor only because asyncio insists on one as the default executor;
    ``submit`` and ``shutdown`` are its own.
    """

    def __init__(self, workers: int = 2) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="ai-tokentrace-io")
        self._io_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._io_threads = [
            threading.Thread(target=self._work, name=f"ai-tokentrace-io-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._io_threads:
            t.start()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._io_queue.put((fut, fn, args, kwargs))
        return fut

    def _work(self) -> None:
        while True:
            item = self._io_queue.get()
            if item is None:
                return
            fut, fn, args, kwargs = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._io_threads:
            self._io_queue.put(None)


class BackgroundLoop:
    """The shared loop; re-created in a forked child on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Work on the loop runs in this context: no user scope, instrumentation suppressed.
        self._context = contextvars.Context()
        self._context.run(_suppressed.set, True)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_IOExecutor())
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            except BaseException:  # pragma: no cover - the loop only stops on purpose
                logger.exception("ai-tokentrace background loop stopped unexpectedly")

        thread = threading.Thread(
            target=self._context.copy().run, args=(run,), name="ai-tokentrace", daemon=True
        )
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    @property
    def running(self) -> bool:
        return self._loop is not None

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule ``fn`` on the loop from any thread, in the loop's own context."""
        self.loop.call_soon_threadsafe(fn, *args, context=self._context)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; the returned future can be waited on from any other thread."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:
            task = asyncio.ensure_future(coro)

            def done(t: asyncio.Future[T]) -> None:
                if fut.cancelled():
                    return
                if t.cancelled():
                    fut.cancel()
                elif (exc := t.exception()) is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(t.result())

            task.add_done_callback(done)

        self.call_soon(start)
        return fut

    def _after_fork_in_child(self) -> None:
        # The parent's loop thread does not exist here; start a fresh one when next needed.
        self._lock = threading.Lock()
        self._loop = None
        self._thread = None


_background = BackgroundLoop()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_background._after_fork_in_child)


def background_loop() -> BackgroundLoop:
    return _background


def call_soon(fn: Callable[..., Any], *args: Any) -> None:
    _background.call_soon(fn, *args)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    return _background.submit(coro)


def in_loop_thread() -> bool:
    return _background.in_loop_thread()
