"""The Agents API (beta): one record per session turn, counted once when first seen ended."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import openai
import pytest

import ai_tokentrace
from ai_tokentrace.integrations import _openai_agents as agents
from ai_tokentrace.testing.fake_openai import FakeOpenAI

from ..._support import genai_prices_cost
from .conftest import Api, method

pytestmark = pytest.mark.usefixtures("instrumented")

AGENT = {"model": "gpt-5-mini", "instructions": "Write clean code and run it."}
ENV = {"type": "openai_hosted"}
ASK = "Create tree.py, a script that prints the files here as a tree. Run it."
ROOT_TURN_EVENTS = [
    "agent.session.turn.created",
    "agent.session.turn.output_text.delta",
    "agent.session.turn.completed",
]


@pytest.fixture(params=["direct", "wrapper"])
def hook_form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _has_agents(instrumented: Any) -> None:
    method(Api("sync", FakeOpenAI()).client, "beta.agents.sessions")  # skips on older SDKs


def fresh(api: Api, **fake: Any) -> Api:
    """A client of the same kind (sync or async) on a fake set up as ``fake`` says."""
    return Api(api.kind, FakeOpenAI(**fake))


async def start(api: Api, text: str = ASK) -> Any:
    """A session created with input: its first turn is running."""
    return await api.call(
        lambda c: c.beta.agents.sessions.create(agent=AGENT, environment=ENV, input=text)
    )


async def follow(api: Api, session_id: str) -> list[Any]:
    """Read the session's event stream to its end."""
    stream = await api.call(lambda c: c.beta.agents.sessions.events.stream(session_id))
    return await api.drain(stream)


async def send(api: Api, session_id: str, text: str) -> None:
    message = {"type": "message", "role": "user", "content": text}
    await api.call(lambda c: c.beta.agents.sessions.events.create(session_id, events=[message]))


async def retrieve(api: Api, session_id: str, turn_id: str) -> Any:
    return await api.call(
        lambda c: c.beta.agents.sessions.turns.retrieve(turn_id, session_id=session_id)
    )


def turn_of(events: list[Any], n: int = 0) -> Any:
    """The ``n``-th turn ended in ``events``."""
    ends = ("completed", "failed", "cancelled")
    return [e.turn for e in events if e.type.rpartition(".")[2] in ends and "turn" in e.type][n]


async def test_a_turn_is_counted_once_when_its_event_stream_ends_it(api: Api, records) -> None:
    session = await start(api)
    turn = turn_of(await follow(api, session.id))
    await retrieve(api, session.id, turn.id)
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.response_id) == (
        "openai",
        "agents.turns",
        "gpt-5-mini",
        turn.id,
    )
    assert (rec.status, rec.streamed, rec.usage_available) == ("ok", False, True)


async def test_the_caller_keeps_the_sdks_stream_and_every_event(api: Api) -> None:
    session = await start(api)
    stream = await api.call(lambda c: c.beta.agents.sessions.events.stream(session.id))
    assert type(stream) is (openai.AsyncStream if api.is_async else openai.Stream)
    events = await api.drain(stream)
    assert [e.type for e in events] == [*ROOT_TURN_EVENTS, "agent.session.idle"]


async def test_a_turn_record_holds_the_turns_usage(api: Api, records) -> None:
    session = await start(api, "word " * 40)  # a long prompt: cached tokens too
    turn = turn_of(await follow(api, session.id))
    [rec] = records()
    usage = turn.usage
    assert (rec.input_tokens, rec.output_tokens, rec.total_tokens) == (
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
    )
    assert rec.cached_input_tokens == usage.input_tokens_details.cached_tokens > 0
    assert rec.reasoning_tokens == usage.output_tokens_details.reasoning_tokens > 0
    assert rec.usage_details == {"agent_session": session.id}


async def test_a_turn_is_dated_and_timed_by_the_turn_itself(api: Api, records) -> None:
    session = await start(api)
    turn = turn_of(await follow(api, session.id))
    [rec] = records()
    assert rec.timestamp == datetime.fromtimestamp(turn.completed_at, tz=timezone.utc)
    assert rec.latency_ms == (turn.completed_at - turn.started_at) * 1000.0


async def test_a_turn_is_priced_at_its_agents_model(api: Api, records) -> None:
    session = await start(api)
    await follow(api, session.id)
    [rec] = records()
    assert rec.cost_usd is not None
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "openai"))


