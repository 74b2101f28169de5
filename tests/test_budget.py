"""Budgets: refuse or warn before a call, per period and per user, under threads and tasks.

Calls are driven the way integrations make them: ``before_call`` at the start (where a budget
may refuse), ``emit`` when usage is known. One test goes end to end through a real OpenAI client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import ai_tokentrace
from ai_tokentrace import Budget, BudgetExceededError, _capture, pricing
from ai_tokentrace._budget import BudgetEvent, install_budget
from ai_tokentrace._record import RawUsage
from ai_tokentrace.testing import InMemoryTokenUsageService, fixed_clock

MODEL = "budget-test-model"  # priced at exactly $1 per call of 1,000,000 input tokens
DOLLAR = RawUsage(prompt=1_000_000, completion=0)


@pytest.fixture(autouse=True)
def _clean(memory: InMemoryTokenUsageService) -> Iterator[None]:
    pricing.set_price(MODEL, input_per_mtok=1.0, output_per_mtok=0.0)
    yield
    install_budget(None)
    pricing.clear()


def _raw(payload: RawUsage) -> tuple[RawUsage, None, None]:
    return payload, None, None


def call(model: str = MODEL, usage: RawUsage = DOLLAR) -> None:
    """One SDK call as an integration makes it: guard, then (the request), then emit."""
    _capture.before_call("openai", model)
    _capture.emit("openai", "chat.completions", model, usage, _raw, _capture.now())


def test_raise_mode_refuses_the_call_after_the_limit_is_reached() -> None:
    """Two $1 calls reach a $2 limit; the third is refused with BudgetExceededError."""
    install_budget(Budget(limit_usd=2.0))
    call()
    call()
    with pytest.raises(BudgetExceededError) as info:
        call()
    assert info.value.spent_usd == pytest.approx(2.0)
    assert info.value.limit_usd == 2.0


def test_refused_call_is_never_sent() -> None:
    """A refusal happens in before_call, so no request and no record follow it."""
    budget = Budget(limit_usd=1.0)
    install_budget(budget)
    call()
    sent = []

    def sdk_call() -> None:
        _capture.before_call("openai", MODEL)
        sent.append("request")

    with pytest.raises(BudgetExceededError):
        sdk_call()
    assert sent == []
    assert budget.calls == 1


def test_calls_under_the_limit_pass() -> None:
    """Spend below the limit never refuses."""
    budget = Budget(limit_usd=5.0)
    install_budget(budget)
    for _ in range(4):
        call()
    assert budget.spent() == pytest.approx(4.0)
    assert budget.remaining() == pytest.approx(1.0)


def test_warn_mode_logs_and_calls_back_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    """warn mode lets every call through, warning and calling on_exceed only the first time."""
    events: list[BudgetEvent] = []
    install_budget(Budget(limit_usd=1.0, period="day", mode="warn", on_exceed=events.append))
    with caplog.at_level(logging.WARNING, logger="ai_tokentrace"):
        for _ in range(4):
            call()
    assert len(events) == 1
    assert events[0].spent_usd == pytest.approx(1.0)
    assert sum("budget" in r.message for r in caplog.records) == 1


def test_warn_mode_calls_back_again_in_the_next_period() -> None:
    """A new period is a new budget: the callback fires once in each."""
    events: list[BudgetEvent] = []
    with fixed_clock() as clock:
        install_budget(Budget(limit_usd=1.0, period="hour", mode="warn", on_exceed=events.append))
        call()
        call()
        clock.advance(3600)
        call()
        call()
    assert len(events) == 2
    assert events[0].period_start != events[1].period_start


def test_raise_mode_runs_on_exceed_before_refusing() -> None:
    """on_exceed sees the event in raise mode too, once."""
    events: list[BudgetEvent] = []
    install_budget(Budget(limit_usd=1.0, on_exceed=events.append))
    call()
    for _ in range(2):
        with pytest.raises(BudgetExceededError):
            call()
    assert len(events) == 1


def test_failing_callback_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """An on_exceed that raises is logged; the call still goes ahead in warn mode."""

    def boom(event: BudgetEvent) -> None:
        raise RuntimeError("callback bug")

    install_budget(Budget(limit_usd=0.5, mode="warn", on_exceed=boom))
    call()
    call()
    assert any("on_exceed" in r.message for r in caplog.records)


def test_spend_restarts_at_the_day_boundary() -> None:
    """A daily budget refuses until midnight UTC, then allows calls again."""
    with fixed_clock() as clock:  # 2026-01-01T00:00:00Z
        budget = Budget(limit_usd=2.0, period="day")
        install_budget(budget)
        clock.advance(23 * 3600)
        call()
        call()
        with pytest.raises(BudgetExceededError):
            call()
        clock.advance(3600)  # 2026-01-02T00:00:00Z
        call()
        assert budget.spent() == pytest.approx(1.0)


def test_hourly_period_boundary_is_exact() -> None:
    """One second before the hour is still the old period; on the hour is the new one."""
    with fixed_clock() as clock:
        install_budget(Budget(limit_usd=1.0, period="hour"))
        call()
        clock.advance(3599)
        with pytest.raises(BudgetExceededError):
            call()
        clock.advance(1)
        call()


def test_unlimited_period_never_resets() -> None:
    """period=None accumulates for the life of the budget."""
    with fixed_clock() as clock:
        install_budget(Budget(limit_usd=1.0))
        call()
        clock.advance(40 * 86400)
        with pytest.raises(BudgetExceededError):
            call()


def test_per_user_budgets_are_kept_apart() -> None:
    """per='user_id': one user's spend does not refuse another user's calls."""
    install_budget(Budget(limit_usd=1.0, per="user_id"))
    with ai_tokentrace.trace_tokens(user_id="alice"):
        call()
        with pytest.raises(BudgetExceededError) as info:
            call()
    assert info.value.key == "alice"
    with ai_tokentrace.trace_tokens(user_id="bob"):
        call()


def test_per_model_budget_keys_on_the_requested_model() -> None:
    """per='model': spend on one model does not limit another."""
    pricing.set_price("other-model", input_per_mtok=1.0, output_per_mtok=0.0)
    install_budget(Budget(limit_usd=1.0, per="model"))
    call()
    with pytest.raises(BudgetExceededError):
        call()
    call("other-model")


def test_scoped_budget_limits_only_calls_inside_the_scope() -> None:
    """trace_tokens(budget=...) refuses inside the scope; calls outside are not limited."""
    budget = Budget(limit_usd=1.0)
    with ai_tokentrace.trace_tokens("job", budget=budget):
        call()
        with pytest.raises(BudgetExceededError):
            call()
    call()
    call()
    assert budget.spent() == pytest.approx(1.0)


def test_scoped_budget_counts_nested_scopes() -> None:
    """Calls in an inner scope spend the outer scope's budget."""
    budget = Budget(limit_usd=1.0)
    with ai_tokentrace.trace_tokens("outer", budget=budget):
        with ai_tokentrace.trace_tokens("inner"):
            call()
        with pytest.raises(BudgetExceededError):
            call()


