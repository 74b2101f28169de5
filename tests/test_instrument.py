"""How a patch target becomes a patch: a lean hook for a plain or coroutine per-request method,
wrapt's FunctionWrapper for everything else."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import wrapt

from ai_tokentrace._instrument import _patch_for, alean_method, lean_method
from ai_tokentrace.integrations import PatchTarget


class _Client:
    def request(self, cast_to: type, options: dict[str, Any], *, stream: bool = False) -> Any:
        """The SDK's own docstring."""
        return (self, cast_to, options, stream)

    def fails(self) -> None:
        raise KeyError("the method's own")

    async def arequest(self) -> int:
        return 1

    def chunks(self) -> Iterator[int]:
        yield 1

    async def achunks(self) -> AsyncIterator[int]:
        yield 1


def _recording(seen: list[Any]) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append((wrapped, instance, args, kwargs))
        return wrapped(*args, **kwargs)

    return wrapper


def _patched_class(name: str, patch: Any) -> type:
    return type("Patched", (_Client,), {name: patch})


def test_a_lean_hook_calls_the_wrapper_with_the_bound_method_the_instance_and_the_arguments() -> (
    None
):
    seen: list[Any] = []
    cls = _patched_class("request", lean_method(_Client.request, _recording(seen)))  # type: ignore[arg-type]
    client = cls()
    result = client.request(int, {"a": 1}, stream=True)
    [(wrapped, instance, args, kwargs)] = seen
    assert instance is client
    assert wrapped.__self__ is client
    assert wrapped.__func__ is _Client.request
    assert args == (int, {"a": 1})
    assert kwargs == {"stream": True}
    assert result == (client, int, {"a": 1}, True)


def test_a_lean_hook_looks_like_the_method_it_replaces() -> None:
    hook = lean_method(_Client.request, _recording([]))  # type: ignore[arg-type]
    assert hook.__wrapped__ is _Client.request
    assert hook.__name__ == "request"
    assert hook.__qualname__ == "_Client.request"
    assert hook.__doc__ == "The SDK's own docstring."
    assert inspect.signature(hook) == inspect.signature(_Client.request)


def test_a_lean_hook_lets_the_methods_own_exception_through() -> None:
    cls = _patched_class("fails", lean_method(_Client.fails, _recording([])))  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="the method's own"):
        cls().fails()


def test_a_lean_target_on_a_plain_function_gets_a_lean_hook() -> None:
    patch = _patch_for(
        PatchTarget("m", "_Client.request", _recording([]), lean=True), _Client.request
    )
    assert not isinstance(patch, wrapt.FunctionWrapper)
    assert patch.__wrapped__ is _Client.request


def _direct_for(seen: list[Any]) -> Any:
    """A ``direct`` factory whose hook takes ``_Client.request``'s parameters, recording the
    originals it was given."""

    def direct(original: Any) -> Any:
        seen.append(original)

        def request(self: Any, cast_to: Any, options: Any, *, stream: bool = False) -> Any:
            return ("direct", original(self, cast_to, options, stream=stream))

        return request

    return direct


def test_a_direct_hook_replaces_the_original_and_looks_like_it() -> None:
    seen: list[Any] = []
    target = PatchTarget(
        "m", "_Client.request", _recording([]), lean=True, direct=_direct_for(seen)
    )
    patch = _patch_for(target, _Client.request)
    client = _patched_class("request", patch)()
    assert seen == [_Client.request]
    assert client.request(int, {}) == ("direct", (client, int, {}, False))
    assert patch.__wrapped__ is _Client.request
    assert patch.__qualname__ == "_Client.request"
    assert patch.__doc__ == "The SDK's own docstring."


