"""The Interactions API and decisions: one record per HTTP round trip, through the real client.

These calls go through google-genai's generated client (``google.genai._gaos``), not
``Models``; the fake server answers them at the same transport.
"""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
from typing import Any

import pytest

import ai_tokentrace
from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client, interaction_events

from .conftest import run_finalizers

MODEL = "gemini-3-flash"

_client = fake_genai_client()
pytestmark = [
    pytest.mark.skipif(
        not hasattr(_client, "interactions"),
        reason="this google-genai has no Interactions API",
    ),
    pytest.mark.usefixtures("instrumented"),
]

# Features that older google-genai releases with the Interactions API lack.
CONTINUES = hasattr(_client, "interactions") and (
    "automatic_continuation" in inspect.signature(type(_client.interactions).create).parameters
)
needs_continuation = pytest.mark.skipif(
    not CONTINUES, reason="this google-genai has no automatic continuation of interactions"
)
needs_decisions = pytest.mark.skipif(
    not hasattr(_client, "decisions"), reason="this google-genai has no decisions"
)
needs_voices = pytest.mark.skipif(
    not hasattr(_client, "voices"), reason="this google-genai has no voices"
)
EVENTS = interaction_events()  # google-genai 1.x: the API's first events, no running totals
needs_running_totals = pytest.mark.skipif(
    not EVENTS.running_totals,
    reason="this google-genai's interaction streams carry no usage before their end",
)
del _client


class Interact:
    """One way of calling ``interactions.create``: sync / async x plain / streamed, the stream
    consumed to the end. ``await run(client, **kwargs)`` returns what the caller got."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.streamed = mode.endswith("stream")

    async def __call__(self, client: Any, **kwargs: Any) -> list[Any]:
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("input", "Say hello.")
        if self.mode == "sync":
            return [client.interactions.create(**kwargs)]
        if self.mode == "async":
            return [await client.aio.interactions.create(**kwargs)]
        if self.mode == "sync-stream":
            return list(client.interactions.create(stream=True, **kwargs))
        stream = await client.aio.interactions.create(stream=True, **kwargs)
        return [event async for event in stream]

    def __repr__(self) -> str:
        return self.mode


@pytest.fixture(params=["sync", "async", "sync-stream", "async-stream"])
def interact(request: pytest.FixtureRequest) -> Interact:
    return Interact(request.param)


async def test_one_interaction_gives_one_record_with_gemini_buckets(
    interact: Interact, fake: FakeGemini, records: Any
) -> None:
    """input = input + tool-use tokens, output = output + thoughts; cached and reasoning kept,
    the per-modality counts in the details."""
    fake.cached_tokens, fake.tool_use_prompt_tokens = 4, 3
    await interact(fake_genai_client(fake))
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.response_model) == (
        "gcp.gemini",
        "interactions",
        MODEL,
        MODEL,
    )
    assert (rec.streamed, rec.status, rec.usage_available) == (interact.streamed, "ok", True)
    assert str(rec.response_id).startswith("int-fake-resp-")
    assert (rec.input_tokens, rec.output_tokens, rec.total_tokens) == (13, 26, 39)
    assert (rec.cached_input_tokens, rec.reasoning_tokens) == (4, 6)
    assert rec.usage_details["input_tokens_by_modality"] == {"text": 10}
    assert rec.total_tokens == fake.billed_total


async def test_an_interaction_in_our_own_traffic_is_not_counted(
    interact: Interact, fake: FakeGemini, records: Any
) -> None:
    """What ai-tokentrace's own code calls (``suppressing()``) is never recorded."""
    from ai_tokentrace._internal import suppressing

    with suppressing():
        await interact(fake_genai_client(fake))
    assert fake.requests
    assert records() == []


@needs_continuation
async def test_automatic_continuation_counts_each_round_trip_once(
    interact: Interact, fake: FakeGemini, records: Any
) -> None:
    """Three round trips: three records adding up to what was billed (the public result sums
    the hops' usage itself, and is not counted again)."""
    fake.continuation_hops = 2
    got = await interact(fake_genai_client(fake))
    recs = records()
    assert len(recs) == 3
    assert sum(r.total_tokens for r in recs) == fake.billed_total == 3 * 36
    assert len({r.response_id for r in recs}) == 3
    if not interact.streamed:
        assert got[0].usage.total_tokens == fake.billed_total  # the merged result


