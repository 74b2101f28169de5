"""A fake OpenAI server at the HTTP transport, for offline demos and tests with real SDK clients.

>>> from ai_tokentrace.testing.fake_openai import fake_openai_client
>>> client = fake_openai_client()
>>> client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

It answers chat completions (plain and streamed, with or without ``include_usage``), the
Responses API (plain, streamed events, background + retrieve, compact; ``client.beta.responses``
too, whose ``?beta=true`` is a query), decisions, embeddings, legacy completions, images and audio
transcriptions, with realistic usage: prompt tokens that grow with the input, cached tokens on
long prompts, reasoning tokens for reasoning models. Nothing leaves the process. Special
models: ``fake-error-<status>`` answers with that HTTP error; ``fake-stream-error`` breaks a
stream off with an error event after two chunks;
``fake-stream-cut`` loses the connection after two chunks (the transport raises ``ReadError``);
``fake-failed`` answers a Responses request with a response whose status is ``failed`` (with
its usage). ``background_polls=N`` makes the first N retrieves of a background response answer
``in_progress``, without usage, as a response still running does.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "FakeOpenAI",
    "fake_azure_openai_client",
    "fake_openai_client",
    "httpx_module",
]

_WORDS = [
    "Token",
    "counts",
    "are",
    "exact",
    "here",
    "and",
    "every",
    "call",
    "is",
    "counted",
    "exactly",
    "once",
]
_ANSWERS = [
    "Yes, returns are accepted within 30 days with a receipt.",
    "Orders usually ship within two days.",
    "Yes, gift cards are available in store and online.",
    "Try a classic: it is short, warm and funny.",
    " ".join(_WORDS) + ".",
]


def _answer(prompt: str) -> str:
    """A canned answer, picked by the prompt (usage still reports ``output_tokens``)."""
    text = prompt.lower()
    for i, key in enumerate(("return", "ship", "gift", "novel")):
        if key in text:
            return _ANSWERS[i]
    return _ANSWERS[-1]


def httpx_module() -> Any:
    """The httpx flavour the installed openai SDK speaks (``httpx2`` from openai 3, else httpx)."""
    import openai._base_client as base

    return getattr(base, "httpx2", None) or vars(base)["httpx"]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _text_of(value: Any) -> str:
    """All the text in a message/input structure (strings anywhere inside)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_text_of(v) for k, v in value.items() if k not in ("role", "type"))
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    return ""


def _served_tier(body: dict[str, Any]) -> str:
    """The tier a response says served it, as OpenAI answers: flex when asked for, priority for
    priority or fast, else default."""
    asked = body.get("service_tier")
    if asked == "flex":
        return "flex"
    return "priority" if asked in ("priority", "fast") else "default"


def _is_reasoning(model: str) -> bool:
    return bool(re.match(r"^(o\d|gpt-5)", model))


@functools.cache
def _body_class(hx: Any) -> Any:
    """The response body class for ``hx`` (one class, not one a response)."""

    class Reads(hx.SyncByteStream, hx.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, pieces: list[bytes], lost: bool) -> None:
            self.pieces = pieces
            self.lost = lost

        def __iter__(self) -> Iterator[bytes]:
            yield from self.pieces
            if self.lost:
                raise hx.ReadError("fake connection lost mid-stream")

        async def __aiter__(self) -> Any:
            for piece in self.pieces:
                yield piece
            if self.lost:
                raise hx.ReadError("fake connection lost mid-stream")

    return Reads


def _event_by_event(hx: Any, pieces: list[bytes], lost: bool = False) -> Any:
    """A response body (sync and async) that sends ``pieces`` one read each, as a server that
    flushes every event does; ``lost``: then loses the connection."""
    return _body_class(hx)(pieces, lost)


