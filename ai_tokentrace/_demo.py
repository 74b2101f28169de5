"""``ai-tokentrace demo``: a small example application, counted end to end.

Offline by default: real ``openai`` (and ``google-genai``) clients talk to the fake transports in
:mod:`ai_tokentrace.testing`, so the demo runs anywhere with no key and no network. ``--live``
calls the real APIs when ``OPENAI_API_KEY`` (and ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``) are set.
Every record goes to a JSONL file; a per-model summary is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import _instrument
from ._record import TokenUsageRecord
from ._scope import trace_tokens

__all__ = ["main"]

CHAT_MODEL = "gpt-4o-mini"
REASONING_MODEL = "gpt-5-mini"
EMBED_MODEL = "text-embedding-3-small"
DEFAULT_OUT = "demo-output/usage.jsonl"
_TURN_ENDS = {f"agent.session.turn.{end}" for end in ("completed", "failed", "cancelled")}

# A long, stable system prompt: the kind of prefix OpenAI serves from its prompt cache.
SYSTEM = (
    "You are the support assistant of a small bookshop. Answer in one short sentence. "
    + "Policies: returns within 30 days with a receipt; orders ship in two days; " * 60
)
QUESTIONS = [
    "Can I return a book I bought last week?",
    "How long does shipping take?",
    "Do you sell gift cards?",
]


def _openai_clients(live: bool) -> tuple[Any, Any]:
    if live:
        import openai

        return openai.OpenAI(), openai.AsyncOpenAI()
    from .testing.fake_openai import FakeOpenAI, fake_openai_client

    fake = FakeOpenAI()
    return fake_openai_client(fake=fake), fake_openai_client(async_=True, fake=fake)


def _ask(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def _run_openai(live: bool, say: Any) -> None:
    client, aclient = _openai_clients(live)
    with trace_tokens("support-bot", user_id="demo-user", tags=["demo"]) as bot:
        answer = client.chat.completions.create(model=CHAT_MODEL, messages=_ask(QUESTIONS[0]))
        say(f"  chat        {answer.choices[0].message.content!r:.60}")
        # Streamed without include_usage: ai-tokentrace asks for usage and hides that chunk.
        parts = []
        for chunk in client.chat.completions.create(
            model=CHAT_MODEL, messages=_ask(QUESTIONS[1]), stream=True
        ):
            parts.append(chunk.choices[0].delta.content or "")  # safe: every chunk has a choice
        say(f"  chat stream {''.join(parts)!r:.60}")
        response = client.responses.create(
            model=REASONING_MODEL, input=QUESTIONS[2], instructions=SYSTEM
        )
        say(f"  responses   {response.output_text!r:.60}")
        with client.responses.stream(model=REASONING_MODEL, input="Suggest one novel.") as stream:
            final = stream.get_final_response()
        say(f"  resp stream {final.output_text!r:.60}")
    say(f"  -> support-bot scope: {_scope_line(bot)}")

    with trace_tokens("indexer", tags=["demo", "batch"]) as indexer:
        client.embeddings.create(model=EMBED_MODEL, input=QUESTIONS)
        # The flex tier: slower, at half the price (priced at the tier that served it).
        client.responses.create(
            model=REASONING_MODEL, input="Tag this title: Dune.", service_tier="flex"
        )
        if not live:  # a real batch takes up to a day; the fake ends it on the second look
            batch = client.batches.create(
                input_file_id="file-demo", endpoint="/v1/responses", completion_window="24h"
            )
            for _ in range(3):
                if client.batches.retrieve(batch.id).status == "completed":
                    break

        async def summaries() -> None:
            await asyncio.gather(
                *(
                    aclient.chat.completions.create(model=CHAT_MODEL, messages=_ask(q))
                    for q in QUESTIONS
                )
            )

        asyncio.run(summaries())
    say(f"  -> indexer scope:     {_scope_line(indexer)}")

    # The Agents API (beta): a session's turn runs on OpenAI's side and is counted when its
    # event stream (or a retrieve) shows it ended. Offline only here: a live session runs code.
    if not live and hasattr(client.beta, "agents"):
        with (
            trace_tokens("coding-agent", tags=["demo"]) as coder,
            client.beta.agents.sessions.create(
                agent={"model": REASONING_MODEL, "instructions": "Write code, then run it."},
                environment={"type": "openai_hosted"},
                input="Write tree.py, which prints the files here as a tree, and run it.",
                stream=True,
            ) as events,
        ):
            turns = [e.turn.status for e in events if e.type in _TURN_ENDS]
        say(f"  agent       a session, its turns: {', '.join(turns)}")
        say(f"  -> coding-agent scope: {_scope_line(coder)}")


def _scope_line(scope: Any) -> str:
    u = scope.usage
    cost = f"${scope.cost_usd:.6f}" + (" + unpriced" if scope.unpriced else "")
    return f"{len(scope.records)} calls, {u.input_tokens:,} in / {u.output_tokens:,} out, {cost}"


def _run_gemini(live: bool, say: Any) -> None:
    try:
        genai_demo = importlib.import_module("ai_tokentrace._demo_genai")
    except ImportError:
        return
    available = getattr(genai_demo, "available", None)
    if available is not None and not available(live):
        say(
            "  (skipped: google-genai not installed, or no GEMINI_API_KEY/GOOGLE_API_KEY for --live)"
        )
        return
    genai_demo.run(live)
    interaction = " and an interaction" if genai_demo.has_interactions() else ""
    say(f"  generate, stream, embed, a chat with a tool call{interaction}: done")


def summarize(records: Sequence[TokenUsageRecord], out: TextIO) -> None:
    """Print one line per (provider, model): calls, tokens and cost, then the totals."""
    rows: dict[tuple[str, str], list[Any]] = {}
    for r in records:
        key = (r.provider, r.model or "?")
        row = rows.setdefault(key, [0, 0, 0, 0, 0, 0.0, 0])
        row[0] += 1
        row[1] += r.input_tokens
        row[2] += r.output_tokens
        row[3] += r.cached_input_tokens
        row[4] += r.reasoning_tokens
        if r.cost_usd is None:
            row[6] += 1
        else:
            row[5] += r.cost_usd
    header = ("provider", "model", "calls", "input", "output", "cached", "reasoning", "cost USD")
    lines = []
    total = [0, 0, 0, 0, 0, 0.0, 0]
    for (provider, model), row in sorted(rows.items()):
        lines.append((provider, model, *_cells(row)))
        total = [a + b for a, b in zip(total, row, strict=True)]
    lines.append(("total", "", *_cells(total)))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def fmt(cells: Sequence[Any]) -> str:
        left = [str(c).ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [str(c).rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right)

    print(fmt(header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for line in lines[:-1]:
        print(fmt(line), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    print(fmt(lines[-1]), file=out)


def _cells(row: Sequence[Any]) -> tuple[str, ...]:
    cost = f"{row[5]:.6f}" + ("+?" if row[6] else "")
    return (f"{row[0]:,}", f"{row[1]:,}", f"{row[2]:,}", f"{row[3]:,}", f"{row[4]:,}", cost)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo application; returns a process exit code."""
    parser = argparse.ArgumentParser(
        prog="ai-tokentrace demo",
        description="Run a small example app with ai-tokentrace counting every call.",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="call the real APIs (needs OPENAI_API_KEY; Gemini needs GEMINI_API_KEY or GOOGLE_API_KEY)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSONL output (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    out = sys.stdout

    def say(text: str) -> None:
        print(text, file=out)

    import ai_tokentrace

    from .services._jsonl import JsonlFileTokenUsageService
    from .testing import InMemoryTokenUsageService

    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    memory = InMemoryTokenUsageService()
    was_instrumented = _instrument.instrumented()
    ai_tokentrace.instrument(service=[JsonlFileTokenUsageService(path), memory])
    mode = "live APIs" if args.live else "offline: real SDK clients on fake transports"
    say(f"ai-tokentrace demo ({mode})\n")
    try:
        say("OpenAI")
        openai_live = args.live and bool(os.environ.get("OPENAI_API_KEY"))
        if args.live and not openai_live:
            say("  (OPENAI_API_KEY is not set: using the offline fake for OpenAI)")
        _run_openai(openai_live, say)
        say("\nGemini")
        _run_gemini(args.live, say)
    finally:
        flushed = ai_tokentrace.flush(10.0)
        if not was_instrumented:
            ai_tokentrace.uninstrument()
    say("")
    summarize(memory.records, out)
    say(
        f"\n{len(memory.records)} records appended to {path}"
        + ("" if flushed else " (flush timed out)")
    )
    return 0 if flushed else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
