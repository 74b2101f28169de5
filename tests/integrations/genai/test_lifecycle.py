"""instrument / uninstrument, suppression, scopes and decorator-only mode for google-genai."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from google.genai import models

import ai_tokentrace
from ai_tokentrace import _internal
from ai_tokentrace.integrations import genai as genai_integration
from ai_tokentrace.testing import InMemoryTokenUsageService

from ..conftest import expected_parameters, own_parameters
from .conftest import MODEL, needs_embed_usage


def test_instrument_twice_patches_once(instrumented: Any, client: Any, records: Any) -> None:
    """A second instrument() call adds no second layer: still one record per call."""
    ai_tokentrace.instrument(integrations=["genai"])
    client.models.generate_content(model=MODEL, contents="hi")
    assert len(records()) == 1


@pytest.mark.parametrize("hook_form", ["direct", "wrapper"])
@pytest.mark.parametrize("cls", [models.Models, models.AsyncModels], ids=["sync", "async"])
def test_the_generate_hook_has_the_sdks_signature(
    instrumented: Any, cls: type, hook_form: str
) -> None:
    """The per-request generate hook is the form asked for and not a wrapt wrapper, and still
    looks like the SDK's method to whoever inspects it."""
    import inspect

    import wrapt

    hook = cls.__dict__["_generate_content"]
    assert not isinstance(hook, wrapt.FunctionWrapper)
    direct = genai_integration._direct_generate
    if cls is models.AsyncModels:
        direct = genai_integration._adirect_generate
    assert own_parameters(hook) == expected_parameters(hook.__wrapped__, hook_form, direct)
    assert inspect.signature(hook) == inspect.signature(hook.__wrapped__)
    assert hook.__qualname__ == hook.__wrapped__.__qualname__
    assert inspect.iscoroutinefunction(hook) is (cls is models.AsyncModels)


@pytest.mark.parametrize("hook_form", ["direct", "wrapper"])
def test_the_async_stream_hook_has_the_sdks_signature(instrumented: Any, hook_form: str) -> None:
    """The per-request async stream hook is the form asked for where the SDK's method is a
    coroutine function (older SDKs' async generator function keeps wrapt's wrapper), and
    still looks like the SDK's method to whoever inspects it."""
    import inspect

    hook = models.AsyncModels.__dict__["_generate_content_stream"]
    original = hook.__wrapped__
    assert inspect.signature(hook) == inspect.signature(original)
    assert inspect.iscoroutinefunction(hook) is inspect.iscoroutinefunction(original)
    assert inspect.isasyncgenfunction(hook) is inspect.isasyncgenfunction(original)
    if inspect.iscoroutinefunction(original):
        direct = genai_integration._adirect_stream
        assert own_parameters(hook) == expected_parameters(original, hook_form, direct)


@pytest.mark.parametrize("hook_form", ["direct", "wrapper"])
def test_the_sync_stream_hook_has_the_sdks_signature(instrumented: Any, hook_form: str) -> None:
    """The per-request sync stream hook is the form asked for, with the SDK's signature. The
    direct one is a plain function returning the generator (only the SDK's own loop calls
    it); the wrapper form keeps wrapt's, a generator function still to whoever inspects it."""
    import inspect

    import wrapt

    hook = models.Models.__dict__["_generate_content_stream"]
    original = hook.__wrapped__
    assert inspect.signature(hook) == inspect.signature(original)
    expected = expected_parameters(original, hook_form, genai_integration._direct_stream)
    if expected == ["self", "args", "kwargs"]:
        assert isinstance(hook, wrapt.FunctionWrapper)
        assert inspect.isgeneratorfunction(hook) is inspect.isgeneratorfunction(original)
    else:  # wrapt's wrapper reports the SDK's parameters too: it must not be the one there
        assert not isinstance(hook, wrapt.FunctionWrapper)
        assert own_parameters(hook) == expected