def test_decorator_budget_is_shared_by_every_call_of_the_function() -> None:
    """A budget on a decorated function limits that function's total spend across calls."""

    @ai_tokentrace.trace_tokens("summarize", budget=Budget(limit_usd=2.0))
    def summarize() -> None:
        call()

    summarize()
    summarize()
    with pytest.raises(BudgetExceededError):
        summarize()


def test_unpriced_calls_do_not_spend_but_are_counted() -> None:
    """A model without a price adds nothing to spend; the budget says how many there were."""
    budget = Budget(limit_usd=1.0)
    install_budget(budget)
    for _ in range(3):
        call("acme-unpriced")
    assert budget.spent() == 0.0
    assert budget.unpriced == 3


def test_threads_overshoot_by_at_most_the_calls_in_flight() -> None:
    """N calls that all passed the guard before any finished can overshoot by at most N calls."""
    n = 8
    budget = Budget(limit_usd=1.0)
    install_budget(budget)
    all_started = threading.Barrier(n)

    def one() -> None:
        _capture.before_call("openai", MODEL)  # every call starts while spend is 0
        all_started.wait(timeout=30)
        _capture.emit("openai", "chat.completions", MODEL, DOLLAR, _raw, _capture.now())

    with ThreadPoolExecutor(n) as pool:
        for f in [pool.submit(one) for _ in range(n)]:
            f.result()
    spent = budget.spent()
    assert spent == pytest.approx(n * 1.0)
    assert spent <= budget.limit_usd + n * 1.0  # the documented bound
    with pytest.raises(BudgetExceededError):
        call()


def test_threads_never_exceed_the_bound_under_contention() -> None:
    """Many threads racing: every refused call saw the limit reached, spend stays in bound."""
    n, per_thread = 6, 20
    budget = Budget(limit_usd=10.0)
    install_budget(budget)
    refused = []

    def worker() -> None:
        for _ in range(per_thread):
            try:
                call()
            except BudgetExceededError as exc:
                refused.append(exc.spent_usd)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent() <= budget.limit_usd + n * 1.0
    assert budget.spent() >= budget.limit_usd
    assert all(s >= budget.limit_usd for s in refused)
    assert len(refused) + budget.calls == n * per_thread