async def test_a_turn_found_ended_by_a_retrieve_is_counted_once(api: Api, records) -> None:
    session = await start(api)
    [first] = (await api.call(lambda c: c.beta.agents.sessions.turns.list(session.id))).data
    statuses = [(await retrieve(api, session.id, first.id)).status for _ in range(3)]
    assert statuses == ["in_progress", "completed", "completed"]
    [rec] = records()
    assert (rec.operation, rec.model, rec.response_id) == ("agents.turns", "gpt-5-mini", first.id)


async def test_a_subagents_turns_are_counted_as_turns_of_their_own(api: Api, records) -> None:
    api = fresh(api, subagent_turns=2)
    session = await start(api)
    events = await follow(api, session.id)
    turns = [turn_of(events, n) for n in range(3)]
    got = {r.response_id: r for r in records()}
    assert sorted(got) == sorted(t.id for t in turns)
    for turn in turns:
        rec = got[turn.id]
        assert rec.input_tokens == turn.usage.input_tokens
        assert rec.usage_details.get("subagent") == turn.subagent_id
        assert rec.model == "gpt-5-mini"  # the session's: the subagent's agent is not known


async def test_a_session_created_as_a_stream_counts_its_first_turn(api: Api, records) -> None:
    with ai_tokentrace.trace_tokens("create") as made:
        stream = await api.call(
            lambda c: c.beta.agents.sessions.create(
                agent=AGENT, environment=ENV, input=ASK, stream=True
            )
        )
    events = await api.drain(stream)
    assert [e.type for e in events] == [
        "agent.session.created",
        *ROOT_TURN_EVENTS,
        "agent.session.idle",
    ]
    [rec] = records()
    assert (rec.response_id, rec.model) == (turn_of(events).id, "gpt-5-mini")
    assert made.records == (rec,)


async def test_a_session_created_as_a_stream_gives_its_scope_to_a_turn_found_later(
    api: Api, records
) -> None:
    """The stream let go before its turn ended: a retrieve elsewhere counts the turn in the
    scope that created the session."""
    with ai_tokentrace.trace_tokens("create") as made:
        stream = await api.call(
            lambda c: c.beta.agents.sessions.create(
                agent=AGENT, environment=ENV, input=ASK, stream=True
            )
        )
        first = await stream.__anext__() if api.is_async else next(stream)
        await api.close(stream)
    assert first.type == "agent.session.created"
    [turn] = (await api.call(lambda c: c.beta.agents.sessions.turns.list(first.session.id))).data
    with ai_tokentrace.trace_tokens("poller") as poller:
        for _ in range(2):
            await retrieve(api, first.session.id, turn.id)
    [rec] = records()
    assert (rec.response_id, rec.trace_name) == (turn.id, "create")
    assert made.records == (rec,)
    assert poller.records == ()


async def test_a_turn_counts_in_the_scope_its_input_was_sent_in(api: Api, records) -> None:
    session = await start(api)
    await follow(api, session.id)
    with ai_tokentrace.trace_tokens("ask", user_id="u1") as asked:
        await send(api, session.id, "Now add a --depth flag.")
    with ai_tokentrace.trace_tokens("reader") as reader:
        events = await follow(api, session.id)
    first, second = records()
    assert second.response_id == turn_of(events).id
    assert (second.trace_name, second.user_id) == ("ask", "u1")
    assert asked.records == (second,)
    assert reader.records == ()
    assert first.trace_name is None


async def test_input_sent_outside_any_scope_leaves_its_turn_to_the_reading_scope(
    api: Api, records
) -> None:
    with ai_tokentrace.trace_tokens("create"):
        session = await start(api)
    await follow(api, session.id)
    await send(api, session.id, "Now add a --depth flag.")
    with ai_tokentrace.trace_tokens("reader") as reader:
        await follow(api, session.id)
    first, second = records()
    assert (first.trace_name, second.trace_name) == ("create", "reader")
    assert reader.records == (second,)