class _OtherVersion:
    """``_Client.request`` as other SDK versions might have it."""

    def request(self, cast_to: type, options: dict[str, Any], *, stream: bool = True) -> Any:
        return (self, cast_to, options, stream)

    def extra(self, cast_to: type, options: dict[str, Any], retries: int = 0) -> Any:
        return (self, cast_to, options, retries)

    def keyword(self, cast_to: type, *, options: dict[str, Any], stream: bool = False) -> Any:
        return (self, cast_to, options, stream)


@pytest.mark.parametrize(
    "original",
    [_OtherVersion.request, _OtherVersion.extra, _OtherVersion.keyword, _Client.fails],
    ids=["another-default", "another-parameter", "another-kind", "other-names"],
)
def test_a_direct_hook_whose_parameters_differ_leaves_the_lean_hook(original: Any) -> None:
    seen: list[Any] = []
    target = PatchTarget("m", "_C.m", _recording(seen), lean=True, direct=_direct_for([]))
    patch = _patch_for(target, original)
    assert not isinstance(patch, wrapt.FunctionWrapper)
    assert patch.__wrapped__ is original
    assert patch.__code__.co_flags & inspect.CO_VARARGS  # the lean hook's (*args, **kwargs)


def test_a_direct_factory_that_declines_leaves_the_lean_hook() -> None:
    seen: list[Any] = []
    target = PatchTarget(
        "m", "_Client.fails", _recording(seen), lean=True, direct=lambda original: None
    )
    patch = _patch_for(target, _Client.fails)
    client = _patched_class("fails", patch)()
    with pytest.raises(KeyError, match="the method's own"):
        client.fails()
    assert not isinstance(patch, wrapt.FunctionWrapper)
    [(_, instance, _, _)] = seen  # the wrapper ran
    assert instance is client


async def test_an_async_lean_hook_is_a_coroutine_function_awaiting_the_wrapper() -> None:
    seen: list[Any] = []

    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append(instance)
        return await wrapped(*args, **kwargs) + 1

    hook = alean_method(_Client.arequest, wrapper)  # type: ignore[arg-type]
    client = _patched_class("arequest", hook)()
    assert inspect.iscoroutinefunction(hook)
    assert hook.__wrapped__ is _Client.arequest
    assert await client.arequest() == 2
    assert seen == [client]


def test_a_lean_target_on_a_coroutine_function_gets_an_async_lean_hook() -> None:
    patch = _patch_for(
        PatchTarget("m", "_Client.arequest", _recording([]), lean=True), _Client.arequest
    )
    assert not isinstance(patch, wrapt.FunctionWrapper)
    assert inspect.iscoroutinefunction(patch)


@pytest.mark.parametrize("name", ["chunks", "achunks"])
def test_a_lean_target_on_a_generator_function_keeps_wrapts_wrapper(name: str) -> None:
    """A plain hook would stop them looking like generator functions."""
    original = vars(_Client)[name]
    patch = _patch_for(PatchTarget("m", f"_Client.{name}", _recording([]), lean=True), original)
    assert isinstance(patch, wrapt.FunctionWrapper)
    assert inspect.isgeneratorfunction(patch) == inspect.isgeneratorfunction(original)
    assert inspect.isasyncgenfunction(patch) == inspect.isasyncgenfunction(original)


def test_a_target_not_marked_lean_gets_wrapts_wrapper() -> None:
    patch = _patch_for(PatchTarget("m", "_Client.request", _recording([])), _Client.request)
    assert isinstance(patch, wrapt.FunctionWrapper)


def test_a_wrapt_target_runs_the_original_alone_while_its_switch_is_off() -> None:
    """``enabled`` is asked on each call: while it gives a false value the wrapper is not
    called, and the original's result comes back as it is."""
    seen: list[Any] = []
    switch: list[object] = [None]
    target = PatchTarget("m", "_Client.chunks", _recording(seen), enabled=lambda: switch[0])
    client = _patched_class("chunks", _patch_for(target, vars(_Client)["chunks"]))()
    assert list(client.chunks()) == [1]
    assert seen == []
    switch[0] = object()  # any true value: a scope, say
    assert list(client.chunks()) == [1]
    assert len(seen) == 1