async def test_vertex_interactions_are_recorded_as_vertex(fake: FakeGemini, records: Any) -> None:
    client = fake_genai_client(fake, vertexai=True)
    client.interactions.create(model=MODEL, input="Hi")
    [rec] = records()
    assert (rec.provider, rec.operation) == ("gcp.vertex_ai", "interactions")


async def test_an_interaction_without_usage_is_recorded_as_such(
    interact: Interact, fake: FakeGemini, records: Any
) -> None:
    fake.omit_usage = True
    await interact(fake_genai_client(fake))
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.total_tokens) == ("ok", False, 0)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_background_interaction_is_counted_once_when_a_get_brings_its_usage(
    kind: str, fake: FakeGemini, records: Any
) -> None:
    """Created running (no usage): nothing; gets that find it running: nothing; the first that
    finds it done: one record, with the create's model; later gets: nothing more."""
    fake.background_polls = 1
    client = fake_genai_client(fake)
    api = client.interactions if kind == "sync" else client.aio.interactions

    async def call(result: Any) -> Any:
        return await result if kind == "async" else result

    created = await call(api.create(model=MODEL, input="Hi", background=True))
    statuses = [(await call(api.get(created.id))).status for _ in range(3)]
    assert statuses == ["in_progress", "completed", "completed"]
    [rec] = records()
    assert (rec.response_id, rec.model, rec.streamed, rec.total_tokens) == (
        created.id,
        MODEL,
        False,
        fake.billed_total,
    )


async def test_a_background_interaction_streamed_by_get_is_counted_once(
    fake: FakeGemini, records: Any
) -> None:
    client = fake_genai_client(fake)
    created = client.interactions.create(model=MODEL, input="Hi", background=True)
    assert list(client.interactions.get(created.id, stream=True))
    client.interactions.get(created.id)
    [rec] = records()
    assert (rec.response_id, rec.streamed, rec.status) == (created.id, True, "ok")


async def test_a_background_interactions_stream_let_go_early_leaves_it_to_a_later_get(
    fake: FakeGemini, records: Any
) -> None:
    """A get stream closed before interaction.completed: nothing yet; the next get that
    brings the usage counts it, once."""
    client = fake_genai_client(fake)
    created = client.interactions.create(model=MODEL, input="Hi", background=True)
    stream = client.interactions.get(created.id, stream=True)
    next(iter(stream))
    stream.close()
    assert records() == []
    client.interactions.get(created.id)
    client.interactions.get(created.id)
    [rec] = records()
    assert (rec.response_id, rec.streamed, rec.status, rec.total_tokens) == (
        created.id,
        False,
        "ok",
        36,
    )


async def test_a_get_of_an_interaction_not_created_here_is_not_counted(
    fake: FakeGemini, records: Any
) -> None:
    client = fake_genai_client(fake)
    ai_tokentrace.uninstrument()
    created = client.interactions.create(model=MODEL, input="Hi", background=True)
    ai_tokentrace.instrument(integrations=["genai"])
    client.interactions.get(created.id)
    assert records() == []


async def test_the_stream_is_the_sdks_own_and_yields_the_same_events(
    fake: FakeGemini, records: Any
) -> None:
    client = fake_genai_client(fake)
    ours = client.interactions.create(model=MODEL, input="Hi", stream=True)
    types_ours = [e.event_type for e in ours]
    ai_tokentrace.uninstrument()
    bare = [e.event_type for e in client.interactions.create(model=MODEL, input="Hi", stream=True)]
    assert types_ours == bare
    assert bare[0] == EVENTS.created
    assert bare[-1] == EVENTS.completed
    assert len(records()) == 1


async def test_usage_sent_only_on_the_completed_event_is_counted(
    fake: FakeGemini, records: Any
) -> None:
    fake.usage_on_last_chunk_only = True
    client = fake_genai_client(fake)
    assert list(client.interactions.create(model=MODEL, input="Hi", stream=True))
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.total_tokens) == ("ok", True, 36)


