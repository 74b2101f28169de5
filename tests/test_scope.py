"""trace_tokens: one object as decorator (bare or called) and (async) context manager."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

import ai_tokentrace
from ai_tokentrace import TokenUsage, carry_scope, current_scope, trace_tokens
from ai_tokentrace._capture import emit, now
from ai_tokentrace.testing import InMemoryTokenUsageService

from ._support import emit_usage, extract_pair


def test_bare_decorator_names_the_scope_after_the_function(records) -> None:  # type: ignore[no-untyped-def]
    """@trace_tokens with no arguments uses the function's qualified name."""

    @trace_tokens
    def summarize() -> None:
        emit_usage()

    summarize()
    assert records()[0].trace_name.endswith("summarize")


def test_called_decorator_labels_every_record(records) -> None:  # type: ignore[no-untyped-def]
    """Name, user, session, tags and metadata reach the record."""

    @trace_tokens("summarize", user_id="u1", session_id="s1", tags=["batch"], metadata={"k": "v"})
    def work() -> None:
        emit_usage()

    work()
    rec = records()[0]
    assert (rec.trace_name, rec.user_id, rec.session_id) == ("summarize", "u1", "s1")
    assert rec.tags == ("batch",)
    assert dict(rec.metadata) == {"k": "v"}


def test_decorator_keeps_the_function_signature_and_name() -> None:
    """The wrapper is transparent: name, docstring and return value are the function's."""

    @trace_tokens("x")
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add"
    assert add.__doc__ == "Adds."


async def test_async_function_runs_inside_its_scope(records) -> None:  # type: ignore[no-untyped-def]
    """async def functions are scoped across their awaits."""

    @trace_tokens("async-work")
    async def work() -> int:
        await asyncio.sleep(0)
        emit_usage()
        return 7

    assert await work() == 7
    assert records()[0].trace_name == "async-work"


def test_generator_scope_is_active_while_it_runs_not_between_steps(records) -> None:  # type: ignore[no-untyped-def]
    """A generator's records carry its scope; the caller's code between steps does not."""

    @trace_tokens("gen")
    def gen() -> Iterator[int]:
        for i in range(2):
            emit_usage(prompt=i + 1)
            yield i

    for _ in gen():
        assert current_scope() is None
        emit_usage(prompt=100)
    recs = records()
    assert [(r.input_tokens, r.trace_name) for r in recs] == [
        (1, "gen"),
        (100, None),
        (2, "gen"),
        (100, None),
    ]


def test_generator_send_and_throw_are_forwarded() -> None:
    """send() values and thrown exceptions reach the wrapped generator."""

    @trace_tokens("gen")
    def echo() -> Iterator[object]:
        received = yield "ready"
        try:
            yield received
        except KeyError:
            yield "caught"

    g = echo()
    assert next(g) == "ready"
    assert g.send("hello") == "hello"
    assert g.throw(KeyError("k")) == "caught"
    g.close()


def test_generator_return_value_is_kept() -> None:
    """`yield from` a traced generator still gets its return value."""

    @trace_tokens("gen")
    def inner() -> Iterator[int]:
        yield 1
        return 42

    def outer() -> Iterator[int]:
        result = yield from inner()
        yield result

    assert list(outer()) == [1, 42]


async def test_async_generator_scope_is_active_while_it_runs(records) -> None:  # type: ignore[no-untyped-def]
    """Async generators are scoped per step, like generators."""

    @trace_tokens("agen")
    async def agen() -> AsyncIterator[int]:
        for i in range(3):
            emit_usage(prompt=i + 1)
            yield i

    seen = [i async for i in agen()]
    assert seen == [0, 1, 2]
    assert [r.trace_name for r in records()] == ["agen"] * 3