async def test_tasks_overshoot_by_at_most_the_calls_in_flight() -> None:
    """asyncio tasks in flight together overshoot by at most their number, then are refused."""
    n = 5
    budget = Budget(limit_usd=1.0)
    install_budget(budget)
    go = asyncio.Event()
    started = 0

    async def one() -> None:
        nonlocal started
        _capture.before_call("openai", MODEL)
        started += 1
        if started == n:
            go.set()
        await go.wait()
        _capture.emit("openai", "chat.completions", MODEL, DOLLAR, _raw, _capture.now())

    await asyncio.gather(*(one() for _ in range(n)))
    assert budget.spent() == pytest.approx(n * 1.0)
    with pytest.raises(BudgetExceededError):
        call()


async def test_scoped_budget_follows_tasks_started_inside_the_scope() -> None:
    """Tasks created inside a budgeted scope spend and are refused by that scope's budget."""
    budget = Budget(limit_usd=2.0)

    async def one() -> None:
        call()

    async with ai_tokentrace.trace_tokens("batch", budget=budget):
        await asyncio.gather(one(), one())
        with pytest.raises(BudgetExceededError):
            await asyncio.create_task(one())
    call()  # outside the scope: not limited


def test_uninstrument_removes_the_process_budget() -> None:
    """uninstrument() drops the budget given to instrument()."""
    ai_tokentrace.instrument(budget=Budget(limit_usd=0.0), integrations=[])
    with pytest.raises(BudgetExceededError):
        call()
    ai_tokentrace.uninstrument()
    call()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit_usd": -1},
        {"limit_usd": 1, "period": "fortnight"},
        {"limit_usd": 1, "per": "colour"},
        {"limit_usd": 1, "mode": "explode"},
    ],
)
def test_invalid_budget_settings_are_rejected(kwargs: dict[str, object]) -> None:
    """Mistakes in a Budget's settings raise ValueError when it is made."""
    with pytest.raises(ValueError):
        Budget(**kwargs)  # type: ignore[arg-type]


def test_budget_refuses_a_real_openai_client_call_before_it_is_sent() -> None:
    """End to end: a real OpenAI client on a fake transport is refused without a request."""
    fake_openai = pytest.importorskip("ai_tokentrace.testing.fake_openai")
    client = fake_openai.fake_openai_client()
    pricing.set_price("gpt-4o-mini", input_per_mtok=1_000_000.0, output_per_mtok=0.0)
    ai_tokentrace.instrument(budget=Budget(limit_usd=1.0), integrations=["openai"])
    try:
        messages = [{"role": "user", "content": "hello"}]
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        sent = len(client._fake.requests)
        with pytest.raises(BudgetExceededError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert len(client._fake.requests) == sent
    finally:
        ai_tokentrace.uninstrument()


def test_a_process_wide_budget_set_while_a_stream_runs_settles_that_stream() -> None:
    """A stream begun before ``instrument(budget=...)`` is settled by the budget as it ends
    (not queued past it for the loop): the next call is refused."""
    fake_openai = pytest.importorskip("ai_tokentrace.testing.fake_openai")
    client = fake_openai.fake_openai_client()
    pricing.set_price("gpt-4o-mini", input_per_mtok=1_000_000.0, output_per_mtok=0.0)
    messages = [{"role": "user", "content": "hello"}]
    ai_tokentrace.instrument(integrations=["openai"])
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # seen: fast
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
        install_budget(Budget(limit_usd=1.0))
        assert [chunk for chunk in stream if chunk.choices]
        with pytest.raises(BudgetExceededError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    finally:
        ai_tokentrace.uninstrument()


def test_a_process_wide_budget_set_while_a_gemini_stream_runs_settles_that_stream() -> None:
    """The same for a Gemini stream, begun (its request sent) before the budget is set."""
    fake_genai = pytest.importorskip("ai_tokentrace.testing.fake_genai")
    client = fake_genai.fake_genai_client(fake_genai.FakeGemini())
    pricing.set_price("gemini-2.5-flash", input_per_mtok=1_000_000.0, output_per_mtok=0.0)
    ai_tokentrace.instrument(integrations=["genai"])
    try:
        stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        next(stream)
        install_budget(Budget(limit_usd=1.0))
        assert list(stream)
        with pytest.raises(BudgetExceededError):
            client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    finally:
        ai_tokentrace.uninstrument()


def test_a_scope_budget_leaves_unscoped_calls_on_the_snapshot_path() -> None:
    """Budgets on scopes see only the calls inside them: other calls stay on the fast path."""
    with ai_tokentrace.trace_tokens("capped", budget=Budget(limit_usd=5.0)):
        pass
    assert _capture.may_snapshot()


def test_a_process_wide_budget_watches_unscoped_calls_until_removed() -> None:
    """``instrument(budget=...)`` routes every call past the budget; removing it ends that."""
    install_budget(Budget(limit_usd=5.0))
    assert not _capture.may_snapshot()
    install_budget(None)
    assert _capture.may_snapshot()
