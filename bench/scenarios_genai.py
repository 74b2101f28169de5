"""google-genai scenarios for ``bench/overhead.py``: bare vs instrumented, on the fake transport.

Each ``call`` makes one real ``google.genai.Client`` call whose HTTP is answered in-process by
:class:`ai_tokentrace.testing.fake_genai.FakeGemini`, so the timings are the SDK's own work plus
ours, with no network.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client

__all__ = ["scenarios"]

MODEL = "gemini-2.5-flash"


def _calls(models: Any, amodels: Any) -> dict[str, Callable[[], Any]]:
    """The timed calls, by scenario name, on these ``Models`` and ``AsyncModels``."""

    def generate() -> None:
        models.generate_content(model=MODEL, contents="Say hello.")

    def stream() -> None:
        for _ in models.generate_content_stream(model=MODEL, contents="Say hello."):
            pass

    def agenerate() -> Awaitable[Any]:
        return amodels.generate_content(model=MODEL, contents="Say hello.")

    async def _astream() -> None:
        async for _ in await amodels.generate_content_stream(model=MODEL, contents="Say hello."):
            pass

    def astream() -> Awaitable[None]:
        return _astream()

    return {
        "genai generate_content": generate,
        "genai generate_content_stream (3 chunks)": stream,
        "genai async generate_content": agenerate,
        "genai async generate_content_stream (3 chunks)": astream,
    }


def scenarios() -> list[dict[str, Any]]:
    """Bare ``generate_content`` (sync and async) and a streamed call of three chunks."""
    client = fake_genai_client(FakeGemini(stream_chunks=3))
    models, amodels = client.models, client.aio.models

    def unhooked(name: str) -> Callable[[], Callable[[], Any]]:
        """The factory of scenario ``name``'s call on ``Models`` that skip our hooks (see
        overhead.py), on the same API client."""

        def make() -> Callable[[], Any]:
            from overhead import unhooked_class

            bare = unhooked_class(type(models))(models._api_client)
            abare = unhooked_class(type(amodels))(amodels._api_client)
            return _calls(bare, abare)[name]

        return make

    return [
        {"name": name, "call": call, "unhooked": unhooked(name)}
        for name, call in _calls(models, amodels).items()
    ]


def hot_path() -> list[dict[str, Any]]:
    """The caller-thread cost of the Interactions API hook alone: the hook around a stub
    ``create`` returning a parsed interaction, and a stream of its events made by the stub
    (``bare`` iterates the same events without the hook). The SDK's own call is not timed in
    rounds: it takes 9 ms on the fake transport and spreads by hundreds of microseconds from
    round to round (and its public class reaches our hook through ``super()``, so no client
    can skip it call by call); in stop 32's run its rounds gave +82 / +70 us, and alternate
    rounds with the collector on +51 us over 30 rounds that spread from -560 to +640 us."""
    client = fake_genai_client(FakeGemini(stream_chunks=3))
    if not hasattr(client, "interactions"):
        return []
    from google.genai._gaos.types import interactions as types
    from google.genai._gaos.utils import eventstreaming

    from ai_tokentrace.integrations import _genai_interactions as gi

    resource = client.interactions
    usage = {
        "total_input_tokens": 10,
        "total_output_tokens": 20,
        "total_thought_tokens": 6,
        "total_tokens": 36,
        "input_tokens_by_modality": [{"modality": "text", "tokens": 10}],
        "output_tokens_by_modality": [{"modality": "text", "tokens": 20}],
    }
    done = {"id": "int-1", "status": "completed", "model": MODEL, "usage": usage}
    interaction = types.Interaction.model_validate(done)
    raw_events = [
        {
            "event_type": "interaction.created",
            "interaction": {"id": "int-1", "status": "in_progress"},
        },
        *(
            {
                "event_type": "step.delta",
                "index": 0,
                "delta": {"type": "text", "text": "hi"},
                "metadata": {"total_usage": usage},
            }
            for _ in range(3)
        ),
        {"event_type": "interaction.completed", "interaction": done},
    ]
    from google.genai._gaos.types.interactions import interactionssestreamevent as sse

    events = [sse.InteractionSSEStreamEvent.model_validate({"data": e}).data for e in raw_events]
    kwargs = {"model": MODEL, "input": "Say hello."}

    def stub(**_: Any) -> Any:
        return interaction

    def stream_stub(**_: Any) -> Any:
        stream = object.__new__(eventstreaming.Stream)
        stream.generator = iter(events)
        stream._closed = False
        return stream

    create = gi._creator(gi.INTERACTIONS, False)

    def bare_stream() -> int:
        return sum(1 for _ in stream_stub(**kwargs).generator)

    def ours_stream() -> int:
        return sum(1 for _ in create(stream_stub, resource, (), kwargs).generator)

    return [
        {
            "name": "genai interactions.create (hook + emit)",
            "bare": lambda: stub(**kwargs),
            "ours": lambda: create(stub, resource, (), kwargs),
        },
        {
            "name": "genai interactions stream of 5 events (watched)",
            "bare": bare_stream,
            "ours": ours_stream,
        },
    ]
