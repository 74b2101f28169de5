"""The one background loop: shared, lazily started, isolated from the caller's context."""

from __future__ import annotations

import asyncio
import threading

from ai_tokentrace import _internal, async_utils, trace_tokens
from ai_tokentrace._scope import current_scope


def test_one_loop_thread_serves_every_caller() -> None:
    """Every submit runs on the same thread, whichever thread asked."""
    seen: set[int] = set()

    async def where() -> None:
        seen.add(threading.get_ident())

    async_utils.submit(where()).result(30)
    t = threading.Thread(target=lambda: async_utils.submit(where()).result(30))
    t.start()
    t.join()
    assert len(seen) == 1
    assert threading.get_ident() not in seen


def test_work_on_the_loop_is_suppressed_and_sees_no_user_scope() -> None:
    """Services run with instrumentation suppressed and without the caller's scope."""

    async def probe() -> tuple[bool, object]:
        return _internal.suppressed(), current_scope()

    with trace_tokens("user-scope"):
        suppressed, scope = async_utils.submit(probe()).result(30)
    assert suppressed is True
    assert scope is None


async def test_submit_works_from_inside_a_running_loop() -> None:
    """A caller already inside an event loop can hand work over without deadlock."""

    async def answer() -> int:
        return 42

    fut = async_utils.submit(answer())
    assert await asyncio.wrap_future(fut) == 42


def test_default_executor_keeps_working_for_file_io() -> None:
    """run_in_executor on the loop uses ai-tokentrace's own I/O threads."""

    async def in_executor() -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: threading.current_thread().name)

    name = async_utils.submit(in_executor()).result(30)
    assert name.startswith("ai-tokentrace-io")