class FakeOpenAI:
    """The request handler. Keeps a request log and the background responses it created."""

    def __init__(
        self,
        *,
        output_tokens: int = 24,
        latency_chunks: int = 6,
        background_polls: int = 0,
        batch_polls: int = 1,
        batch_end: str = "completed",
        batch_model: str = "gpt-5-mini",
        turn_polls: int = 1,
        turn_end: str = "completed",
        turn_usage: str = "both",
        subagent_turns: int = 0,
    ) -> None:
        self.output_tokens = output_tokens
        self.chunks = latency_chunks
        self.background_polls = background_polls
        self.batch_polls = batch_polls  # retrieves answering in_progress before the batch ends
        self.batch_end = batch_end  # how a batch ends: completed, expired, cancelled or failed
        self.batch_model = batch_model
        # Agents API sessions: a turn's retrieves answer in_progress ``turn_polls`` times; it
        # ends ``turn_end`` (completed, failed or cancelled); its usage is on the turn and on
        # the event that ends it (``both``), on the event only (``event``) or nowhere
        # (``none``); each input also runs ``subagent_turns`` subagent turns, with usage of
        # their own
        self.turn_polls = turn_polls
        self.turn_end = turn_end
        self.turn_usage = turn_usage
        self.subagent_turns = subagent_turns
        self._agents: dict[str, str] = {}  # agent id -> model
        self._sessions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._background: dict[str, dict[str, Any]] = {}
        self._batches: dict[str, dict[str, Any]] = {}

    # -- usage ------------------------------------------------------------------------------------
    def _usage_numbers(self, model: str, prompt_text: str) -> dict[str, int]:
        prompt = _tokens(prompt_text) + 7
        cached = (prompt // 2 // 128) * 128 if prompt >= 1024 else 0
        reasoning = 64 if _is_reasoning(model) else 0
        completion = self.output_tokens + reasoning
        return {
            "prompt": prompt,
            "completion": completion,
            "cached": cached,
            "reasoning": reasoning,
        }

    @staticmethod
    def _chat_usage(n: dict[str, int]) -> dict[str, Any]:
        return {
            "prompt_tokens": n["prompt"],
            "completion_tokens": n["completion"],
            "total_tokens": n["prompt"] + n["completion"],
            "prompt_tokens_details": {"cached_tokens": n["cached"], "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": n["reasoning"],
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _responses_usage(n: dict[str, int]) -> dict[str, Any]:
        return {
            "input_tokens": n["prompt"],
            "output_tokens": n["completion"],
            "total_tokens": n["prompt"] + n["completion"],
            "input_tokens_details": {"cached_tokens": n["cached"]},
            "output_tokens_details": {"reasoning_tokens": n["reasoning"]},
        }

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    # -- dispatch ---------------------------------------------------------------------------------
    def __call__(self, request: Any) -> Any:
        hx = httpx_module()
        path = request.url.path
        method = request.method
        body: dict[str, Any] = {}
        ctype = request.headers.get("content-type", "")
        if method == "POST" and ctype.startswith("application/json"):
            body = json.loads(request.content or b"{}")
        elif method == "POST" and ctype.startswith("multipart/"):
            m = re.search(rb'name="model"\r\n\r\n([^\r]*)', request.read())
            body = {"model": m.group(1).decode() if m else None}
        self.requests.append((method, path, body))
        model = str(body.get("model") or "")
        deployment = re.search(r"/deployments/([^/]+)/", path)
        answered = model
        if deployment:
            answered = "gpt-4o-2024-11-20"  # Azure: the deployment name is not the model
        err = re.match(r"fake-error-(\d{3})$", model)
        if err:
            status = int(err.group(1))
            return hx.Response(
                status,
                json={"error": {"message": f"fake error {status}", "type": "fake", "code": None}},
                headers={"x-request-id": "req_fake_error"},
            )
        tail = path.split("/openai", 1)[-1]
        tail = re.sub(r"^(/v1)?(/deployments/[^/]+)?", "", tail)
        route: Callable[[dict[str, Any], str], Any] | None = {
            ("POST", "/chat/completions"): self._chat,
            ("POST", "/responses"): self._responses,
            ("POST", "/responses/compact"): self._compact,
            ("POST", "/responses/input_tokens"): self._input_tokens,
            ("POST", "/decisions"): self._decisions,
            ("POST", "/completions"): self._completions,
            ("POST", "/embeddings"): self._embeddings,
            ("POST", "/images/generations"): self._images,
            ("POST", "/images/edits"): self._images,
            ("POST", "/audio/transcriptions"): self._transcription,
        }.get((method, tail))
        if route is None and method == "GET" and tail.startswith("/responses/"):
            return self._retrieve(tail.split("/")[2], request)
        if tail == "/batches" and method == "POST":
            return self._batch_create(body)
        if tail == "/batches" and method == "GET":
            batches = [job["batch"] for job in self._batches.values()]
            return self._json({"object": "list", "data": batches, "has_more": False})
        if tail.startswith("/batches/"):
            return self._batch(method, tail.split("/")[2:])
        if tail == "/agents" or tail.startswith("/agents/"):
            answer = self._agents_api(method, tail.split("/")[2:], body)
            if answer is not None:
                return answer
        if route is None:
            return hx.Response(404, json={"error": {"message": f"no fake for {method} {path}"}})
        return route(body, answered)

    def _json(self, data: Any) -> Any:
        return httpx_module().Response(200, json=data, headers={"x-request-id": self._id("req")})

    def _sse(self, events: Iterator[tuple[str | None, Any]], cut_after: int | None = None) -> Any:
        def gen() -> Iterator[bytes]:
            for event, data in events:
                head = f"event: {event}\n" if event else ""
                payload = data if isinstance(data, str) else json.dumps(data)
                yield f"{head}data: {payload}\n\n".encode()

        hx = httpx_module()
        headers = {"content-type": "text/event-stream", "x-request-id": self._id("req")}
        pieces = list(gen())
        if cut_after is not None:
            return hx.Response(
                200, headers=headers, stream=_event_by_event(hx, pieces[:cut_after], lost=True)
            )
        return hx.Response(200, headers=headers, stream=_event_by_event(hx, pieces))

    # -- chat -------------------------------------------------------------------------------------
    def _chat(self, body: dict[str, Any], model: str) -> Any:
        prompt = _text_of(body.get("messages"))
        n = self._usage_numbers(body.get("model") or "", prompt)
        cid = self._id("chatcmpl")
        messages = body.get("messages")
        text = _answer(_text_of(messages[-1] if isinstance(messages, list) and messages else ""))
        if not body.get("stream"):
            return self._json(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": 1_767_225_600,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": self._chat_usage(n),
                    "service_tier": _served_tier(body),
                    "system_fingerprint": "fp_fake",
                }
            )
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        broken = body.get("model") == "fake-stream-error"
        cut = 2 if body.get("model") == "fake-stream-cut" else None
        chunks = self._chat_chunks(cid, model, text, n, include, broken, _served_tier(body))
        return self._sse(chunks, cut)

    def _chat_chunks(
        self,
        cid: str,
        model: str,
        text: str,
        n: dict[str, int],
        include: bool,
        broken: bool,
        tier: str,
    ) -> Iterator[tuple[str | None, Any]]:
        base = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": 1_767_225_600,
            "model": model,
            "service_tier": tier,
        }
        extra = {"usage": None} if include else {}
        words = text.split(" ")
        per = max(1, len(words) // self.chunks)
        pieces = [" ".join(words[i : i + per]) for i in range(0, len(words), per)]
        first = {"role": "assistant", "content": ""}
        yield (
            None,
            {**base, "choices": [{"index": 0, "delta": first, "finish_reason": None}], **extra},
        )
        for i, piece in enumerate(pieces):
            if broken and i == 2:
                yield None, {"error": {"message": "fake stream broken off", "type": "server_error"}}
                return
            delta = {"content": piece if i == 0 else " " + piece}
            yield (
                None,
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}], **extra},
            )
        yield (
            None,
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **extra},
        )
        if include:
            yield None, {**base, "choices": [], "usage": self._chat_usage(n)}
        yield None, "[DONE]"

    # -- responses --------------------------------------------------------------------------------
    def _response_obj(
        self,
        rid: str,
        model: str,
        n: dict[str, int] | None,
        status: str,
        text: str = "",
        tier: str = "default",
    ) -> dict[str, Any]:
        output = []
        if status == "completed":
            output = [
                {
                    "id": rid.replace("resp_", "msg_"),
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        return {
            "id": rid,
            "object": "response",
            "created_at": 1_767_225_600,
            "status": status,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "service_tier": tier,
            "usage": self._responses_usage(n) if n is not None else None,
        }

    def _responses(self, body: dict[str, Any], model: str) -> Any:
        prompt = _text_of(body.get("input")) + " " + str(body.get("instructions") or "")
        n = self._usage_numbers(body.get("model") or "", prompt)
        rid = self._id("resp")
        tier = _served_tier(body)
        if body.get("background") and not body.get("stream"):
            self._background[rid] = {
                "model": model,
                "n": n,
                "text": _answer(_text_of(body.get("input"))),
                "tier": tier,
            }
            return self._json(self._response_obj(rid, model, None, "queued", tier=tier))
        text = _answer(_text_of(body.get("input")))
        if not body.get("stream"):
            status = "failed" if body.get("model") == "fake-failed" else "completed"
            return self._json(self._response_obj(rid, model, n, status, text, tier))
        broken = body.get("model") == "fake-stream-error"
        cut = 2 if body.get("model") == "fake-stream-cut" else None
        return self._sse(self._response_events(rid, model, n, broken, text, tier), cut)

    def _response_events(
        self,
        rid: str,
        model: str,
        n: dict[str, int],
        broken: bool,
        text: str,
        tier: str = "default",
    ) -> Iterator[tuple[str | None, Any]]:
        seq = itertools.count()
        start = self._response_obj(rid, model, None, "in_progress", tier=tier)
        yield (
            "response.created",
            {"type": "response.created", "response": start, "sequence_number": next(seq)},
        )
        item = rid.replace("resp_", "msg_")
        msg: dict[str, Any] = {
            "id": item,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        at = {"item_id": item, "output_index": 0, "content_index": 0}
        yield (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": msg,
                "sequence_number": next(seq),
            },
        )
        part = {"type": "output_text", "text": "", "annotations": []}
        yield (
            "response.content_part.added",
            {
                "type": "response.content_part.added",
                **at,
                "part": part,
                "sequence_number": next(seq),
            },
        )
        words = text.split(" ")
        per = max(1, len(words) // self.chunks)
        for i in range(0, len(words), per):
            if broken and i >= 2 * per:
                yield (
                    "error",
                    {
                        "type": "error",
                        "code": "server_error",
                        "message": "fake stream broken off",
                        "param": None,
                        "sequence_number": next(seq),
                    },
                )
                return
            delta = (" " if i else "") + " ".join(words[i : i + per])
            yield (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    **at,
                    "delta": delta,
                    "logprobs": [],
                    "sequence_number": next(seq),
                },
            )
        yield (
            "response.output_text.done",
            {
                "type": "response.output_text.done",
                **at,
                "text": text,
                "logprobs": [],
                "sequence_number": next(seq),
            },
        )
        part = {"type": "output_text", "text": text, "annotations": []}
        yield (
            "response.content_part.done",
            {
                "type": "response.content_part.done",
                **at,
                "part": part,
                "sequence_number": next(seq),
            },
        )
        msg = {**msg, "status": "completed", "content": [part]}
        yield (
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": msg,
                "sequence_number": next(seq),
            },
        )
        done = self._response_obj(rid, model, n, "completed", text, tier)
        yield (
            "response.completed",
            {"type": "response.completed", "response": done, "sequence_number": next(seq)},
        )

    def _retrieve(self, rid: str, request: Any) -> Any:
        job = self._background.get(rid)
        if job is None:
            return httpx_module().Response(404, json={"error": {"message": f"no response {rid}"}})
        job["polls"] = job.get("polls", 0) + 1
        if job["polls"] <= self.background_polls:
            return self._json(
                self._response_obj(rid, job["model"], None, "in_progress", tier=job["tier"])
            )
        done = self._response_obj(
            rid, job["model"], job["n"], "completed", job["text"], job["tier"]
        )
        if request.url.params.get("stream") == "true":
            seq = itertools.count()
            return self._sse(
                iter(
                    [
                        (
                            "response.completed",
                            {
                                "type": "response.completed",
                                "response": done,
                                "sequence_number": next(seq),
                            },
                        )
                    ]
                )
            )
        return self._json(done)

    # -- batches ----------------------------------------------------------------------------------
    def _batch_create(self, body: dict[str, Any]) -> Any:
        """A batch of three requests, validating; it ends after ``batch_polls`` retrieves."""
        bid = f"batch_{uuid.uuid4().hex}"
        batch = {
            "id": bid,
            "object": "batch",
            "endpoint": body.get("endpoint") or "/v1/chat/completions",
            "input_file_id": body.get("input_file_id") or "file-fake",
            "completion_window": body.get("completion_window") or "24h",
            "status": "validating",
            "created_at": int(time.time()) - 3600,  # dated now: batch prices have a start date
            "request_counts": {"total": 3, "completed": 0, "failed": 0},
            "model": self.batch_model,
            "usage": None,
        }
        self._batches[bid] = {"batch": batch, "polls": 0, "cancel": False}
        return self._json(batch)

    def _batch(self, method: str, rest: list[str]) -> Any:
        job = self._batches.get(rest[0])
        if job is None:
            return httpx_module().Response(404, json={"error": {"message": f"no batch {rest}"}})
        batch = job["batch"]
        if method == "POST" and rest[1:] == ["cancel"]:
            job["cancel"] = True
            return self._json({**batch, "status": "cancelling"})
        job["polls"] += 1
        if job["polls"] <= self.batch_polls:
            return self._json({**batch, "status": "in_progress"})
        end = "cancelled" if job["cancel"] else self.batch_end
        done = 1 if end in ("cancelled", "expired") else 0 if end == "failed" else 3
        ended = {**batch, "status": end, f"{end}_at": batch["created_at"] + 3600}
        ended["request_counts"] = {"total": 3, "completed": done, "failed": 3 - done}
        if done:
            n = self._usage_numbers(self.batch_model, "word " * 1500)  # a prompt cache hit too
            usage = self._responses_usage({k: v * done for k, v in n.items()})
            ended["usage"] = usage
        return self._json(ended)

    # -- the Agents API (beta): agents, sessions, their turns and event streams -------------------
    def _agents_api(self, method: str, rest: list[str], body: dict[str, Any]) -> Any:
        if not rest and method == "POST":
            aid = f"agent_{uuid.uuid4().hex}"
            self._agents[aid] = str(body.get("model") or "gpt-5-mini")
            return self._json(self._agent(aid))
        if len(rest) == 1 and rest[0] in self._agents:
            if method == "POST" and body.get("model"):  # an update: sessions keep their model
                self._agents[rest[0]] = str(body["model"])
            return self._json(self._agent(rest[0]))
        if not rest or rest[0] != "sessions":
            return None
        if len(rest) == 1 and method == "POST":
            return self._session_create(body)
        if len(rest) == 1:
            sessions = [self._session(sid) for sid in self._sessions]
            return self._json({"object": "list", "data": sessions, "has_more": False})
        state = self._sessions.get(rest[1]) if len(rest) > 1 else None
        if state is None:
            return httpx_module().Response(404, json={"error": {"message": f"no session {rest}"}})
        sid = rest[1]
        if len(rest) == 2:
            return self._json(self._session(sid))
        if rest[2:] == ["events"] and method == "POST":
            for event in body.get("events") or []:
                self._start_turns(sid, _text_of(event.get("content") or event))
            return httpx_module().Response(202, headers={"x-request-id": self._id("req")})
        if rest[2:] == ["events"]:
            return self._sse(self._session_events(sid, created=False))
        if rest[2:] == ["turns"]:
            turns = [self._public(t) for t in state["turns"].values() if not t["subagent_id"]]
            return self._json({"object": "list", "data": turns, "has_more": False})
        turn = state["turns"].get(rest[-1])
        if turn is None or rest[2] not in ("turns", "subagents"):
            return httpx_module().Response(404, json={"error": {"message": f"no turn {rest}"}})
        state["polls"][turn["id"]] = polls = state["polls"].get(turn["id"], 0) + 1
        if turn["status"] == "in_progress" and polls > self.turn_polls:
            self._end_turn(sid, turn)
        return self._json(self._public(turn))

    def _agent(self, aid: str) -> dict[str, Any]:
        return {"id": aid, "object": "agent", "model": self._agents[aid], "created_at": 0}

    def _session_create(self, body: dict[str, Any]) -> Any:
        agent = body.get("agent") or {}
        aid = body.get("agent_id") or f"agent_{uuid.uuid4().hex}"
        self._agents.setdefault(aid, str(agent.get("model") or "gpt-5-mini"))
        sid = f"sess_{uuid.uuid4().hex}"
        self._sessions[sid] = {
            "agent": aid,
            "model": self._agents[aid],  # the agent's model when the session was made
            "turns": {},
            "polls": {},
            "unstreamed": [],
        }
        if body.get("input"):
            self._start_turns(sid, _text_of(body["input"]))
        if body.get("stream"):
            return self._sse(self._session_events(sid, created=True))
        return self._json(self._session(sid))

    def _session(self, sid: str) -> dict[str, Any]:
        state = self._sessions[sid]
        aid = state["agent"]
        ended = [t["usage"] for t in state["turns"].values() if t["usage"]]
        running = any(t["status"] == "in_progress" for t in state["turns"].values())
        usage = None
        if ended:
            usage = self._responses_usage(
                {
                    "prompt": sum(u["input_tokens"] for u in ended),
                    "completion": sum(u["output_tokens"] for u in ended),
                    "cached": sum(u["input_tokens_details"]["cached_tokens"] for u in ended),
                    "reasoning": sum(u["output_tokens_details"]["reasoning_tokens"] for u in ended),
                }
            )
        return {
            "id": sid,
            "object": "agent.session",
            "agent": {"id": aid, "model": state["model"], "service_tier": "auto"},
            "status": "in_progress" if running else "idle",
            "usage": usage,  # the session's running total: never a record's
            "metadata": {},
            "created_at": 0,
        }

    def _start_turns(self, sid: str, text: str) -> None:
        """Input starts a turn of the root agent and ``subagent_turns`` subagent turns."""
        state = self._sessions[sid]
        begun = int(time.time()) - 60
        for n in range(1 + self.subagent_turns):
            tid = f"turn_{uuid.uuid4().hex}"
            state["turns"][tid] = {
                "id": tid,
                "object": "agent.session.turn",
                "agent_id": state["agent"] if n == 0 else f"agent_sub{n}",  # the subagent's
                "session_id": sid,
                "subagent_id": None if n == 0 else f"subagent_fake{n}",
                "status": "in_progress",
                "created_at": begun,
                "started_at": begun + 1,
                "completed_at": None,
                "usage": None,
                "_text": text * (n + 1) * 40,  # a long prompt: cached tokens too
            }
            state["unstreamed"].append(tid)

    def _end_turn(self, sid: str, turn: dict[str, Any]) -> None:
        if turn["status"] != "in_progress":
            return
        model = self._sessions[sid]["model"]
        turn["status"] = self.turn_end
        turn["completed_at"] = turn["started_at"] + 30
        turn["usage"] = self._responses_usage(self._usage_numbers(model, turn.pop("_text")))

    def _public(self, turn: dict[str, Any]) -> dict[str, Any]:
        """A turn as the API shows it (its usage where ``turn_usage`` puts it)."""
        shown = {k: v for k, v in turn.items() if not k.startswith("_")}
        if self.turn_usage != "both":
            shown["usage"] = None
        return shown

    def _session_events(self, sid: str, created: bool) -> Iterator[tuple[str | None, Any]]:
        """A session's events: its creation (``created``), then each turn not streamed yet,
        from its start to its end, then the session idle."""
        state = self._sessions[sid]
        if created:
            session = self._session(sid)
            yield None, {"type": "agent.session.created", "event_id": "", "session": session}
        while state["unstreamed"]:
            turn = state["turns"][state["unstreamed"].pop(0)]
            base = {"event_id": "", "session_id": sid, "turn_id": turn["id"]}
            yield None, {**base, "type": "agent.session.turn.created", "turn": self._public(turn)}
            yield None, {**base, "type": "agent.session.turn.output_text.delta", "delta": "Done."}
            self._end_turn(sid, turn)
            end = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}
            usage = turn["usage"] if self.turn_usage in ("both", "event") else None
            yield (
                None,
                {
                    **base,
                    "type": f"agent.session.turn.{end[turn['status']]}",
                    "turn": self._public(turn),
                    "usage": usage,
                },
            )
        yield None, {"type": "agent.session.idle", "event_id": "", "session": self._session(sid)}

    def _compact(self, body: dict[str, Any], model: str) -> Any:
        n = self._usage_numbers(body.get("model") or "", _text_of(body.get("input")))
        return self._json(
            {
                "id": self._id("cmp"),
                "object": "response.compaction",
                "created_at": 1_767_225_600,
                "output": [],
                "usage": self._responses_usage(n),
            }
        )

    def _decisions(self, body: dict[str, Any], model: str) -> Any:
        """A score of 0.5 for each question, with the Responses API's usage (a cache write on
        the input too)."""
        n = self._usage_numbers(body.get("model") or "", _text_of(body.get("input")))
        usage = self._responses_usage(n)
        usage["input_tokens_details"]["cache_write_tokens"] = 16
        answers: list[dict[str, Any]] = [
            {
                "type": "score",
                "name": q.get("name") if isinstance(q, dict) else None,
                "score": 0.5,
                "confidence": 0.9,
                "probabilities": [],
            }
            for q in body.get("questions") or []
        ]
        return self._json({"answers": answers, "model": model, "usage": usage})

    def _input_tokens(self, body: dict[str, Any], model: str) -> Any:
        return self._json(
            {
                "object": "response.input_tokens",
                "input_tokens": _tokens(_text_of(body.get("input"))) + 7,
            }
        )

    # -- others -----------------------------------------------------------------------------------
    def _completions(self, body: dict[str, Any], model: str) -> Any:
        n = self._usage_numbers(body.get("model") or "", _text_of(body.get("prompt")))
        usage = {
            "prompt_tokens": n["prompt"],
            "completion_tokens": n["completion"],
            "total_tokens": n["prompt"] + n["completion"],
        }
        cid = self._id("cmpl")
        base = {"id": cid, "object": "text_completion", "created": 1_767_225_600, "model": model}
        if not body.get("stream"):
            return self._json(
                {
                    **base,
                    "choices": [
                        {"index": 0, "text": "fake", "finish_reason": "stop", "logprobs": None}
                    ],
                    "usage": usage,
                }
            )
        include = bool((body.get("stream_options") or {}).get("include_usage"))

        def events() -> Iterator[tuple[str | None, Any]]:
            for word in _WORDS[:3]:
                yield (
                    None,
                    {
                        **base,
                        "choices": [
                            {"index": 0, "text": word, "finish_reason": None, "logprobs": None}
                        ],
                    },
                )
            if include:
                yield None, {**base, "choices": [], "usage": usage}
            yield None, "[DONE]"

        return self._sse(events())

    def _embeddings(self, body: dict[str, Any], model: str) -> Any:
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        vector = [0.125, -0.25, 0.5, 0.0625]
        fmt = body.get("encoding_format")
        data = []
        for i, _ in enumerate(inputs):
            emb: Any = vector
            if fmt == "base64":
                emb = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        prompt = sum(_tokens(_text_of(x)) for x in inputs)
        return self._json(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
            }
        )

    def _images(self, body: dict[str, Any], model: str) -> Any:
        prompt = _tokens(str(body.get("prompt") or "")) + 10
        return self._json(
            {
                "created": 1_767_225_600,
                "data": [{"b64_json": base64.b64encode(b"fake-png").decode()}],
                "usage": {
                    "input_tokens": prompt,
                    "output_tokens": 1056,
                    "total_tokens": prompt + 1056,
                    "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0},
                },
            }
        )

    def _transcription(self, body: dict[str, Any], model: str) -> Any:
        if str(body.get("model") or "").startswith("whisper"):
            usage: dict[str, Any] = {"type": "duration", "seconds": 7}
        else:
            usage = {
                "type": "tokens",
                "input_tokens": 70,
                "output_tokens": 12,
                "total_tokens": 82,
                "input_token_details": {"text_tokens": 0, "audio_tokens": 70},
            }
        return self._json({"text": "Hello from the fake transcription.", "usage": usage})


