"""Small test doubles for the pipeline: services that signal, hang or fail on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pytest

from ai_tokentrace import TokenUsageRecord, TokenUsageService, async_utils
from ai_tokentrace._capture import Capture, emit, now
from ai_tokentrace._record import RawUsage


def extract_pair(payload: tuple[int, int]) -> tuple[RawUsage, str, str]:
    return RawUsage(prompt=payload[0], completion=payload[1]), "model-2026", "resp"


def emit_usage(prompt: int = 10, completion: int = 5, model: str = "gpt-test") -> Capture | None:
    """What an integration does for one finished call."""
    return emit("openai", "chat.completions", model, (prompt, completion), extract_pair, now())


def block_loop() -> threading.Event:
    """Occupy the background loop until the returned event is set (to fill queues deterministically)."""
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(30)

    async_utils.call_soon(hold)
    assert entered.wait(30)
    return release


@contextmanager
def loop_held() -> Iterator[list[Any]]:
    """Keep the background loop busy for the block; afterwards the list holds what the block
    left in the pipeline's queue (the items exactly as the caller's thread handed them off)."""
    import ai_tokentrace
    from ai_tokentrace import _pipeline

    assert ai_tokentrace.flush(10)
    release = block_loop()
    queued: list[Any] = []
    try:
        yield queued
        queued.extend(_pipeline.current()._queue)
    finally:
        release.set()


# Record fields that two records of the same call need not share: identity, time and labels.
PER_CALL_FIELDS = frozenset(
    {
        "record_id",
        "timestamp",
        "latency_ms",
        "response_id",
        "request_id",
        "trace_name",
        "user_id",
        "session_id",
        "tags",
        "metadata",
    }
)


def call_fields(rec: TokenUsageRecord) -> dict[str, Any]:
    """Every field of ``rec`` that describes the call itself (what the provider reported)."""
    return {k: v for k, v in rec._asdict().items() if k not in PER_CALL_FIELDS}


def genai_prices_cost(
    rec: TokenUsageRecord, provider_id: str, context: dict[str, str] | None = None
) -> float:
    """What genai-prices' own calculation charges for a record's model and text buckets, in a
    request ``context`` (its ``price_context``: a service tier, batch processing)."""
    from genai_prices import Usage, calc_price

    usage = Usage(
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cache_read_tokens=rec.cached_input_tokens,
    )
    got = calc_price(
        usage,
        str(rec.model),
        provider_id=provider_id,
        genai_request_timestamp=rec.timestamp,
        price_context=context,
    )
    return float(got.total_price)


def priced_apart(
    model: str, provider_id: str, context: dict[str, str], when: datetime | None = None
) -> bool:
    """Whether this genai-prices' table prices ``model`` apart in a request ``context`` (a
    service tier, batch processing) at ``when`` (now if None): older tables lack some variants."""
    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    when = when or datetime.now(timezone.utc)
    prices = {
        calc_price(
            usage, model, provider_id=provider_id, genai_request_timestamp=when, price_context=c
        ).total_price
        for c in (context, None)
    }
    return len(prices) == 2


def make_record(n: int = 0, **fields: object) -> TokenUsageRecord:
    values: dict[str, object] = {
        "record_id": f"rec-{n}",
        "timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "provider": "openai",
        "operation": "chat.completions",
        "model": "gpt-test",
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
    }
    values.update(fields)
    return TokenUsageRecord(**values)  # type: ignore[arg-type]


class SignalService(TokenUsageService):
    """Records batches and lets a test wait (on a condition, not a sleep) for a count."""

    def __init__(self) -> None:
        self.records: list[TokenUsageRecord] = []
        self.batches: list[int] = []
        self.closed = False
        self._cond = threading.Condition()

    async def aexport(self, record: TokenUsageRecord) -> None:
        await self.aexport_batch([record])

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        with self._cond:
            self.records.extend(records)
            self.batches.append(len(records))
            self._cond.notify_all()

    async def aclose(self) -> None:
        self.closed = True

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.records) >= count, timeout)


class HangingService(TokenUsageService):
    """Never finishes an export until :meth:`release` is called."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.records: list[TokenUsageRecord] = []
        self._gate: asyncio.Event | None = None

    async def aexport(self, record: TokenUsageRecord) -> None:
        if self._gate is None:
            self._gate = asyncio.Event()
        self.started.set()
        await self._gate.wait()
        self.records.append(record)

    def release(self) -> None:
        from ai_tokentrace import async_utils

        def open_gate() -> None:
            if self._gate is None:
                self._gate = asyncio.Event()
            self._gate.set()

        async_utils.call_soon(open_gate)


class FailingService(TokenUsageService):
    """Raises on every export, or on the first ``failures`` exports when given."""

    def __init__(self, exc: BaseException | None = None, failures: int | None = None) -> None:
        self.exc = exc or ConnectionError("service down")
        self.failures = failures
        self.calls = 0
        self.records: list[TokenUsageRecord] = []

    async def aexport(self, record: TokenUsageRecord) -> None:
        await self.aexport_batch([record])

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise self.exc
        self.records.extend(records)

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, ConnectionError)


# The states in which a call must be captured as it happens (or, suppressed, not at all).
REFUSALS = ["scoped budget", "suppressed", "process-wide budget"]


def needing_a_capture_at_once(
    condition: str, stack: contextlib.ExitStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enter one of the states in which a call must be captured as it happens (or not at all)."""
    import ai_tokentrace
    from ai_tokentrace import _capture
    from ai_tokentrace._internal import suppressing

    if condition == "scoped budget":
        stack.enter_context(ai_tokentrace.trace_tokens("s", budget=ai_tokentrace.Budget(1.0)))
    elif condition == "suppressed":
        stack.enter_context(suppressing())
    else:
        monkeypatch.setattr(_capture, "watching_unscoped", True)


class LoopbackWebsocketServer:
    """A real websocket server on a free loopback port, serving on a thread of its own until
    :meth:`close`; a subclass scripts the other side in ``_handle(ws)``."""

    def __init__(self, ssl_context: Any = None) -> None:
        from websockets.sync.server import serve

        self._server = serve(self._handle, "127.0.0.1", 0, ssl=ssl_context)
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, ws: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(10)


@contextlib.asynccontextmanager
async def aiohttp_server(
    answer: Callable[[str, str, bytes, dict[str, str]], Any], piece: int = 0
) -> AsyncIterator[Any]:
    """A loopback aiohttp server for SDKs whose aiohttp traffic no httpx transport can fake:
    ``answer(method, url, body, headers)`` gives an httpx-style response (a fake's), whose
    body is written as it comes, or ``piece`` bytes at a time. Yields aiohttp's ``TestServer``."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def handle(request: Any) -> Any:
        body = await request.read()
        answered = answer(request.method, str(request.url), body, dict(request.headers))
        out = web.StreamResponse(
            status=answered.status_code,
            headers={"content-type": answered.headers["content-type"]},
        )
        await out.prepare(request)
        for part in answered.iter_bytes():
            for at in range(0, len(part), piece or max(len(part), 1)):
                await out.write(part[at : at + piece] if piece else part)
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
