"""Pure usage extractors for OpenAI response objects (run later, on the background loop).

Each takes the SDK object that holds usage (a response, a stream chunk, a stream event) and
returns ``(RawUsage | None, response_model, response_id)``. OpenAI builds its models without
validation, so any field may be missing, None, a dict or of an odd type: read defensively.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._capture import Extraction, Extractor, nonempty_str
from .._record import RawUsage
from ._base import field_of as _get

__all__ = [
    "EXTRACTORS",
    "SNAPSHOTS",
    "SNAPSHOT_EXTRACTORS",
    "USAGE_FIELDS",
    "Detached",
    "UsageSnapshot",
    "detach",
    "extract_agent_turn",
    "extract_audio",
    "extract_batch",
    "extract_completion",
    "extract_decisions",
    "extract_embeddings",
    "extract_images",
    "extract_responses",
    "from_completion_snapshot",
    "from_embeddings_snapshot",
    "from_responses_snapshot",
    "nonempty_str",
    "snap_completion",
    "snap_embeddings",
    "snap_responses",
]


def _put(details: dict[str, Any], key: str, value: Any) -> None:
    """Keep a detail only when it says something (a number other than 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
        details[key] = value


def _ids(obj: Any) -> tuple[str | None, str | None]:
    return nonempty_str(_get(obj, "model")), nonempty_str(_get(obj, "id"))


# -- snapshots: what the hot path reads off a response, raw (made into RawUsage later) ----------
# A usage snapshot is ``(input, output, total, input_details, output_details, service_tier)``:
# the usage object's three counts and its two detail objects' field dicts, unvalidated, and the
# tier the response says served it (its price: flex is half the standard, priority more).
# Reading them costs a few attribute loads; keeping them instead of the SDK object lets the
# response be freed.
UsageSnapshot = tuple[Any, Any, Any, Any, Any, Any]

# Usage field names in snapshot order: input, output, total, input details, output details.
_COMPLETION_NAMES = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
_RESPONSES_NAMES = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_tokens_details",
    "output_tokens_details",
)
_EMBEDDINGS_NAMES = ("prompt_tokens", None, "total_tokens", None, None)
# operation -> its usage field names, where the hooks read a plain result's usage in their own
# frame (``openai._direct_request``): the read of :func:`_usage_reader`, written out. With
# embeddings' names, the defensive reader's table (``_NAMES``).
USAGE_FIELDS: dict[str, tuple[str, str, str, str, str]] = {
    "chat.completions": _COMPLETION_NAMES,
    "completions": _COMPLETION_NAMES,
    "responses": _RESPONSES_NAMES,
    "decisions": _RESPONSES_NAMES,  # the Responses API's usage, cache writes included
}


def _usage_reader(names: tuple[str, str, str, str, str]) -> Callable[[Any], UsageSnapshot | None]:
    """The hot-path reader of usage with these field names. It raises on an odd object.

    It takes the response's instance dict, and reads the counts from the usage's: on the SDK's
    pydantic models every attribute read goes through the ``__getattr__`` hook, which costs
    more than the rest of a snapshot. A detail object missing from the dict is read as an
    attribute: an SDK older than the field keeps what the server sent among pydantic's extras,
    which only the attribute read finds. OpenAI's per-request hooks (``openai._direct_request``
    and ``_adirect_request``) have this read written out for :data:`USAGE_FIELDS`: keep the
    three in step.
    """
    inp, out, total, in_details, out_details = names

    def snap(fields: dict[str, Any]) -> UsageSnapshot | None:
        u = fields["usage"]
        if u is None:
            return None
        f = u.__dict__
        di = f[in_details] if in_details in f else getattr(u, in_details)
        do = f[out_details] if out_details in f else getattr(u, out_details)
        return (
            f[inp],
            f[out],
            f[total],
            di if di is None or type(di) is dict else di.__dict__,
            do if do is None or type(do) is dict else do.__dict__,
            fields.get("service_tier"),
        )

    return snap


snap_completion = _usage_reader(_COMPLETION_NAMES)
snap_completion.__doc__ = (
    "Chat and legacy completions (``CompletionUsage``). Raises on an odd object."
)
snap_responses = _usage_reader(_RESPONSES_NAMES)
snap_responses.__doc__ = "Responses API (``ResponseUsage``). Raises on an odd object."


def snap_embeddings(fields: dict[str, Any]) -> UsageSnapshot | None:
    """Embeddings: prompt and total tokens only. Raises on an odd object."""
    u = fields["usage"]
    if u is None:
        return None
    f = u.__dict__
    return (f["prompt_tokens"], None, f["total_tokens"], None, None, None)