def _transport(handler: Callable[[Any], Any]) -> Any:
    return httpx_module().MockTransport(handler)


def fake_openai_client(
    async_: bool = False, *, fake: FakeOpenAI | None = None, **kwargs: Any
) -> Any:
    """A real ``openai.OpenAI`` (or ``AsyncOpenAI``) whose HTTP goes to a :class:`FakeOpenAI`.

    The handler is at ``client._fake`` (its ``requests`` log is handy in tests).
    """
    import openai

    hx = httpx_module()
    fake = fake or FakeOpenAI()
    transport = _transport(fake)
    kwargs.setdefault("api_key", "sk-fake")
    kwargs.setdefault("max_retries", 0)
    client: Any
    if async_:
        client = openai.AsyncOpenAI(http_client=hx.AsyncClient(transport=transport), **kwargs)
    else:
        client = openai.OpenAI(http_client=hx.Client(transport=transport), **kwargs)
    client._fake = fake
    return client


def fake_azure_openai_client(
    async_: bool = False, *, fake: FakeOpenAI | None = None, **kwargs: Any
) -> Any:
    """A real ``openai.AzureOpenAI`` (or async) on the fake transport; answers name a real model."""
    import openai

    hx = httpx_module()
    fake = fake or FakeOpenAI()
    transport = _transport(fake)
    kwargs.setdefault("api_key", "fake-azure-key")
    kwargs.setdefault("api_version", "2024-10-21")
    kwargs.setdefault("azure_endpoint", "https://fake-resource.openai.azure.com")
    kwargs.setdefault("max_retries", 0)
    client: Any
    if async_:
        client = openai.AsyncAzureOpenAI(http_client=hx.AsyncClient(transport=transport), **kwargs)
    else:
        client = openai.AzureOpenAI(http_client=hx.Client(transport=transport), **kwargs)
    client._fake = fake
    return client