def test_with_block_yields_the_scope_with_totals(records) -> None:  # type: ignore[no-untyped-def]
    """`with trace_tokens(...) as scope` totals the records made inside."""
    with trace_tokens("step") as scope:
        emit_usage(prompt=10, completion=5)
        emit_usage(prompt=1, completion=2)
    assert scope.name == "step"
    assert scope.usage == TokenUsage(11, 7, 18, 0, 0)
    assert len(scope.records) == 2
    assert [r.trace_name for r in records()] == ["step", "step"]


async def test_async_with_block_yields_the_scope(records) -> None:  # type: ignore[no-untyped-def]
    """`async with trace_tokens(...)` works like `with`."""
    async with trace_tokens("astep", user_id="u") as scope:
        emit_usage()
    assert scope.usage.total_tokens == 15
    assert records()[0].user_id == "u"


def test_scope_usage_is_readable_while_the_scope_is_open(memory) -> None:  # type: ignore[no-untyped-def]
    """A running total is available before the block ends."""
    with trace_tokens("running") as scope:
        emit_usage(prompt=3, completion=0)
        assert scope.usage.input_tokens == 3
        emit_usage(prompt=4, completion=0)
        assert scope.usage.input_tokens == 7


def test_nested_scopes_override_inherit_union_and_merge(records) -> None:  # type: ignore[no-untyped-def]
    """Inner name wins, labels are inherited or overridden, tags unioned, metadata merged."""
    with trace_tokens(  # noqa: SIM117 - nesting is the point
        "outer", user_id="u1", session_id="s1", tags=["a"], metadata={"x": 1, "y": 1}
    ):
        with trace_tokens("inner", user_id="u2", tags=["b", "a"], metadata={"y": 2}):
            emit_usage()
    rec = records()[0]
    assert rec.trace_name == "inner"
    assert (rec.user_id, rec.session_id) == ("u2", "s1")
    assert rec.tags == ("a", "b")
    assert dict(rec.metadata) == {"x": 1, "y": 2}


def test_outer_totals_include_inner_scopes(memory) -> None:  # type: ignore[no-untyped-def]
    """A record made in an inner scope counts in every enclosing scope."""
    with trace_tokens("outer") as outer:
        emit_usage(prompt=1, completion=1)
        with trace_tokens("inner") as inner:
            emit_usage(prompt=10, completion=10)
    assert inner.usage.total_tokens == 20
    assert outer.usage.total_tokens == 22
    assert len(outer.records) == 2


def test_cost_is_a_lower_bound_and_unpriced_counts_unknown_prices(memory) -> None:  # type: ignore[no-untyped-def]
    """cost_usd sums priced records; unpriced says how many had no price."""
    with trace_tokens("cost") as scope:
        emit("openai", "chat.completions", "no-such-model-xyz", (10, 5), extract_pair, now())
        emit("openai", "chat.completions", "gpt-4o-mini", (1000, 500), extract_pair, now())
    priced = [r for r in scope.records if r.cost_usd is not None]
    assert scope.unpriced == 1
    assert len(priced) == 1
    assert priced[0].cost_usd > 0
    assert scope.cost_usd == priced[0].cost_usd


async def test_totals_are_exact_under_gather(memory) -> None:  # type: ignore[no-untyped-def]
    """Tasks started with asyncio.gather inherit the scope; nothing is lost or doubled."""

    async def call(i: int) -> None:
        await asyncio.sleep(0)
        emit_usage(prompt=i, completion=0)

    with trace_tokens("gathered") as scope:
        await asyncio.gather(*(call(i) for i in range(100)))
    assert len(scope.records) == 100
    assert scope.usage.input_tokens == sum(range(100))


async def test_scope_follows_to_thread(records) -> None:  # type: ignore[no-untyped-def]
    """asyncio.to_thread copies the context, so the scope goes along."""
    with trace_tokens("threaded") as scope:
        await asyncio.to_thread(emit_usage)
    assert scope.usage.total_tokens == 15
    assert records()[0].trace_name == "threaded"