def test_a_wrapt_target_with_a_switch_still_looks_like_its_method() -> None:
    target = PatchTarget("m", "_Client.chunks", _recording([]), enabled=lambda: None)
    patch = _patch_for(target, vars(_Client)["chunks"])
    assert inspect.isgeneratorfunction(patch)
    assert inspect.signature(patch) == inspect.signature(_Client.chunks)


# -- lazy targets: patched when their module is imported -------------------------------------
_toys = itertools.count()  # each toy integration's modules are new: wrapt keeps import hooks
_TOY_ADAPTER = """
from ai_tokentrace.integrations import PatchTarget

calls = []


def wrapper(wrapped, instance, args, kwargs):
    calls.append(args)
    return wrapped(*args, **kwargs)


class _Toy:
    name = "{name}"
    root_module = "{name}_root"

    def patch_targets(self):
        return [PatchTarget("{name}_lazy", "C.f", wrapper, lazy=True)]

    def capture_returned(self, obj):
        return False


INTEGRATION = _Toy()
"""


@pytest.fixture
def toy(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An integration ``toy_<n>`` whose one target is lazy, in a module nothing has imported:
    yields ``(name, import_lazy, adapter)``."""
    import importlib
    import sys

    from ai_tokentrace import _instrument
    from ai_tokentrace.integrations import REGISTRY

    name = f"toy{next(_toys)}"
    (tmp_path / f"{name}_root.py").write_text("")
    (tmp_path / f"{name}_lazy.py").write_text(
        "class C:\n    def f(self, x):\n        return x * 2\n"
    )
    (tmp_path / f"{name}_adapter.py").write_text(_TOY_ADAPTER.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(REGISTRY, name, (f"{name}_adapter", f"{name}_root"))
    importlib.import_module(f"{name}_root")
    adapter = importlib.import_module(f"{name}_adapter")
    yield name, (lambda: importlib.import_module(f"{name}_lazy")), adapter
    _instrument.uninstrument_sdks([name])
    for module in (f"{name}_root", f"{name}_lazy", f"{name}_adapter"):
        sys.modules.pop(module, None)


def test_a_lazy_target_is_patched_when_its_module_is_imported_not_before(toy: Any) -> None:
    import sys

    from ai_tokentrace import _instrument

    name, import_lazy, adapter = toy
    _instrument.instrument_sdks([name])
    assert f"{name}_lazy" not in sys.modules
    lazy = import_lazy()
    assert lazy.C().f(3) == 6
    assert adapter.calls == [(3,)]


def test_a_lazy_target_whose_integration_was_undone_before_the_import_is_not_patched(
    toy: Any,
) -> None:
    from ai_tokentrace import _instrument

    name, import_lazy, adapter = toy
    _instrument.instrument_sdks([name])
    _instrument.uninstrument_sdks([name])
    lazy = import_lazy()
    assert lazy.C().f(3) == 6
    assert adapter.calls == []


def test_a_lazy_target_asked_for_twice_before_the_import_is_patched_once(toy: Any) -> None:
    from ai_tokentrace import _instrument

    name, import_lazy, adapter = toy
    _instrument.instrument_sdks([name])
    _instrument.uninstrument_sdks([name])
    _instrument.instrument_sdks([name])
    lazy = import_lazy()
    lazy.C().f(1)
    assert adapter.calls == [(1,)]
    _instrument.uninstrument_sdks([name])
    lazy.C().f(2)
    assert adapter.calls == [(1,)]


def test_a_lazy_target_in_a_module_already_imported_is_patched_at_once(toy: Any) -> None:
    from ai_tokentrace import _instrument

    name, import_lazy, adapter = toy
    lazy = import_lazy()
    _instrument.instrument_sdks([name])
    lazy.C().f(5)
    assert adapter.calls == [(5,)]