@needs_running_totals
@pytest.mark.parametrize(
    "continued",
    [pytest.param(True, marks=needs_continuation), False],
    ids=["continued", "not-continued"],
)
async def test_a_sync_stream_broken_off_and_closed_is_one_partial_record_with_the_running_total(
    fake: FakeGemini, records: Any, continued: bool
) -> None:
    """Closed after the first delta, with automatic continuation (the caller's stream is the
    SDK's wrapper) or without (the SDK's stream itself, whose close ends nothing else)."""
    continuation = {"automatic_continuation": continued} if CONTINUES else {}
    client = fake_genai_client(fake)
    stream = client.interactions.create(model=MODEL, input="Hi", stream=True, **continuation)
    seen = []
    for event in stream:
        seen.append(event.event_type)
        if event.event_type == EVENTS.delta:
            break
    stream.close()
    [rec] = records()
    assert (rec.status, rec.streamed, rec.usage_available) == ("partial", True, True)
    assert rec.output_tokens == 7 + 6  # a third of the 20 output tokens so far, and thoughts
    assert rec.model == MODEL


async def test_a_stream_broken_off_keeps_the_interactions_id_from_its_first_event(
    fake: FakeGemini, records: Any
) -> None:
    """The id arrives on the stream's first event (``interaction.created``; google-genai 1.x:
    ``interaction.start``), long before the end that would carry it too."""
    client = fake_genai_client(fake)
    stream = client.interactions.create(model=MODEL, input="Hi", stream=True)
    for event in stream:
        if event.event_type == EVENTS.delta:
            break
    stream.close()
    [rec] = records()
    assert rec.status == "partial"
    assert str(rec.response_id).startswith("int-fake-resp-")


