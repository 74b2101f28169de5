"""trace_tokens scenarios for ``bench/overhead.py`` (issue 5).

Compare the ``ours +med`` of "in 1 scope" and "in 3 nested scopes" with the plain "openai chat
sync" row of the same run: the difference is what an open scope adds per call (bar: <= 2 us).
The "enter+exit" row times one ``with trace_tokens(...)`` block with nothing inside; its bare
median is the cost of one scope entry and exit (bar: <= 5 us).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from scenarios_openai import _MESSAGES, _clients

from ai_tokentrace import trace_tokens

__all__ = ["scenarios"]


def _nested(depth: int) -> Callable[[], Any]:
    @contextlib.contextmanager
    def setup() -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for i in range(depth):
                stack.enter_context(
                    trace_tokens(f"level-{i}", user_id="u1", tags=[f"t{i}"], metadata={"i": i})
                )
            yield

    return setup


def scenarios() -> list[dict[str, Any]]:
    sync, _ = _clients()

    def chat_sync() -> Any:
        return sync.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES)

    def enter_exit() -> None:
        with trace_tokens("step", user_id="u1", tags=["a"]):
            pass

    return [
        {"name": "openai chat sync in 1 scope", "call": chat_sync, "setup": _nested(1)},
        {"name": "openai chat sync in 3 nested scopes", "call": chat_sync, "setup": _nested(3)},
        {"name": "trace_tokens enter+exit (no call)", "call": enter_exit},
    ]
