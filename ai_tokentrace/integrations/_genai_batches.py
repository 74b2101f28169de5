"""google-genai batch jobs: one record per job, when a ``get`` finds it ended.

A batch job's requests are answered apart from any call: their usage arrives with the job's
inlined responses (the Gemini API's batches of inlined requests), on the ``get`` that finds the
job ended. The record sums those responses' usage, priced at batch rates (``processing``:
``batch``); it is attributed to the scope the job was created in, when that was in this process,
and its id comes from the job's name, so that two processes counting one job write one record
to stores keyed on ``record_id``.

A Gemini API job of a file of requests writes its results to a file, and the ``get`` that finds
it ended carries no usage: the job is counted when that file is downloaded
(``files.download``, to memory or to a path), its lines' usage summed on the background loop.
Vertex AI's jobs (results in Cloud Storage or BigQuery) report no usage to the SDK and are not
counted.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .._capture import Extraction, emit, nonempty_str, now
from .._internal import internal_error, logger
from .._record import RawUsage
from .._scope import _current as _current_scope
from ._base import PatchTarget, Wrapper, bounded_put, call_hook, first_time, run_time
from ._base import field_of as _get
from .genai import GEMINI, VERTEX, extract_generate_content

__all__ = ["BATCHES", "extract_batch_file", "extract_batch_job", "seen", "targets"]

BATCHES = "batches"
# A job's end state -> the record's status (an expired or cancelled job bills what it finished)
_ENDS = {
    "JOB_STATE_SUCCEEDED": "ok",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "ok",
    "JOB_STATE_CANCELLED": "partial",
    "JOB_STATE_EXPIRED": "partial",
    "JOB_STATE_FAILED": "error",
}
_created: dict[str, Any] = {}  # jobs created in a scope, by name, until they end
_counted: dict[str, object] = {}  # ended jobs counted here, by name
_files: dict[str, tuple[Any, ...]] = {}  # results file -> its ended job's record, until read


# -- pure: a job's responses summed (run on the loop) -----------------------------------------
_SUMMED = ("prompt", "completion", "total", "cached", "reasoning", "tool_prompt")


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _merge(into: dict[str, Any], details: Any) -> None:
    """Per-modality breakdowns summed; other details (a tier) kept from the first response."""
    for key, value in details.items():
        if isinstance(value, dict):
            counts = into.setdefault(key, {})
            for modality, n in value.items():
                counts[modality] = _number(counts.get(modality)) + _number(n)
        elif key not in into:
            into[key] = value


def extract_batch_job(job: Any) -> Extraction:
    """A ``BatchJob`` with inlined responses: their usage summed, as one batch's."""
    totals = dict.fromkeys(_SUMMED, 0)
    details: dict[str, Any] = {}
    answered = failed = 0
    version = None
    usage_seen = False
    for item in _get(_get(job, "dest"), "inlined_responses") or ():
        if _get(item, "error") is not None:
            failed += 1
        response = _get(item, "response")
        if response is None:
            continue
        answered += 1
        raw, model_version, _ = extract_generate_content(response)
        version = version or model_version
        if raw is None:
            continue
        usage_seen = True
        for name in _SUMMED:
            totals[name] += _number(getattr(raw, name))
        _merge(details, raw.details)
    job_name = nonempty_str(_get(job, "name"))
    if not usage_seen:
        return None, version, job_name
    details["processing"] = "batch"
    details["batch_requests"] = answered
    if failed:
        details["batch_requests_failed"] = failed
    raw = RawUsage(reasoning_in_completion=False, details=details, **totals)
    return raw, version, job_name


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(value: Any) -> Any:
    """A JSON usage object as the SDK names its fields (``promptTokenCount`` ->
    ``prompt_token_count``), so the generate_content extractor reads it."""
    if isinstance(value, dict):
        return {_CAMEL.sub("_", key).lower(): _snake(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snake(item) for item in value]
    return value


def extract_batch_file(payload: tuple[Any, str]) -> Extraction:
    """A job's results file (its bytes, or the path it was downloaded to): a JSON line a
    request, each its response or its error; their usage summed as :func:`extract_batch_job`
    sums inlined responses."""
    source, name = payload
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    items = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        response = item.get("response")
        if isinstance(response, dict):
            response = SimpleNamespace(
                usage_metadata=_snake(response.get("usageMetadata")),
                model_version=response.get("modelVersion"),
                response_id=response.get("responseId"),
            )
        items.append({"response": response, "error": item.get("error")})
    return extract_batch_job({"name": name, "dest": {"inlined_responses": items}})


# -- the hook ----------------------------------------------------------------------------------


def _state(job: Any) -> str | None:
    state = _get(job, "state")
    name = getattr(state, "name", state)
    return name if isinstance(name, str) else None


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _model(job: Any) -> str | None:
    """``models/gemini-2.5-flash`` (and Vertex AI's ``publishers/google/models/...``) as the
    model name a generate_content record carries."""
    model = nonempty_str(_get(job, "model"))
    return model.rsplit("/", 1)[-1] if model is not None else None


def seen(instance: Any, job: Any, started: float, scope: Any) -> None:
    """A job ``create`` or ``get`` returned: remember the scope of one still running; count
    one ended with inlined responses, once. ``instance``: the SDK's Batches object (None in
    decorator-only mode: a Gemini API job, the only kind with inlined responses)."""
    name = nonempty_str(_get(job, "name"))
    if name is None:
        return
    status = _ENDS.get(_state(job))  # type: ignore[arg-type]
    if status is None:  # pending, running
        if scope is not None and name not in _created:
            bounded_put(_created, name, scope)
        return
    try:
        provider = VERTEX if instance._api_client.vertexai else GEMINI
    except AttributeError:
        provider = GEMINI
    ended = _epoch(_get(job, "end_time"))
    # the record, but for its usage: (provider, model, status, scope, key, at, took)
    record = (
        provider,
        _model(job),
        status,
        _created.pop(name, scope),
        f"{provider}:batch:{name}",
        ended,
        run_time(_epoch(_get(job, "create_time")), ended),
    )
    dest = _get(job, "dest")
    if not _get(dest, "inlined_responses"):
        results = _file_key(_get(dest, "file_name"))
        if results is not None and name not in _counted:  # counted when it is downloaded
            bounded_put(_files, results, (name, started, *record))
        return
    _emit(name, job, extract_batch_job, started, record)


def _emit(name: str, payload: Any, extract: Any, started: float, record: tuple[Any, ...]) -> None:
    """A job's one record, the first time it is counted here."""
    if not first_time(_counted, name):
        return
    provider, model, status, scope, key, at, took = record
    emit(
        provider,
        BATCHES,
        model,
        payload,
        extract,
        started,
        status=status,
        scope=scope,
        key=key,
        at=at,
        took=took,
    )


def _file_key(file: Any) -> str | None:
    """A file's name as ``files.download`` takes it: ``files/abc``, ``abc`` or its File."""
    name = nonempty_str(getattr(file, "name", file))
    if name is None:
        return None
    return name.rsplit("files/", 1)[-1].split(":")[0]


def _download_begin(instance: Any, kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """A download of the results file of an ended job we saw: what to read after it."""
    if not _files:
        return None
    try:
        key = _file_key(kwargs.get("file"))
        return (key, kwargs.get("destination")) if key in _files else None
    except Exception:
        internal_error("genai batch results file")
        return None


def _download_end(begun: tuple[Any, ...] | None, data: Any) -> None:
    """The results file of an ended job we saw: count the job from it, once."""
    if begun is None:
        return
    try:
        key, destination = begun
        if isinstance(data, bytes):
            source: Any = data
        elif isinstance(destination, (str, os.PathLike)):
            source = os.fspath(destination)  # read on the loop
        else:
            logger.info(
                "ai-tokentrace: a batch job's results downloaded to a stream are not read; "
                "the job is not counted (download to memory or to a path)"
            )
            return
        job = _files.pop(key, None)
        if job is None:
            return
        name, started, *record = job
        _emit(name, (source, name), extract_batch_file, started, tuple(record))
    except Exception:
        internal_error("genai batch results file")


def _begin(instance: Any, kwargs: dict[str, Any]) -> tuple[Any, float, Any]:
    return instance, now(), _current_scope.get()


def _finish(begun: tuple[Any, float, Any], job: Any) -> None:
    instance, started, scope = begun
    try:
        seen(instance, job, started, scope)
    except Exception:
        internal_error("genai batch")


def _hook(is_async: bool) -> Wrapper:
    """``create`` and ``get`` alike: what they return says what to do."""
    return call_hook(_begin, _finish, is_async)


def targets() -> list[PatchTarget]:
    out = [
        PatchTarget("google.genai.batches", f"{prefix}Batches.{method}", _hook(is_async))
        for prefix, is_async in (("", False), ("Async", True))
        for method in ("create", "get")
    ]
    for prefix, is_async in (("", False), ("Async", True)):
        hook = call_hook(_download_begin, _download_end, is_async)
        out.append(PatchTarget("google.genai.files", f"{prefix}Files.download", hook))
    return out