async def test_a_turn_of_a_session_seen_nowhere_here_counts_unpriced_in_the_reading_scope(
    api: Api, records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process made the session and sent its input: no model, no price."""
    session = await start(api)
    monkeypatch.setattr(agents, "_models", {})
    monkeypatch.setattr(agents, "_scopes", {})
    with ai_tokentrace.trace_tokens("reader") as reader:
        await follow(api, session.id)
    [rec] = records()
    assert (rec.model, rec.cost_usd) == (None, None)
    assert reader.records == (rec,)


async def test_a_session_retrieved_here_gives_its_turns_their_model(
    api: Api, records, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await start(api)
    monkeypatch.setattr(agents, "_models", {})
    await api.call(lambda c: c.beta.agents.sessions.retrieve(session.id))
    await follow(api, session.id)
    [rec] = records()
    assert rec.model == "gpt-5-mini"


async def test_an_agent_created_here_gives_its_turns_their_model(
    api: Api, records, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await api.call(lambda c: c.beta.agents.create(model="gpt-5"))
    session = await api.call(
        lambda c: c.beta.agents.sessions.create(agent_id=agent.id, environment=ENV, input=ASK)
    )
    monkeypatch.setattr(agents, "_models", {})  # as if the session was made elsewhere
    await api.call(lambda c: c.beta.agents.retrieve(agent.id))
    await follow(api, session.id)
    [rec] = records()
    assert rec.model == "gpt-5"


async def test_a_turn_takes_its_sessions_model_not_its_agents_later_one(api: Api, records) -> None:
    """A session keeps the model its agent had when the session was made."""
    agent = await api.call(lambda c: c.beta.agents.create(model="gpt-5-mini"))
    session = await api.call(
        lambda c: c.beta.agents.sessions.create(agent_id=agent.id, environment=ENV, input=ASK)
    )
    await api.call(lambda c: c.beta.agents.update(agent.id, model="gpt-5"))
    await follow(api, session.id)
    [rec] = records()
    assert rec.model == "gpt-5-mini"


@pytest.mark.parametrize(("end", "status"), [("failed", "error"), ("cancelled", "partial")])
async def test_a_turn_that_did_not_complete_keeps_the_usage_it_billed(
    api: Api, records, end: str, status: str
) -> None:
    api = fresh(api, turn_end=end)
    session = await start(api)
    events = await follow(api, session.id)
    assert events[-2].type == f"agent.session.turn.{end}"
    [rec] = records()
    assert rec.status == status
    assert rec.input_tokens == events[-2].turn.usage.input_tokens > 0


async def test_usage_only_on_the_ending_event_is_counted(api: Api, records) -> None:
    api = fresh(api, turn_usage="event")
    session = await start(api)
    events = await follow(api, session.id)
    ended = events[-2]
    assert ended.turn.usage is None
    [rec] = records()
    assert (rec.response_id, rec.input_tokens) == (ended.turn.id, ended.usage.input_tokens)


async def test_a_turn_ended_without_usage_is_counted_when_a_retrieve_brings_it(
    api: Api, records
) -> None:
    """Usage is best effort: a turn seen ended without it is left for a later sighting."""
    api = fresh(api, turn_usage="none")
    session = await start(api)
    events = await follow(api, session.id)
    assert records() == []
    api.fake.turn_usage = "both"  # the usage has been recorded since
    await retrieve(api, session.id, events[-2].turn.id)
    [rec] = records()
    assert rec.response_id == events[-2].turn.id


async def test_a_turn_counted_in_two_processes_has_one_record_id(
    api: Api, records, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await start(api)
    turn = turn_of(await follow(api, session.id))
    monkeypatch.setattr(agents, "_counted", {})  # a second process knows nothing of the first
    await retrieve(api, session.id, turn.id)
    first, second = records()
    assert first.record_id == second.record_id
    other = await start(api)
    await follow(api, other.id)
    assert records()[-1].record_id != first.record_id


async def test_listing_and_the_sessions_own_usage_count_nothing(api: Api, records) -> None:
    session = await start(api)
    await follow(api, session.id)
    assert len(records()) == 1
    again = await api.call(lambda c: c.beta.agents.sessions.retrieve(session.id))
    assert again.usage is not None  # the session's running total: not a record
    await api.call(lambda c: c.beta.agents.sessions.turns.list(session.id))
    await api.call(lambda c: c.beta.agents.sessions.list())
    assert len(records()) == 1


async def test_a_stream_closed_early_counts_the_turns_it_saw_end(api: Api, records) -> None:
    api = fresh(api, subagent_turns=1)
    session = await start(api)
    stream = await api.call(lambda c: c.beta.agents.sessions.events.stream(session.id))
    seen: list[Any] = []
    if api.is_async:
        async for event in stream:
            seen.append(event)
            if event.type == "agent.session.turn.completed":
                break
    else:
        for event in stream:
            seen.append(event)
            if event.type == "agent.session.turn.completed":
                break
    await api.close(stream)
    assert stream.response.is_closed
    [rec] = records()
    assert rec.response_id == turn_of(seen).id
    # the subagent's turn, never read on the stream, counts when a retrieve finds it ended
    turns = api.fake._sessions[session.id]["turns"]
    [other] = [tid for tid in turns if tid != rec.response_id]
    await api.call(
        lambda c: c.beta.agents.sessions.subagents.turns.retrieve(
            other, session_id=session.id, subagent_id="subagent_fake1"
        )
    )
    assert [r.response_id for r in records()] == [rec.response_id, other]


async def test_a_raw_retrieve_is_counted_when_parsed(api: Api, records) -> None:
    session = await start(api)
    turn = turn_of(await follow(api, session.id), 0)
    ai_tokentrace.uninstrument()  # the stream counted it; retrieve afresh, as another process
    ai_tokentrace.instrument(integrations=["openai"])
    raw = await api.call(
        lambda c: c.beta.agents.sessions.turns.with_raw_response.retrieve(
            turn.id, session_id=session.id
        )
    )
    assert len(records()) == 1
    parsed = raw.parse()
    if hasattr(parsed, "__await__"):
        parsed = await parsed
    assert parsed.status == "completed"
    assert len(records()) == 1  # the same turn: counted once


async def test_a_raw_retrieve_of_an_unseen_turn_is_counted_when_parsed(api: Api, records) -> None:
    session = await start(api)
    [turn] = (await api.call(lambda c: c.beta.agents.sessions.turns.list(session.id))).data
    await retrieve(api, session.id, turn.id)  # in progress
    raw = await api.call(
        lambda c: c.beta.agents.sessions.turns.with_raw_response.retrieve(
            turn.id, session_id=session.id
        )
    )
    assert records() == []
    parsed = raw.parse()
    if hasattr(parsed, "__await__"):
        parsed = await parsed
    [rec] = records()
    assert (parsed.status, rec.response_id) == ("completed", turn.id)


def test_threads_retrieving_one_ended_turn_count_it_once(records) -> None:
    api = Api("sync", FakeOpenAI(turn_polls=0))
    session = api.client.beta.agents.sessions.create(agent=AGENT, environment=ENV, input=ASK)
    [turn] = api.client.beta.agents.sessions.turns.list(session.id).data
    start_line = threading.Barrier(8)

    def poll() -> None:
        start_line.wait()
        for _ in range(5):
            api.client.beta.agents.sessions.turns.retrieve(turn.id, session_id=session.id)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.response_id for r in records()] == [turn.id]


def test_a_spent_budget_refuses_new_input_but_not_reading_a_turn(records) -> None:
    api = Api("sync", FakeOpenAI(turn_polls=0))
    session = api.client.beta.agents.sessions.create(agent=AGENT, environment=ENV, input=ASK)
    [turn] = api.client.beta.agents.sessions.turns.list(session.id).data
    with ai_tokentrace.trace_tokens("capped", budget=ai_tokentrace.Budget(limit_usd=0.0)):
        got = api.client.beta.agents.sessions.turns.retrieve(turn.id, session_id=session.id)
        assert got.status == "completed"
        with pytest.raises(ai_tokentrace.BudgetExceededError):
            api.client.beta.agents.sessions.events.create(
                session.id, events=[{"type": "message", "role": "user", "content": "more"}]
            )
    assert [r.response_id for r in records()] == [turn.id]


def test_decorator_only_mode_counts_a_returned_ended_turn_once(records) -> None:
    ai_tokentrace.uninstrument()
    api = Api("sync", FakeOpenAI(turn_polls=0))
    session = api.client.beta.agents.sessions.create(agent=AGENT, environment=ENV, input=ASK)
    [turn] = api.client.beta.agents.sessions.turns.list(session.id).data

    @ai_tokentrace.trace_tokens("poll")
    def poll() -> Any:
        return api.client.beta.agents.sessions.turns.retrieve(turn.id, session_id=session.id)

    poll()
    poll()
    [rec] = records()
    assert (rec.operation, rec.trace_name, rec.response_id) == ("agents.turns", "poll", turn.id)


@pytest.mark.parametrize(
    "event",
    [
        object(),
        SimpleNamespace(type=None),
        SimpleNamespace(type="agent.session.turn.completed", turn=None, usage=None),
        SimpleNamespace(type="agent.session.turn.completed", turn={"id": 7}, usage={}),
        SimpleNamespace(type="agent.session.idle", session=None),
        SimpleNamespace(type="agent.session.created", session={"agent": "odd"}),
    ],
)
def test_odd_events_pass_uncounted_and_the_watch_goes_on(event: Any, records) -> None:
    """Strict mode (on in this suite) would raise any error of ours here; a turn ending after
    the odd event is still counted."""
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    turn = SimpleNamespace(id=f"turn_{uuid.uuid4().hex}", status="completed", usage=usage)
    ended = SimpleNamespace(type="agent.session.turn.completed", turn=turn, usage=None)
    stream = SimpleNamespace(_iterator=iter([event, ended]))
    agents.watch("events /agents/sessions/s/events", stream, "openai", None, 0.0, None)
    assert list(stream._iterator) == [event, ended]
    assert [(r.response_id, r.total_tokens) for r in records()] == [(turn.id, 5)]