async def test_a_stream_dropped_unfinished_is_recorded_when_collected(
    fake: FakeGemini, records: Any
) -> None:
    client = fake_genai_client(fake)
    stream = client.interactions.create(model=MODEL, input="Hi", stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    [rec] = records()
    assert (rec.status, rec.usage_available) == ("partial", False)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_raw_stream_broken_off_and_closed_is_recorded_at_its_close(
    kind: str, fake: FakeGemini, records: Any
) -> None:
    """A stream parsed from ``with_raw_response``: the SDK's own, whose close() closes only
    the response; the record is made there, not when the stream is collected (with the
    running total so far, where the SDK's streams carry one)."""
    client = fake_genai_client(fake)
    if kind == "sync":
        raw = client.interactions.with_raw_response.create(model=MODEL, input="Hi", stream=True)
        stream = raw.parse()
        for event in stream:
            if event.event_type == EVENTS.delta:
                break
        stream.close()
    else:
        araw = await client.aio.interactions.with_raw_response.create(
            model=MODEL, input="Hi", stream=True
        )
        astream = await araw.parse()
        async for event in astream:
            if event.event_type == EVENTS.delta:
                break
        await astream.close()
    [rec] = records()
    assert (rec.status, rec.streamed, rec.usage_available) == (
        "partial",
        True,
        EVENTS.running_totals,
    )


async def test_a_stream_dropped_before_its_first_event_is_recorded_without_usage(
    fake: FakeGemini, records: Any
) -> None:
    """The request went out when the stream was made (the server may bill it): one partial
    record, its usage unknown."""
    no_continuation = {"automatic_continuation": False} if CONTINUES else {}
    client = fake_genai_client(fake)
    stream = client.interactions.create(model=MODEL, input="Hi", stream=True, **no_continuation)
    del stream
    gc.collect()
    [rec] = records()
    assert (rec.status, rec.usage_available, rec.model) == ("partial", False, MODEL)


async def test_an_async_stream_broken_off_is_one_partial_record(
    fake: FakeGemini, records: Any
) -> None:
    """With the running total so far, where the SDK's streams carry one."""
    client = fake_genai_client(fake)
    stream = await client.aio.interactions.create(model=MODEL, input="Hi", stream=True)
    async for event in stream:
        if event.event_type == EVENTS.delta:
            break
    await stream.close()
    await run_finalizers()
    [rec] = records()
    assert (rec.status, rec.streamed, rec.usage_available) == (
        "partial",
        True,
        EVENTS.running_totals,
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_stream_cut_off_passes_the_error_through_and_is_partial(
    kind: str, fake: FakeGemini, records: Any
) -> None:
    """The connection lost after the first delta: the caller gets the SDK's error; the record
    is partial, with the running total so far where the SDK's streams carry one, and the type
    of the error the caller got."""
    fake.fail_stream_after = 3
    client = fake_genai_client(fake)
    got = []
    with pytest.raises(Exception) as raised:  # noqa: PT012 - whatever the SDK raises
        if kind == "sync":
            for event in client.interactions.create(model=MODEL, input="Hi", stream=True):
                got.append(event)
        else:
            stream = await client.aio.interactions.create(model=MODEL, input="Hi", stream=True)
            async for event in stream:
                got.append(event)
    assert len(got) == 3
    [rec] = records()
    assert (rec.status, rec.usage_available) == ("partial", EVENTS.running_totals)
    assert rec.error_type == type(raised.value).__name__


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_raw_response_counted_once_when_parsed(
    kind: str, fake: FakeGemini, records: Any
) -> None:
    client = fake_genai_client(fake)
    if kind == "sync":
        raw = client.interactions.with_raw_response.create(model=MODEL, input="Hi")
        assert records() == []
        raw.parse()
        raw.parse()
    else:
        raw = await client.aio.interactions.with_raw_response.create(model=MODEL, input="Hi")
        assert records() == []
        await raw.parse()
        await raw.parse()
    [rec] = records()
    assert (rec.operation, rec.total_tokens) == ("interactions", fake.billed_total)


async def test_an_http_error_reaches_the_caller_unchanged_and_makes_no_record(
    fake: FakeGemini, records: Any
) -> None:
    fake.status_code = 400
    client = fake_genai_client(fake)
    ai_tokentrace.uninstrument()
    with pytest.raises(Exception) as bare:
        client.interactions.create(model=MODEL, input="Hi")
    ai_tokentrace.instrument(integrations=["genai"])
    with pytest.raises(type(bare.value)) as ours:
        client.interactions.create(model=MODEL, input="Hi")
    assert str(ours.value) == str(bare.value)
    assert records() == []


@needs_decisions
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_decisions_counted_once_with_the_model_asked_for(
    kind: str, fake: FakeGemini, records: Any
) -> None:
    client = fake_genai_client(fake)
    questions = {"tone": {"type": "score", "instructions": "rate", "criteria": ["clarity"]}}
    if kind == "sync":
        got = client.decisions.create(model=f"models/{MODEL}", input="Hi", questions=questions)
    else:
        got = await client.aio.decisions.create(
            model=f"models/{MODEL}", input="Hi", questions=questions
        )
    assert got.usage.total_tokens == fake.billed_total
    [rec] = records()
    assert (rec.operation, rec.model, rec.streamed) == ("decisions", f"models/{MODEL}", False)
    assert (rec.input_tokens, rec.output_tokens, rec.total_tokens) == (10, 26, 36)


@needs_voices
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_voice_designed_from_a_prompt_is_counted_once(
    kind: str, fake: FakeGemini, records: Any
) -> None:
    """voices.create names no model in the request: the record has the one that answered."""
    client = fake_genai_client(fake)
    voice = {"type": "VOICE_TYPE_PROMPTED", "prompted": {"input": "a calm, low voice"}}
    if kind == "sync":
        got = client.voices.create(voice=voice, store=True)
    else:
        got = await client.aio.voices.create(voice=voice, store=True)
    [rec] = records()
    assert (rec.operation, rec.model, rec.response_model, rec.response_id) == (
        "voices",
        None,
        fake.model_version,
        got.id,
    )
    assert rec.total_tokens == fake.billed_total == 36


async def test_fifty_concurrent_async_interactions_give_fifty_records(
    fake: FakeGemini, records: Any
) -> None:
    import asyncio

    client = fake_genai_client(fake)
    await asyncio.gather(
        *(client.aio.interactions.create(model=MODEL, input=f"Hi {i}") for i in range(50))
    )
    recs = records()
    assert len(recs) == 50
    assert len({r.response_id for r in recs}) == 50


async def test_the_scope_of_the_call_is_on_its_records(fake: FakeGemini, records: Any) -> None:
    """On each round trip's record, where the SDK continues the interaction itself."""
    fake.continuation_hops = 1 if CONTINUES else 0
    client = fake_genai_client(fake)
    with ai_tokentrace.trace_tokens("judge", user_id="u1"):
        client.interactions.create(model=MODEL, input="Hi")
    recs = records()
    assert [(r.trace_name, r.user_id) for r in recs] == [("judge", "u1")] * (
        fake.continuation_hops + 1
    )


@pytest.mark.parametrize(
    "operation",
    [
        "interactions",
        pytest.param("decisions", marks=needs_decisions),
        pytest.param("voices", marks=needs_voices),
    ],
)
def test_decorator_only_mode_counts_a_returned_result(
    memory: Any, records: Any, operation: str
) -> None:
    ai_tokentrace.uninstrument()
    client = fake_genai_client()
    call = {
        "interactions": lambda: client.interactions.create(model=MODEL, input="Hi"),
        "decisions": lambda: client.decisions.create(model=MODEL, input="Hi", questions={}),
        "voices": lambda: client.voices.create(voice={"type": "VOICE_TYPE_PROMPTED"}),
    }[operation]

    @ai_tokentrace.trace_tokens("ask")
    def ask() -> Any:
        return call()

    ask()
    [rec] = records()
    assert (rec.operation, rec.trace_name, rec.total_tokens) == (operation, "ask", 36)


def test_uninstrument_restores_the_generated_methods() -> None:
    """Those of the generated client this google-genai has (older ones have no decisions;
    1.x's, ``google.genai._interactions``, has interactions alone)."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("google.genai._gaos") is not None:
        generated = [("_gaos.interactions", "Interactions"), ("_gaos.voices", "Voices")]
        if importlib.util.find_spec("google.genai._gaos.decisions") is not None:
            generated.append(("_gaos.decisions", "Decisions"))
    else:
        generated = [("_interactions.resources.interactions", "InteractionsResource")]
    classes = []
    for name, cls in generated:
        module = importlib.import_module(f"google.genai.{name}")
        classes += [getattr(module, cls), getattr(module, f"Async{cls}")]
    hooks = [vars(cls)["create"] for cls in classes]
    ai_tokentrace.uninstrument()
    # what each hook wraps is back (unpatched, the SDK's own would be there before and after)
    assert [vars(cls)["create"] for cls in classes] == [hook.__wrapped__ for hook in hooks]


_IMPORTS_AND_COUNTS = """
import sys
import ai_tokentrace
from ai_tokentrace.testing import InMemoryTokenUsageService
memory = InMemoryTokenUsageService()
ai_tokentrace.configure(service=memory)
if sys.argv[1] == "instrumented":
    ai_tokentrace.instrument(integrations=["genai"])
from ai_tokentrace.testing.fake_genai import fake_genai_client
client = fake_genai_client()
generated = ("google.genai._gaos.interactions", "google.genai._interactions.resources.interactions")
print(any(name in sys.modules for name in generated))
client.interactions.create(model="m", input="Hi")
ai_tokentrace.flush(10.0)
print(len(memory.records))
"""


def test_instrument_does_not_import_the_interactions_client_until_the_sdk_does() -> None:
    """The generated client is 365 modules: patched when the SDK first imports it, not
    imported to be patched (imported before the first call only where the SDK imports it
    with itself, as google-genai 1.x does); and a call then is counted."""

    def run(mode: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", _IMPORTS_AND_COUNTS, mode],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout.split()

    sdk_imports_it, bare_records = run("bare")
    assert bare_records == "0"
    assert run("instrumented") == [sdk_imports_it, "1"]


def test_odd_usage_reads_as_what_it_says_and_never_raises() -> None:
    """None counts, a list that is not one, items without a label, extra fields: the snapshot
    keeps what it can and the record's normaliser counts the rest as 0."""
    from ai_tokentrace.integrations._genai_interactions import raw_usage, snapshot

    assert snapshot(None) is None
    fields = snapshot(
        {
            "total_input_tokens": None,
            "total_output_tokens": 5,
            "input_tokens_by_modality": "odd",
            "output_tokens_by_modality": [{"tokens": 2}, {"modality": "text", "tokens": 3}],
            "something_new": 1,
        }
    )
    assert fields is not None
    raw = raw_usage(fields)
    assert (raw.prompt, raw.completion, raw.total) == (None, 5, None)
    assert raw.details == {"output_tokens_by_modality": {"UNSPECIFIED": 2, "text": 3}}
