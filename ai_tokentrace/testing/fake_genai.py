"""A fake Gemini API / Vertex AI endpoint at the HTTP transport, for tests and the offline demo.

:func:`fake_genai_client` returns a real ``google.genai.Client`` whose HTTP goes to a
:class:`FakeGemini` instead of the network, so every layer of the SDK (automatic function
calling, automatic continuation, streaming, chats) runs for real. The fake answers
``generateContent``, ``streamGenerateContent`` (SSE), ``embedContent``, ``batchEmbedContents``,
``predict`` and ``countTokens``, and the Interactions API (``interactions``: plain, streamed,
continued, in the background, and ``get``), ``decisions`` and ``voices``, with realistic usage (thinking,
cached and tool-use prompt tokens), and keeps a ledger of what it "billed"
(:attr:`FakeGemini.billed`) so tests can check that the records add up.

>>> fake = FakeGemini()
>>> client = fake_genai_client(fake)
>>> client.models.generate_content(model="gemini-2.5-flash", contents="hi").usage_metadata
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from ..integrations.genai import TIER_HEADER

__all__ = ["FakeGemini", "InteractionEvents", "fake_genai_client", "interaction_events"]

_TOKEN_PREFIX = b"fake-continuation-"
_ARG_SAMPLES: dict[str, Any] = {
    "STRING": "Paris",
    "INTEGER": 1,
    "NUMBER": 1.0,
    "BOOLEAN": True,
}


def _running(final: dict[str, Any], fraction: float) -> dict[str, Any]:
    """A mid-stream running total: prompt, thoughts and tool-use known, candidates so far."""
    usage = dict(final)
    done = -(-int(final.get("candidatesTokenCount") or 0) * fraction // 1)
    usage["candidatesTokenCount"] = int(done)
    usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": int(done)}]
    usage["totalTokenCount"] = (
        int(final.get("totalTokenCount") or 0)
        - int(final.get("candidatesTokenCount") or 0)
        + int(done)
    )
    return usage


def _http_module() -> ModuleType:
    """The HTTP package the installed SDK builds its own clients with: its choice where it
    makes one (google-genai 2.x imports httpx2 but prefers httpx, 3.x prefers httpx2; the
    generated Interactions client of 2.x works with httpx only), else httpx2 where it imports
    it, else httpx."""
    from google.genai import _api_client

    choose = getattr(_api_client, "_get_http_client_backend", None)
    if choose is not None:
        return importlib.import_module(str(choose()))
    if getattr(_api_client, "httpx2", None) is not None:
        return importlib.import_module("httpx2")
    return importlib.import_module("httpx")


@dataclass(frozen=True)
class InteractionEvents:
    """The event types of an Interactions API stream, as the installed SDK knows them."""

    created: str
    delta: str
    completed: str
    running_totals: bool  # whether its deltas carry the usage so far


_STEP_EVENTS = InteractionEvents("interaction.created", "step.delta", "interaction.completed", True)
# google-genai 1.x's generated client (``google.genai._interactions``): the API's first events,
# outputs as contents, no usage before interaction.complete
_CONTENT_EVENTS = InteractionEvents(
    "interaction.start", "content.delta", "interaction.complete", False
)


def interaction_events() -> InteractionEvents:
    """The events the fake streams to the installed SDK: the first API's where the SDK's
    generated client has its types (``InteractionCompleteEvent``), else today's. Read once
    the SDK has imported its Interactions client (as it has by its first request)."""
    generated = sys.modules.get("google.genai._interactions.types")
    if generated is not None and hasattr(generated, "InteractionCompleteEvent"):
        return _CONTENT_EVENTS
    return _STEP_EVENTS


_TRAFFIC_TYPES = {"flex": "ON_DEMAND_FLEX", "priority": "ON_DEMAND_PRIORITY"}


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _asked_tier(body: dict[str, Any]) -> str:
    asked = str(body.get("serviceTier") or body.get("service_tier") or "").lower()
    return asked.removeprefix("service_tier_")  # ``SERVICE_TIER_PRIORITY`` is priority too


@dataclass
class FakeGemini:
    """What the fake server answers. Change the attributes between calls to script a test.

    Usage for one response: ``prompt = 10 x parts in the request``, ``candidates`` 20 for text
    (10 for a function call), plus ``thoughts_tokens``, ``cached_tokens`` (a subset of prompt) and
    ``tool_use_prompt_tokens``; ``total`` is their sum, as Gemini reports it.
    """

    text: str = "Hello from the fake Gemini."
    thoughts_tokens: int = 6
    cached_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    stream_chunks: int = 3
    continuation_hops: int = 0  # > 0: answers end with finishReason CONTINUATION that many times
    usage: dict[str, Any] | None = None  # an exact usageMetadata to send instead (e.g. partial)
    omit_usage: bool = False  # send no usageMetadata at all
    usage_on_last_chunk_only: bool = False
    downgrade_priority: bool = False  # priority asked for, standard served (the API's fallback)
    fail_stream_after: int | None = None  # streams: break the connection after this many chunks
    status_code: int = 200  # non-200: answer with a Gemini error body
    background_polls: int = 0  # interactions: gets answering in_progress before the usage
    batch_polls: int = 1  # batches: gets answering running before the batch ends
    model_version: str = "gemini-fake-001"
    billed: dict[str, dict[str, Any]] = field(default_factory=dict)  # response id -> usage sent
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (path, body)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, init=False)
    _ids: int = field(default=0, repr=False, init=False)
    _background: dict[str, list[Any]] = field(default_factory=dict, repr=False, init=False)
    _result_files: dict[str, bytes] = field(default_factory=dict, repr=False, init=False)
    _batches: dict[str, list[Any]] = field(default_factory=dict, repr=False, init=False)

    # -- transports -------------------------------------------------------------------------

    def transport(self, http: ModuleType | None = None) -> Any:
        """A sync ``MockTransport`` (of ``http``: httpx2 or httpx) answering as this fake."""
        h = http or _http_module()
        return h.MockTransport(lambda request: self._respond(h, request, asynchronous=False))

    def async_transport(self, http: ModuleType | None = None) -> Any:
        """An async ``MockTransport`` (of ``http``: httpx2 or httpx) answering as this fake."""
        h = http or _http_module()
        return h.MockTransport(lambda request: self._respond(h, request, asynchronous=True))

    @property
    def billed_total(self) -> int:
        """The sum of ``totalTokenCount`` over every response sent (what the provider billed)."""
        with self._lock:
            return sum(
                int(u.get("totalTokenCount") or u.get("total_tokens") or 0)
                for u in self.billed.values()
            )

    def respond(self, request: Any, *, http: ModuleType | None = None) -> Any:
        """Answer one ``http.Request`` (httpx2 or httpx) with an ``http.Response``.

        For serving the fake from something other than a mock transport (e.g. a local server,
        to drive an SDK on aiohttp); a streamed answer's body is a sync iterator.
        """
        return self._respond(http or _http_module(), request, asynchronous=False)

    # -- answering --------------------------------------------------------------------------

    def _respond(self, h: ModuleType, request: Any, *, asynchronous: bool) -> Any:
        path = request.url.path
        body = json.loads(request.content or b"{}")
        with self._lock:
            self.requests.append((path, body))
            self._ids += 1
            response_id = f"fake-resp-{self._ids}"
        headers = {"content-type": "application/json", **self._tier_header(path, body)}
        if self.status_code != 200:
            error = {"error": {"code": self.status_code, "message": "fake error", "status": "X"}}
            return h.Response(self.status_code, json=error, headers=headers)
        if path.endswith(":streamGenerateContent"):
            chunks = self._stream_chunks(body, response_id, "/projects/" in path)
            sse = {"content-type": "text/event-stream", **self._tier_header(path, body)}
            if asynchronous:
                return h.Response(200, content=self._aiter_sse(h, chunks), headers=sse)
            return h.Response(200, content=self._iter_sse(h, chunks), headers=sse)
        if path.endswith(":generateContent"):
            answer = self._answer(body, response_id, "/projects/" in path)
            return h.Response(200, json=answer, headers=headers)
        if path.endswith(":batchGenerateContent"):
            model = path.rsplit("/", 1)[-1].split(":")[0]
            return h.Response(200, json=self._batch_create(body, model), headers=headers)
        if "/batches/" in path:
            return self._batch(h, path.rsplit("/", 1)[-1], request.method, headers)
        if path.endswith(":download"):
            with self._lock:
                data = self._result_files.get(path.rsplit("/", 1)[-1][: -len(":download")])
            if data is None:
                return h.Response(404, json={"error": {"code": 404, "message": path}})
            return h.Response(200, content=data, headers={"content-type": "application/json"})
        if path.endswith((":countTokens", ":computeTokens")):  # pre-flight counts: not billed
            return h.Response(200, json={"totalTokens": 10, "tokensInfo": []}, headers=headers)
        if path.endswith((":embedContent", ":batchEmbedContents", ":predict")):
            return h.Response(200, json=self._embed(path, body, response_id), headers=headers)
        if path.endswith("/interactions") and request.method == "POST":
            # unique across fakes too, as the API's: ai-tokentrace counts a live one once an id
            iid = f"int-{response_id}-{uuid.uuid4().hex[:12]}"
            return self._interaction(h, body, iid, asynchronous)
        if "/interactions/" in path and request.method == "GET":
            stream = request.url.params.get("stream") == "true"
            return self._get_interaction(h, path.rsplit("/", 1)[-1], stream, asynchronous)
        if path.endswith("/voices") and request.method == "POST":
            usage = self._interaction_usage({"input": body.get("voice")})
            self._bill(response_id, usage)
            voice = {
                "type": "VOICE_TYPE_PROMPTED",
                "id": f"voice-{response_id}" if body.get("store") else None,
                "model": self.model_version,
                "usage": usage,
            }
            return h.Response(200, json=voice, headers=headers)
        if path.endswith("/decisions"):
            usage = self._interaction_usage(body)
            self._bill(response_id, usage)
            answers = {
                name: {"type": "score", "score": 0.5} for name in body.get("questions") or {}
            }
            return h.Response(200, json={"answers": answers, "usage": usage}, headers=headers)
        return h.Response(404, json={"error": {"code": 404, "message": path}}, headers=headers)

    # -- batches (the Gemini API's, with inlined requests) ------------------------------------

    def _batch_create(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """A pending batch job; each retrieve after ``batch_polls`` answers it ended, each of its
        requests answered (and billed) as generate_content would answer it."""
        requests = (((body.get("batch") or {}).get("inputConfig") or {}).get("requests") or {}).get(
            "requests"
        ) or []
        name = f"batches/fake-{uuid.uuid4().hex}"  # unique as the API's, across fakes too
        created = time.time() - 3600  # dated now: batch prices have a start date
        job = {
            "name": name,
            "metadata": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "model": f"models/{model}",
                "state": "BATCH_STATE_PENDING",
                "createTime": _rfc3339(created),
            },
        }
        with self._lock:
            self._batches[name.rsplit("/", 1)[-1]] = [
                job,
                [r.get("request") or {} for r in requests],
                0,
            ]
        return job

    def _batch(self, h: ModuleType, bid: str, method: str, headers: dict[str, str]) -> Any:
        with self._lock:
            found = self._batches.get(bid.split(":")[0])
        if found is None:
            return h.Response(404, json={"error": {"code": 404, "message": bid}}, headers=headers)
        job, requests, polls = found
        if bid.endswith(":cancel"):
            found[2] = -1  # cancelled: ends with the first request answered
            return h.Response(200, json={}, headers=headers)
        if polls >= 0:
            found[2] = polls + 1
        if 0 <= polls < self.batch_polls:
            running = {**job, "metadata": {**job["metadata"], "state": "BATCH_STATE_RUNNING"}}
            return h.Response(200, json=running, headers=headers)
        if not requests:  # a file of requests: the results go to a file too
            results = f"batch-results-{bid.split(':')[0]}"
            data = self._results_file(bid)
            with self._lock:
                self._result_files[results] = data
            metadata = {
                **job["metadata"],
                "state": "BATCH_STATE_SUCCEEDED",
                "endTime": _rfc3339(time.time()),
                "output": {"responsesFile": f"files/{results}"},
            }
            return h.Response(200, json={**job, "metadata": metadata}, headers=headers)
        answered = requests[:1] if polls < 0 else requests
        responses = []
        for i, request in enumerate(answered):
            answer = self._answer(request, f"{bid}-{i}", False)
            responses.append({"response": answer, "metadata": {"key": str(i)}})
        metadata = {
            **job["metadata"],
            "state": "BATCH_STATE_CANCELLED" if polls < 0 else "BATCH_STATE_SUCCEEDED",
            "endTime": _rfc3339(time.time()),
            "output": {"inlinedResponses": {"inlinedResponses": responses}},
        }
        return h.Response(200, json={**job, "metadata": metadata}, headers=headers)

    def _results_file(self, bid: str) -> bytes:
        """A file-input job's results, as the Gemini API writes them: a JSON line a request,
        each its response (camelCase, as on the wire) or its error. Three requests here (the
        fake never reads the input file), the last of which failed."""
        lines = []
        for i, text in enumerate(("one", "two three")):
            request = {"contents": [{"parts": [{"text": text}], "role": "user"}]}
            lines.append({"key": str(i), "response": self._answer(request, f"{bid}-{i}", False)})
        lines.append({"key": "2", "error": {"code": 400, "message": "bad request"}})
        return b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"

    def _tier_header(self, path: str, body: dict[str, Any]) -> dict[str, str]:
        """The Gemini API names the tier that served a request in a header (Vertex AI in
        usage_metadata's ``trafficType``); priority may fall back to standard."""
        asked = _asked_tier(body)
        if "/projects/" in path or asked not in ("flex", "priority", "standard"):
            return {}
        if asked == "priority" and self.downgrade_priority:
            asked = "standard"
        return {TIER_HEADER: asked}

    def _bill(self, response_id: str, usage: dict[str, Any] | None) -> None:
        # Streams call this per chunk: a running total replaces the response's earlier one.
        if usage is not None:
            with self._lock:
                self.billed[response_id] = usage

    def _usage(
        self, body: dict[str, Any], candidates: int, vertex: bool = False
    ) -> dict[str, Any] | None:
        if self.omit_usage:
            return None
        if self.usage is not None:
            return dict(self.usage)
        tier = {"trafficType": _TRAFFIC_TYPES.get(_asked_tier(body), "ON_DEMAND")} if vertex else {}
        parts = sum(len(c.get("parts") or ()) for c in body.get("contents") or ()) or 1
        prompt = 10 * parts
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + self.thoughts_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": candidates}],
        }
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, prompt)
            usage["cacheTokensDetails"] = [
                {"modality": "TEXT", "tokenCount": min(self.cached_tokens, prompt)}
            ]
        if self.tool_use_prompt_tokens:
            usage["toolUsePromptTokenCount"] = self.tool_use_prompt_tokens
            usage["totalTokenCount"] += self.tool_use_prompt_tokens
        return {**usage, **tier}

    def _hop(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """(finishReason, continuationToken) for this request under automatic continuation."""
        if not self.continuation_hops:
            return "STOP", None
        token = body.get("continuationToken")
        done = 0
        if token:
            done = int(base64.b64decode(token)[len(_TOKEN_PREFIX) :])
        if done < self.continuation_hops:
            nxt = base64.b64encode(_TOKEN_PREFIX + str(done + 1).encode()).decode()
            return "CONTINUATION", nxt
        return "STOP", None

    def _content(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """The model's parts: a function call when tools are declared and not yet answered."""
        declarations = [
            d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()
        ]
        contents = body.get("contents") or []
        last_parts = contents[-1].get("parts") or [] if contents else []
        answered = any("functionResponse" in p for p in last_parts)
        if declarations and not answered:
            decl = declarations[0]
            params = decl.get("parameters") or decl.get("parametersJsonSchema") or {}
            args = {
                name: _ARG_SAMPLES.get(str(spec.get("type", "STRING")).upper(), "x")
                for name, spec in (params.get("properties") or {}).items()
            }
            return [{"functionCall": {"name": decl["name"], "args": args}}], 10
        return [{"text": self.text}], 20

    def _answer(self, body: dict[str, Any], response_id: str, vertex: bool) -> dict[str, Any]:
        parts, candidates = self._content(body)
        finish, token = self._hop(body)
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "finishReason": finish,
            "index": 0,
        }
        if token:
            candidate["continuationToken"] = token
        answer: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": self.model_version,
            "responseId": response_id,
        }
        usage = self._usage(body, candidates, vertex)
        if usage is not None:
            answer["usageMetadata"] = usage
        self._bill(response_id, usage)
        return answer

    def _stream_chunks(
        self, body: dict[str, Any], response_id: str, vertex: bool
    ) -> list[dict[str, Any]]:
        parts, candidates = self._content(body)
        finish, token = self._hop(body)
        n = max(1, self.stream_chunks if "text" in parts[0] else 1)
        final = self._usage(body, candidates, vertex)
        chunks = []
        for i in range(n):
            last = i == n - 1
            if "text" in parts[0]:
                piece = [{"text": f"{self.text} ({i + 1}/{n})" if n > 1 else self.text}]
            else:
                piece = parts
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": piece}, "index": 0}
            if last:
                candidate["finishReason"] = finish
                if token:
                    candidate["continuationToken"] = token
            chunk: dict[str, Any] = {
                "candidates": [candidate],
                "modelVersion": self.model_version,
                "responseId": response_id,
            }
            if final is not None and (last or not self.usage_on_last_chunk_only):
                chunk["usageMetadata"] = _running(final, (i + 1) / n) if not last else final
            chunks.append(chunk)
        return chunks

    def _iter_sse(self, h: ModuleType, chunks: list[dict[str, Any]]) -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            if self.fail_stream_after is not None and i >= self.fail_stream_after:
                raise h.ReadError("fake connection lost mid-stream")
            self._bill(chunk["responseId"], chunk.get("usageMetadata"))
            yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()

    async def _aiter_sse(self, h: ModuleType, chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        for piece in self._iter_sse(h, chunks):
            yield piece

    # -- the Interactions API ----------------------------------------------------------------

    def _interaction_usage(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Usage as the Interactions API reports it: ``10 x input items`` in, 20 out, plus
        thoughts, cached and tool-use tokens as for generateContent."""
        if self.omit_usage:
            return None
        items = body.get("input")
        prompt = 10 * (len(items) if isinstance(items, list) and items else 1)
        output = 20
        usage: dict[str, Any] = {
            "total_input_tokens": prompt,
            "total_output_tokens": output,
            "total_tokens": prompt + output + self.thoughts_tokens + self.tool_use_prompt_tokens,
            "input_tokens_by_modality": [{"modality": "text", "tokens": prompt}],
            "output_tokens_by_modality": [{"modality": "text", "tokens": output}],
        }
        if self.thoughts_tokens:
            usage["total_thought_tokens"] = self.thoughts_tokens
        if self.cached_tokens:
            usage["total_cached_tokens"] = min(self.cached_tokens, prompt)
        if self.tool_use_prompt_tokens:
            usage["total_tool_use_tokens"] = self.tool_use_prompt_tokens
        return usage

    def _interaction_obj(self, body: dict[str, Any], rid: str) -> dict[str, Any]:
        """A finished interaction, or one asking to be continued (``continuation_hops``)."""
        token = body.get("continuation_token")
        done = int(str(token)[len(_TOKEN_PREFIX) :]) if token else 0
        obj: dict[str, Any] = {
            "id": rid,
            "object": "interaction",
            "status": "completed",
            "model": body.get("model") or self.model_version,
        }
        if interaction_events().running_totals:
            obj["steps"] = [
                {"type": "model_output", "content": [{"type": "text", "text": self.text}]}
            ]
        else:  # the first API's: its outputs, as contents
            obj["outputs"] = [{"type": "text", "text": self.text}]
        if done < self.continuation_hops:
            obj["status"] = "requires_continuation"
            obj["continuation_token"] = f"{_TOKEN_PREFIX.decode()}{done + 1}"
        usage = self._interaction_usage(body)
        if usage is not None:
            obj["usage"] = usage
        asked = _asked_tier(body)
        if asked in ("flex", "priority", "standard"):  # the tier that served it
            served = "standard" if asked == "priority" and self.downgrade_priority else asked
            obj["service_tier"] = served
        return obj

    def _interaction(
        self, h: ModuleType, body: dict[str, Any], rid: str, asynchronous: bool
    ) -> Any:
        if body.get("background"):
            with self._lock:
                self._background[rid] = [body, self.background_polls]
            running = {"id": rid, "object": "interaction", "status": "in_progress"}
            return h.Response(200, json=running, headers={"content-type": "application/json"})
        obj = self._interaction_obj(body, rid)
        if body.get("stream"):
            return self._interaction_events(h, obj, asynchronous)
        self._bill(rid, obj.get("usage"))
        return h.Response(200, json=obj, headers={"content-type": "application/json"})

    def _get_interaction(self, h: ModuleType, rid: str, stream: bool, asynchronous: bool) -> Any:
        with self._lock:
            waiting = self._background.get(rid)
            if waiting is not None and waiting[1] > 0:
                waiting[1] -= 1
                running = {"id": rid, "object": "interaction", "status": "in_progress"}
                return h.Response(200, json=running, headers={"content-type": "application/json"})
        if waiting is None:
            return h.Response(404, json={"error": {"code": 404, "message": rid}})
        obj = self._interaction_obj(waiting[0], rid)
        if stream:
            return self._interaction_events(h, obj, asynchronous)
        self._bill(rid, obj.get("usage"))
        return h.Response(200, json=obj, headers={"content-type": "application/json"})

    def _interaction_events(self, h: ModuleType, obj: dict[str, Any], asynchronous: bool) -> Any:
        """created, then a step whose deltas carry the running total, then completed (for
        google-genai 1.x: start, a content's deltas, without usage, then complete)."""
        kinds = interaction_events()
        final = obj.get("usage")
        created = {"id": obj["id"], "status": "in_progress", "model": obj["model"]}
        events: list[dict[str, Any]] = [{"event_type": kinds.created, "interaction": created}]
        part = "step" if kinds.running_totals else "content"
        opened = {"type": "model_output"} if kinds.running_totals else {"type": "text"}
        events.append({"event_type": f"{part}.start", "index": 0, part: opened})
        n = max(1, self.stream_chunks)
        for i in range(n):
            delta: dict[str, Any] = {
                "event_type": kinds.delta,
                "index": 0,
                "delta": {"type": "text", "text": f"{self.text} ({i + 1}/{n})"},
            }
            if final is not None and kinds.running_totals and not self.usage_on_last_chunk_only:
                so_far = dict(final)
                out = -(-int(final["total_output_tokens"]) * (i + 1) // n)
                so_far["total_output_tokens"] = out
                so_far["total_tokens"] = final["total_tokens"] - final["total_output_tokens"] + out
                delta["metadata"] = {"total_usage": so_far}
            events.append(delta)
        events.append({"event_type": f"{part}.stop", "index": 0})
        events.append({"event_type": kinds.completed, "interaction": obj})
        pieces = self._iter_events(h, obj["id"], events)
        sse = {"content-type": "text/event-stream"}
        if asynchronous:
            return h.Response(200, content=_aiter(pieces), headers=sse)
        return h.Response(200, content=pieces, headers=sse)

    def _iter_events(
        self, h: ModuleType, rid: str, events: list[dict[str, Any]]
    ) -> Iterator[bytes]:
        for i, event in enumerate(events):
            if self.fail_stream_after is not None and i >= self.fail_stream_after:
                raise h.ReadError("fake connection lost mid-stream")
            usage = event.get("metadata", {}).get("total_usage") or event.get(
                "interaction", {}
            ).get("usage")
            self._bill(rid, usage)
            yield f"data: {json.dumps(event)}\n\n".encode()

    def _embed(self, path: str, body: dict[str, Any], response_id: str) -> dict[str, Any]:
        values = [0.1, 0.2, 0.3]
        if path.endswith(":predict"):  # Vertex text-embedding models: per-instance statistics
            instances = body.get("instances") or [{}]
            predictions = [
                {"embeddings": {"values": values, "statistics": {"token_count": 5.0}}}
                for _ in instances
            ]
            self._bill(response_id, {"totalTokenCount": 5 * len(instances)})
            return {"predictions": predictions, "metadata": {"billableCharacterCount": 42}}
        if path.endswith(":embedContent"):
            n = 1
            answer: dict[str, Any] = {"embedding": {"values": values}}
        else:
            requests = body.get("requests") or [{}]
            n = len(requests)
            answer = {"embeddings": [{"values": values} for _ in requests]}
        if not self.omit_usage:
            usage = {"promptTokenCount": 4 * n, "totalTokenCount": 4 * n}
            answer["usageMetadata"] = usage
            self._bill(response_id, usage)
        return answer


async def _aiter(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def fake_genai_client(
    fake: FakeGemini | None = None,
    *,
    vertexai: bool = False,
    http: ModuleType | None = None,
    base_url: str | None = None,
    **client_kwargs: Any,
) -> Any:
    """A real ``google.genai.Client`` (sync and ``.aio``) whose HTTP is answered by ``fake``.

    Both an httpx client and an httpx async client are passed, so the SDK never uses aiohttp.
    ``vertexai=True`` builds a Vertex AI client with a static token (no Google auth calls).
    ``base_url``: where its websockets go (HTTP is answered by ``fake`` whatever the host).
    """
    from google import genai
    from google.genai import types

    fake = fake or FakeGemini()
    h = http or _http_module()
    if "httpx_client" in types.HttpOptions.model_fields:
        options = types.HttpOptions(
            httpx_client=h.Client(transport=fake.transport(h)),
            httpx_async_client=h.AsyncClient(transport=fake.async_transport(h)),
        )
    else:  # google-genai before HttpOptions took clients: hand it the transports instead
        options = types.HttpOptions(
            client_args={"transport": fake.transport(h)},
            async_client_args={"transport": fake.async_transport(h)},
        )
    if base_url is not None:
        options.base_url = base_url
    if vertexai:
        from google.oauth2.credentials import Credentials

        client_kwargs.setdefault("project", "fake-project")
        client_kwargs.setdefault("location", "us-central1")
        client_kwargs.setdefault("credentials", Credentials(token="fake-token"))  # type: ignore[no-untyped-call]
    else:
        client_kwargs.setdefault("api_key", "fake-key")
    client = genai.Client(vertexai=vertexai, http_options=options, **client_kwargs)
    client.fake = fake  # type: ignore[attr-defined]
    return client