def test_carry_scope_is_the_way_into_a_thread_pool(records) -> None:  # type: ignore[no-untyped-def]
    """Plain thread pools do not copy context; carry_scope(fn) binds the active scope."""
    with trace_tokens("pool") as scope, ThreadPoolExecutor(4) as pool:
        list(pool.map(carry_scope(lambda _: emit_usage()), range(40)))
    assert len(scope.records) == 40
    assert {r.trace_name for r in records()} == {"pool"}


def test_plain_thread_pool_without_carry_scope_is_not_attributed(records) -> None:  # type: ignore[no-untyped-def]
    """Without carry_scope a pool thread has no scope (documented behaviour)."""
    with trace_tokens("pool") as scope, ThreadPoolExecutor(2) as pool:
        pool.submit(emit_usage).result()
    assert scope.records == ()
    assert records()[0].trace_name is None


def test_totals_are_exact_under_threads(memory) -> None:  # type: ignore[no-untyped-def]
    """Eight threads recording into one scope: every record is counted once."""
    with trace_tokens("threads") as scope:
        work = carry_scope(lambda: [emit_usage(prompt=1, completion=0) for _ in range(250)])
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert scope.usage.input_tokens == 2000
    assert len({r.record_id for r in scope.records}) == 2000


def test_record_completed_after_the_scope_closed_keeps_its_request_scope(records) -> None:  # type: ignore[no-untyped-def]
    """A stream requested inside a scope and finished later counts in that scope."""
    with trace_tokens("requested-here") as scope:
        captured = current_scope()
    emit("openai", "chat.completions", "gpt-test", (4, 4), extract_pair, now(), scope=captured)
    assert scope.usage.total_tokens == 8
    assert records()[0].trace_name == "requested-here"


def test_user_exceptions_pass_through_unchanged() -> None:
    """The caller's exception is neither swallowed nor wrapped, and the scope is closed."""

    class Boom(Exception):
        pass

    @trace_tokens("fails")
    def fails() -> None:
        raise Boom("mine")

    with pytest.raises(Boom, match="mine"):
        fails()
    with pytest.raises(Boom), trace_tokens("also"):
        raise Boom
    assert current_scope() is None


def test_default_labels_apply_outside_and_inside_scopes(records) -> None:  # type: ignore[no-untyped-def]
    """set_default_labels gives every record a per-process label (e.g. the service name)."""
    ai_tokentrace.set_default_labels(tags=["svc"], metadata={"service": "api"})
    try:
        emit_usage()
        with trace_tokens("x", tags=["t"]):
            emit_usage()
    finally:
        ai_tokentrace.set_default_labels()
    first, second = records()
    assert first.tags == ("svc",)
    assert dict(first.metadata) == {"service": "api"}
    assert second.tags == ("svc", "t")
    assert second.trace_name == "x"


def test_default_labels_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AI_TOKENTRACE_USER_ID / _TAGS / _METADATA set labels with no code."""
    from ai_tokentrace import _scope

    monkeypatch.setenv("AI_TOKENTRACE_USER_ID", "batch-user")
    monkeypatch.setenv("AI_TOKENTRACE_TAGS", "nightly, etl")
    monkeypatch.setenv("AI_TOKENTRACE_METADATA", '{"team": "search"}')
    labels = _scope._labels_from_env()
    assert labels is not None
    assert labels.user_id == "batch-user"
    assert labels.tags == ("nightly", "etl")
    assert dict(labels.metadata) == {"team": "search"}


def test_records_go_to_the_configured_service_inside_a_scope() -> None:
    """Scopes only label: records still flow to the configured services."""
    svc = InMemoryTokenUsageService()
    ai_tokentrace.configure(service=svc)
    with trace_tokens("s"):
        emit_usage()
    assert ai_tokentrace.flush(30)
    assert len(svc.records) == 1


def test_a_scope_with_nothing_counted_is_still_true() -> None:
    """Hooks test ``current_scope()`` for truth (Gemini's stream carrier is switched on by
    it): an empty scope must not read as no scope."""
    with trace_tokens("empty") as scope:
        assert scope.usage.total_tokens == 0
        assert bool(scope) is True
