"""google-genai batch jobs: one record per job, when a ``get`` finds it ended.

A batch job's requests are answered apart from any call: their usage arrives with the job's
inlined responses (the Gemini API's batches of inlined requests), on the ``get`` that finds the
job ended. The record sums those responses' usage, priced at batch rates (``processing``:
``batch``); it is attributed to the scope the job was created in, when that was in this process,
and its id comes from the job's name, so that two processes counting one job write one record
to stores keyed on ``record_id``. A job whose results are in a file (the Gemini API's file
input, Vertex AI's Cloud Storage or BigQuery) reports no usage here and is not counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._capture import Extraction, emit, nonempty_str, now
from .._internal import internal_error
from .._record import RawUsage
from .._scope import _current as _current_scope
from ._base import PatchTarget, Wrapper, bounded_put, call_hook, first_time, run_time
from ._base import field_of as _get
from .genai import GEMINI, VERTEX, extract_generate_content

__all__ = ["BATCHES", "extract_batch_job", "seen", "targets"]

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
    if not _get(_get(job, "dest"), "inlined_responses"):
        _created.pop(name, None)  # results in a file: no usage to read here
        return
    if not first_time(_counted, name):
        return
    scope = _created.pop(name, scope)
    try:
        provider = VERTEX if instance._api_client.vertexai else GEMINI
    except AttributeError:
        provider = GEMINI
    ended = _epoch(_get(job, "end_time"))
    emit(
        provider,
        BATCHES,
        _model(job),
        job,
        extract_batch_job,
        started,
        status=status,
        scope=scope,
        key=f"{provider}:batch:{name}",
        at=ended,
        took=run_time(_epoch(_get(job, "create_time")), ended),
    )


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
    return [
        PatchTarget("google.genai.batches", f"{prefix}Batches.{method}", _hook(is_async))
        for prefix, is_async in (("", False), ("Async", True))
        for method in ("create", "get")
    ]
