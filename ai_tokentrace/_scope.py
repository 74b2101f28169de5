"""``trace_tokens``: one object that is a decorator (bare or called) and a (async) context manager.

A scope is a ContextVar value, so it follows asyncio tasks and ``asyncio.to_thread`` by itself;
:func:`carry_scope` carries it into plain thread pools. Captures are appended to the scope and its
parents on the hot path (a list append each), so totals are exact under threads and gather and
are readable while the scope is still open.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
)
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from ._internal import internal_error, logger, suppressed
from ._record import TokenUsage, TokenUsageRecord

if TYPE_CHECKING:
    from ._capture import Capture, LazyCapture

__all__ = [
    "Labels",
    "Scope",
    "carry_scope",
    "current_scope",
    "set_default_labels",
    "trace_tokens",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Labels(NamedTuple):
    """What a record inherits from its scope; computed once when the scope is entered."""

    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = MappingProxyType({})

    def child(
        self,
        name: str | None,
        user_id: str | None,
        session_id: str | None,
        tags: Iterable[str] | None,
        metadata: Mapping[str, Any] | None,
    ) -> Labels:
        """Inner name and labels win, tags are unioned (order kept), metadata merged."""
        merged_tags = self.tags
        if tags:
            merged_tags = tuple(dict.fromkeys((*self.tags, *(str(t) for t in tags))))
        merged_meta: Mapping[str, Any] = self.metadata
        if metadata:
            merged_meta = MappingProxyType({**self.metadata, **metadata})
        return Labels(
            name if name is not None else self.name,
            user_id if user_id is not None else self.user_id,
            session_id if session_id is not None else self.session_id,
            merged_tags,
            merged_meta,
        )


def _labels_from_env() -> Labels | None:
    env = os.environ
    tags = tuple(t.strip() for t in env.get("AI_TOKENTRACE_TAGS", "").split(",") if t.strip())
    metadata: dict[str, Any] = {}
    raw_meta = env.get("AI_TOKENTRACE_METADATA", "").strip()
    if raw_meta:
        try:
            loaded = json.loads(raw_meta)
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            metadata = loaded
        except ValueError:
            logger.warning("AI_TOKENTRACE_METADATA is not a JSON object; ignored: %r", raw_meta)
    labels = Labels(
        env.get("AI_TOKENTRACE_TRACE_NAME") or None,
        env.get("AI_TOKENTRACE_USER_ID") or None,
        env.get("AI_TOKENTRACE_SESSION_ID") or None,
        tags,
        MappingProxyType(metadata),
    )
    return None if labels == Labels() else labels


_default_labels: Labels | None = _labels_from_env()


def set_default_labels(
    *,
    name: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Per-process defaults, e.g. ``set_default_labels(metadata={"service": "api"})``."""
    global _default_labels, default_scope
    labels = Labels().child(name, user_id, session_id, tags, metadata)
    _default_labels = None if labels == Labels() else labels
    default_scope = _DefaultScope(_default_labels) if _default_labels is not None else None


class Scope:
    """The live totals of one ``trace_tokens`` block or call."""

    __slots__ = ("__weakref__", "_captures", "budget", "labels", "parent")

    def __init__(self, labels: Labels, parent: Scope | None, budget: Any = None) -> None:
        self.labels = labels
        self.parent = parent
        self.budget = budget
        self._captures: list[Capture | LazyCapture] = []

    def _add(self, capture: Capture | LazyCapture) -> None:
        scope: Scope | None = self
        while scope is not None:
            scope._captures.append(capture)
            scope = scope.parent

    @property
    def name(self) -> str | None:
        return self.labels.name

    @property
    def records(self) -> tuple[TokenUsageRecord, ...]:
        """Every record made inside, nested scopes included, in the order they completed."""
        return tuple(c.record() for c in list(self._captures))

    @property
    def usage(self) -> TokenUsage:
        total = TokenUsage()
        for rec in self.records:
            total = total + rec.usage
        return total

    @property
    def cost_usd(self) -> float:
        """Sum of the priced records; a lower bound when :attr:`unpriced` > 0."""
        return sum((r.cost_usd for r in self.records if r.cost_usd is not None), 0.0)

    @property
    def unpriced(self) -> int:
        return sum(1 for r in self.records if r.cost_usd is None)

    def __repr__(self) -> str:
        u = self.usage
        return (
            f"<Scope {self.name!r} records={len(self._captures)} input={u.input_tokens} "
            f"output={u.output_tokens} cost_usd={self.cost_usd:.6f}>"
        )


class _DefaultScope(Scope):
    """Carries the per-process default labels for calls made outside any scope; keeps nothing."""

    __slots__ = ()

    def __init__(self, labels: Labels) -> None:
        super().__init__(labels, None)

    def _add(self, capture: Capture | LazyCapture) -> None:
        pass


# What a call outside any scope is labelled with, taken when the call completes.
default_scope: Scope | None = _DefaultScope(_default_labels) if _default_labels else None

_current: ContextVar[Scope | None] = ContextVar("ai_tokentrace_scope", default=None)


def current_scope() -> Scope | None:
    return _current.get()