# Detail dict key -> RawUsage detail name, per side; "cached" and "reasoning" are buckets.
_COMPLETION_IN = (
    ("cache_write_tokens", "cache_write_tokens"),
    ("audio_tokens", "input_audio_tokens"),
    ("image_tokens", "input_image_tokens"),
)
_COMPLETION_OUT = (
    ("audio_tokens", "output_audio_tokens"),
    ("accepted_prediction_tokens", "accepted_prediction_tokens"),
    ("rejected_prediction_tokens", "rejected_prediction_tokens"),
)
_RESPONSES_IN = (("cache_write_tokens", "cache_write_tokens"),)


def _detail_values(d: Any, names: tuple[tuple[str, str], ...], into: dict[str, Any]) -> None:
    if isinstance(d, dict):
        for key, name in names:
            _put(into, name, d.get(key))


def _from_snapshot(
    snap: UsageSnapshot, ins: tuple[tuple[str, str], ...], outs: tuple[tuple[str, str], ...]
) -> RawUsage:
    prompt, completion, total, pd, cd, tier = snap
    details: dict[str, Any] = {}
    _detail_values(pd, ins, details)
    _detail_values(cd, outs, details)
    if type(tier) is str and tier:
        details["service_tier"] = tier
    return RawUsage(
        prompt=prompt,
        completion=completion,
        total=total,
        cached=pd.get("cached_tokens") if isinstance(pd, dict) else None,
        reasoning=cd.get("reasoning_tokens") if isinstance(cd, dict) else None,
        details=details,
    )


def from_completion_snapshot(snap: UsageSnapshot) -> RawUsage:
    return _from_snapshot(snap, _COMPLETION_IN, _COMPLETION_OUT)


def from_responses_snapshot(snap: UsageSnapshot) -> RawUsage:
    return _from_snapshot(snap, _RESPONSES_IN, ())


def from_embeddings_snapshot(snap: UsageSnapshot) -> RawUsage:
    return RawUsage(prompt=snap[0], total=snap[2])


# operation -> (snapshot on the hot path, RawUsage from it on the loop); the rest go the slow way.
SNAPSHOTS: dict[str, tuple[Any, Any]] = {
    "chat.completions": (snap_completion, from_completion_snapshot),
    "completions": (snap_completion, from_completion_snapshot),
    "responses": (snap_responses, from_responses_snapshot),
    "decisions": (snap_responses, from_responses_snapshot),
    "embeddings": (snap_embeddings, from_embeddings_snapshot),
}
_NAMES: dict[str, tuple[str | None, ...]] = {**USAGE_FIELDS, "embeddings": _EMBEDDINGS_NAMES}


def _snapshot_extractor(from_snapshot: Any) -> Extractor:
    def extract(snap: Any) -> Extraction:
        return (from_snapshot(snap) if snap is not None else None), None, None

    return extract


# operation -> the extractor of a Capture whose payload is a snapshot (ids are on the Capture).
SNAPSHOT_EXTRACTORS: dict[str, Extractor] = {
    op: _snapshot_extractor(pair[1]) for op, pair in SNAPSHOTS.items()
}