@pytest.mark.parametrize("cls", [models.Models, models.AsyncModels], ids=["sync", "async"])
def test_a_public_method_hooked_in_place_of_a_missing_private_one_gets_no_direct_hook(
    cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SDK without the private per-request methods has its public ones hooked, in the
    wrapper form: a direct stream hook would stop the sync one being a generator function
    and read an async call's scope when it is awaited, not when it is made."""
    for private in ("_generate_content", "_generate_content_stream"):
        monkeypatch.delattr(cls, private)
    public = {f"{cls.__name__}.generate_content", f"{cls.__name__}.generate_content_stream"}
    hooks = {t.attribute: t for t in genai_integration.INTEGRATION.patch_targets()}
    assert public <= set(hooks)
    assert [hooks[name].direct for name in sorted(public)] == [None, None]


def test_async_methods_stay_coroutine_functions(instrumented: Any, client: Any) -> None:
    """Frameworks that check ``inspect.iscoroutinefunction`` see the SDK's methods as before."""
    import inspect

    assert inspect.iscoroutinefunction(client.aio.models.generate_content)
    assert inspect.iscoroutinefunction(models.AsyncModels.generate_content_stream)
    assert not inspect.iscoroutinefunction(client.models.generate_content)


def test_uninstrument_restores_the_original_methods(instrumented: Any) -> None:
    """After uninstrument() the SDK's own functions are back in place."""
    ai_tokentrace.uninstrument()
    for cls in (models.Models, models.AsyncModels):
        for name in ("_generate_content", "_generate_content_stream", "generate_content_stream"):
            assert type(vars(cls)[name]).__module__ != "wrapt.wrappers"
            assert vars(cls)[name].__module__ == "google.genai.models"


def test_calls_after_uninstrument_are_not_recorded(
    instrumented: Any, client: Any, records: Any
) -> None:
    """Once uninstrumented, calls go straight to the SDK and nothing is recorded."""
    ai_tokentrace.uninstrument()
    client.models.generate_content(model=MODEL, contents="hi")
    list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert records() == []


def test_suppressed_calls_are_not_recorded(instrumented: Any, client: Any, records: Any) -> None:
    """ai-tokentrace's own traffic (suppressed) is never counted."""
    with _internal.suppressing():
        client.models.generate_content(model=MODEL, contents="hi")
        list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert records() == []


async def test_records_carry_the_scope_labels_and_totals(
    instrumented: Any, client: Any, records: Any
) -> None:
    """Calls inside trace_tokens carry its name and labels and add to its totals."""
    async with ai_tokentrace.trace_tokens("summarize", user_id="u1") as scope:
        await client.aio.models.generate_content(model=MODEL, contents="hi")
    [rec] = records()
    assert (rec.trace_name, rec.user_id) == ("summarize", "u1")
    assert scope.usage.total_tokens == rec.total_tokens == 36


def test_decorator_only_mode_counts_a_returned_response(
    memory: InMemoryTokenUsageService, client: Any, records: Any
) -> None:
    """Without instrument(), a traced function returning a response still yields one record."""

    @ai_tokentrace.trace_tokens("answer")
    def answer() -> Any:
        return client.models.generate_content(model=MODEL, contents="hi")

    answer()
    [rec] = records()
    assert rec.model == "gemini-fake-001"  # no request seen: the provider's model version
    assert (rec.provider, rec.total_tokens) == ("gcp.gemini", 36)
    assert rec.trace_name == "answer"


def test_decorator_only_mode_counts_nothing_our_own_code_returns(
    memory: InMemoryTokenUsageService, client: Any, records: Any
) -> None:
    """A traced function run by ai-tokentrace itself (suppressed) is our own traffic."""

    @ai_tokentrace.trace_tokens("answer")
    def answer() -> Any:
        return client.models.generate_content(model=MODEL, contents="hi")

    with _internal.suppressing():
        answer()
    assert records() == []


@needs_embed_usage
def test_decorator_only_mode_counts_a_returned_embedding(
    memory: InMemoryTokenUsageService, client: Any, records: Any
) -> None:
    """A returned EmbedContentResponse is counted as embed_content."""

    @ai_tokentrace.trace_tokens
    def embed() -> Any:
        return client.models.embed_content(model="gemini-embedding-001", contents=["a"])

    embed()
    [rec] = records()
    assert (rec.operation, rec.input_tokens) == ("embed_content", 4)


def test_returned_response_is_not_counted_twice_when_instrumented(
    instrumented: Any, client: Any, records: Any
) -> None:
    """With instrumentation on, returning the response from a traced function adds nothing."""

    @ai_tokentrace.trace_tokens
    def answer() -> Any:
        return client.models.generate_content(model=MODEL, contents="hi")

    answer()
    assert len(records()) == 1


@pytest.mark.subprocess
def test_instrument_before_the_sdk_is_imported() -> None:
    """instrument() first, google.genai imported afterwards: calls are still recorded."""
    code = textwrap.dedent(
        """
        import sys
        import ai_tokentrace
        from ai_tokentrace.testing import InMemoryTokenUsageService
        svc = InMemoryTokenUsageService()
        ai_tokentrace.instrument(service=svc, integrations=["genai"])
        assert "google.genai" not in sys.modules
        from ai_tokentrace.testing.fake_genai import fake_genai_client
        client = fake_genai_client()
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert ai_tokentrace.flush(10.0)
        print(len(svc.records), svc.records[0].total_tokens)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["1", "36"]


@pytest.mark.subprocess
def test_counts_the_same_on_legacy_httpx() -> None:
    """google-genai on plain httpx (not httpx2) is counted the same: the hooks sit above HTTP."""
    code = textwrap.dedent(
        """
        import asyncio
        import httpx
        assert not httpx.__name__.startswith("httpx2")
        import ai_tokentrace
        from ai_tokentrace.testing import InMemoryTokenUsageService
        from ai_tokentrace.testing.fake_genai import FakeGemini, fake_genai_client
        svc = InMemoryTokenUsageService()
        ai_tokentrace.instrument(service=svc, integrations=["genai"])
        fake = FakeGemini()
        client = fake_genai_client(fake, http=httpx)
        api = client._api_client
        assert isinstance(api._httpx_client, httpx.Client)
        assert isinstance(api._async_httpx_client, httpx.AsyncClient)
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
        async def main():
            await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
        asyncio.run(main())
        assert ai_tokentrace.flush(10.0)
        print(len(svc.records), sum(r.total_tokens for r in svc.records), fake.billed_total)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["3", "108", "108"]


def test_demo_makes_one_record_per_request(instrumented: Any, records: Any) -> None:
    """The offline Gemini demo: generate, stream, embed, a two-request tool-calling chat, and
    an interaction where the SDK has the Interactions API."""
    from ai_tokentrace import _demo_genai

    _demo_genai.run(live=False)
    recs = records()
    interactions = ["interactions"] if _demo_genai.has_interactions() else []
    assert [r.operation for r in recs] == [
        *["generate_content"] * 2,
        "embed_content",
        *["generate_content"] * 2,
        *interactions,
    ]
    assert {r.trace_name for r in recs} == {"demo.gemini"}


def test_budget_refuses_the_next_request_before_it_is_sent(
    memory: InMemoryTokenUsageService, client: Any, fake: Any, records: Any
) -> None:
    """Once spend passes the limit, the next Gemini call raises and sends nothing."""
    from ai_tokentrace import Budget, BudgetExceededError

    ai_tokentrace.instrument(integrations=["genai"], budget=Budget(limit_usd=1e-9))
    try:
        client.models.generate_content(model=MODEL, contents="hi")
        with pytest.raises(BudgetExceededError):
            client.models.generate_content(model=MODEL, contents="hi")
        with pytest.raises(BudgetExceededError):
            list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    finally:
        ai_tokentrace.uninstrument()
    assert len(fake.requests) == 1
    assert len(records()) == 1