def carry_scope(fn: Callable[..., T]) -> Callable[..., T]:
    """Bind the active scope to ``fn`` for use in a thread pool: ``pool.submit(carry_scope(f))``."""
    scope = _current.get()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> T:
        token = _current.set(scope)
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return bound


def _count_returned(result: object) -> None:
    """Decorator-only mode: read usage off a returned SDK response when no integration saw it."""
    try:
        if suppressed():  # our own code's (emit leaves this to where a call begins)
            return
        from .integrations import capture_returned

        capture_returned(result)
    except Exception:
        internal_error("trace_tokens.return_value")


class trace_tokens:
    """Attribute, label and total the token usage of a block or a function.

    ``@trace_tokens``, ``@trace_tokens("name", user_id=..., ...)``, ``with trace_tokens(...)``
    and ``async with trace_tokens(...)`` all work; functions may be sync, async, generators or
    async generators.
    """

    __slots__ = ("_budget", "_func", "_meta", "_name", "_session", "_tags", "_tokens", "_user")

    @overload
    def __new__(cls, name: F, /) -> F: ...  # type: ignore[misc]
    @overload
    def __new__(
        cls,
        name: str | None = None,
        /,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        budget: Any = None,
    ) -> trace_tokens: ...

    def __new__(cls, name: Any = None, /, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        if callable(name):
            self.__init__(None, **kwargs)  # type: ignore[misc]
            return self(name)
        return self

    def __init__(
        self,
        name: Any = None,
        /,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        budget: Any = None,
    ) -> None:
        if callable(name):  # already initialised in __new__ for the bare-decorator form
            return
        self._name: str | None = name
        self._user = user_id
        self._session = session_id
        self._tags = tuple(tags) if tags else ()
        self._meta = dict(metadata) if metadata else None
        self._budget = budget
        self._tokens: list[Token[Scope | None]] = []

    def _new_scope(self, default_name: str | None = None) -> Scope:
        parent = _current.get()
        base = parent.labels if parent is not None else (_default_labels or Labels())
        labels = base.child(
            self._name if self._name is not None else default_name,
            self._user,
            self._session,
            self._tags,
            self._meta,
        )
        return Scope(labels, parent, self._budget)

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> Scope:
        scope = self._new_scope()
        self._tokens.append(_current.set(scope))
        return scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator ---------------------------------------------------------------------------
    def __call__(self, func: F) -> F:
        import inspect

        default_name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
        make = functools.partial(self._new_scope, default_name)

        if inspect.isasyncgenfunction(func):
            return functools.wraps(func)(_wrap_async_gen(func, make))  # type: ignore[return-value]
        if inspect.isgeneratorfunction(func):
            return functools.wraps(func)(_wrap_gen(func, make))  # type: ignore[return-value]
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _current.set(make())
                try:
                    result = await func(*args, **kwargs)
                    _count_returned(result)  # inside the scope, so the record gets its labels
                finally:
                    _current.reset(token)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _current.set(make())
            try:
                result = func(*args, **kwargs)
                _count_returned(result)  # inside the scope, so the record gets its labels
            finally:
                _current.reset(token)
            return result

        return wrapper  # type: ignore[return-value]


def _wrap_gen(
    func: Callable[..., Generator[Any, Any, Any]], make: Callable[[], Scope]
) -> Callable[..., Generator[Any, Any, Any]]:
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        scope = make()
        token = _current.set(scope)
        try:
            gen = func(*args, **kwargs)
        finally:
            _current.reset(token)
        return _scoped_gen(gen, scope)

    return wrapper


def _scoped_gen(gen: Generator[Any, Any, Any], scope: Scope) -> Generator[Any, Any, Any]:
    """Run each step of ``gen`` with ``scope`` active, forwarding send/throw/close."""
    send: Any = None
    exc: BaseException | None = None
    while True:
        token = _current.set(scope)
        try:
            item = gen.throw(exc) if exc is not None else gen.send(send)
        except StopIteration as stop:
            return stop.value
        finally:
            _current.reset(token)
        exc = None
        send = None
        try:
            send = yield item
        except GeneratorExit:
            token = _current.set(scope)
            try:
                gen.close()
            finally:
                _current.reset(token)
            raise
        except BaseException as e:
            exc = e


def _wrap_async_gen(
    func: Callable[..., AsyncGenerator[Any, Any]], make: Callable[[], Scope]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        scope = make()
        token = _current.set(scope)
        try:
            agen = func(*args, **kwargs)
        finally:
            _current.reset(token)
        return _scoped_agen(agen, scope)

    return wrapper


async def _scoped_agen(agen: AsyncGenerator[Any, Any], scope: Scope) -> AsyncGenerator[Any, Any]:
    send: Any = None
    exc: BaseException | None = None
    while True:
        token = _current.set(scope)
        try:
            step: Awaitable[Any] = agen.athrow(exc) if exc is not None else agen.asend(send)
            item = await step
        except StopAsyncIteration:
            return
        finally:
            _current.reset(token)
        exc = None
        send = None
        try:
            send = yield item
        except GeneratorExit:
            token = _current.set(scope)
            try:
                await agen.aclose()
            finally:
                _current.reset(token)
            raise
        except BaseException as e:
            exc = e