# The same snapshot read defensively, for objects the hot-path readers refuse (OpenAI builds
# models without validation: dicts, None or missing fields where objects belong).
_DETAIL_KEYS = (
    "cached_tokens",
    "cache_write_tokens",
    "audio_tokens",
    "image_tokens",
    "reasoning_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)


def _detail_fields(d: Any) -> dict[str, Any] | None:
    if d is None or isinstance(d, dict):
        return d
    values = getattr(d, "__dict__", None)
    if isinstance(values, dict):
        return values
    return {key: getattr(d, key, None) for key in _DETAIL_KEYS}


def _snap_defensively(obj: Any, names: tuple[str | None, ...]) -> UsageSnapshot | None:
    u = _get(obj, "usage")
    if u is None:
        return None
    i, o, t, idt, odt = (_get(u, n) if n else None for n in names)
    return i, o, t, _detail_fields(idt), _detail_fields(odt), _get(obj, "service_tier")


# What a record needs of a usage-bearing object, read off it so the object itself can be freed:
# ``(usage snapshot or None, response model, response id)``.
Detached = tuple["UsageSnapshot | None", "str | None", "str | None"]


def detach(operation: str, obj: Any) -> Detached:
    """``obj`` (an SDK model, or a chunk's parsed JSON dict) as a :data:`Detached`.

    For the operations in :data:`SNAPSHOTS` only; never raises on odd objects.
    """
    if type(obj) is dict:
        usage = _snap_defensively(obj, _NAMES[operation])
    else:
        try:
            usage = SNAPSHOTS[operation][0](obj.__dict__)
        except Exception:
            usage = _snap_defensively(obj, _NAMES[operation])
    model, rid = _ids(obj)
    return usage, model, rid


def _extractor(operation: str, doc: str) -> Extractor:
    """An object extractor: :func:`detach`, then the snapshot made into RawUsage."""
    from_snapshot = SNAPSHOTS[operation][1]

    def extract(obj: Any) -> Extraction:
        usage, model, rid = detach(operation, obj)
        return (from_snapshot(usage) if usage is not None else None), model, rid

    extract.__doc__ = doc
    return extract


extract_completion = _extractor(
    "chat.completions", "Chat and legacy completions (responses, stream chunks): CompletionUsage."
)
extract_responses = _extractor(
    "responses", "Responses API (``Response``, also from ``response.completed`` events)."
)
extract_embeddings = _extractor("embeddings", "Embeddings: prompt and total tokens only.")
extract_decisions = _extractor("decisions", "Decisions (``Decision``): the Responses API's usage.")


def _input_details(u: Any, details: dict[str, Any]) -> None:
    for name in ("input_tokens_details", "input_token_details"):
        d = _get(u, name)
        if d is not None:
            _put(details, "input_text_tokens", _get(d, "text_tokens"))
            _put(details, "input_image_tokens", _get(d, "image_tokens"))
            _put(details, "input_audio_tokens", _get(d, "audio_tokens"))


def extract_images(obj: Any) -> Extraction:
    """Images (responses and ``*.completed`` stream events). The response names no model."""
    u = _get(obj, "usage")
    if u is None:
        return None, None, None
    details: dict[str, Any] = {}
    _input_details(u, details)
    raw = RawUsage(
        prompt=_get(u, "input_tokens"),
        completion=_get(u, "output_tokens"),
        total=_get(u, "total_tokens"),
        details=details,
    )
    return raw, None, None


def extract_audio(obj: Any) -> Extraction:
    """Transcriptions: token usage, or duration usage kept as seconds in the details."""
    u = _get(obj, "usage")
    if u is None:
        return None, None, None
    if _get(u, "type") == "duration" or (
        _get(u, "seconds") is not None and _get(u, "input_tokens") is None
    ):
        details: dict[str, Any] = {}
        _put(details, "audio_seconds", _get(u, "seconds"))
        return RawUsage(details=details), None, None
    details = {}
    _input_details(u, details)
    raw = RawUsage(
        prompt=_get(u, "input_tokens"),
        completion=_get(u, "output_tokens"),
        total=_get(u, "total_tokens"),
        details=details,
    )
    return raw, None, None


def extract_batch(obj: Any) -> Extraction:
    """A finished batch (``Batch``): the usage of all its requests (the Responses API's usage
    fields), priced at batch rates.

    Batch usage is reported on batches created after 2025-09-07; older ones have none."""
    snap = _snap_defensively(obj, _RESPONSES_NAMES)
    if snap is None:
        return None, None, None
    raw = from_responses_snapshot(snap)
    details = dict(raw.details, processing="batch")
    counts = _get(obj, "request_counts")
    _put(details, "batch_requests", _get(counts, "completed"))
    _put(details, "batch_requests_failed", _get(counts, "failed"))
    endpoint = nonempty_str(_get(obj, "endpoint"))
    if endpoint is not None:
        details["batch_endpoint"] = endpoint
    raw.details = details
    return raw, nonempty_str(_get(obj, "model")), nonempty_str(_get(obj, "id"))


def extract_agent_turn(obj: Any) -> Extraction:
    """An Agents API session turn (``Turn``, or the event that ended it where only the event
    carries usage): the Responses API's usage fields. The turn names no model; its session
    and subagent go in the details."""
    snap = _snap_defensively(obj, _RESPONSES_NAMES)
    if snap is None:
        return None, None, None
    raw = from_responses_snapshot(snap)
    turn = _get(obj, "turn") or obj
    details = dict(raw.details)
    for key, name in (("agent_session", "session_id"), ("subagent", "subagent_id")):
        value = nonempty_str(_get(turn, name))
        if value is not None:
            details[key] = value
    raw.details = details
    return raw, None, nonempty_str(_get(turn, "id"))


EXTRACTORS = {
    "chat.completions": extract_completion,
    "completions": extract_completion,
    "responses": extract_responses,
    "decisions": extract_decisions,
    "embeddings": extract_embeddings,
    "images": extract_images,
    "audio.transcriptions": extract_audio,
    "batches": extract_batch,
    "agents.turns": extract_agent_turn,
}
