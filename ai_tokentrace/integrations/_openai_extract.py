"""Pure usage extractors for OpenAI response objects (run later, on the background loop).

Each takes the SDK object that holds usage (a response, a stream chunk, a stream event) and
returns ``(RawUsage | None, response_model, response_id)``. OpenAI builds its models without
validation, so any field may be missing, None, a dict or of an odd type: read defensively.
"""

from __future__ import annotations

from typing import Any

from .._capture import Extraction
from .._record import RawUsage

__all__ = [
    "EXTRACTORS",
    "SNAPSHOTS",
    "UsageSnapshot",
    "extract_audio",
    "extract_completion",
    "extract_embeddings",
    "extract_images",
    "extract_responses",
    "from_completion_snapshot",
    "from_embeddings_snapshot",
    "from_responses_snapshot",
    "snap_completion",
    "snap_embeddings",
    "snap_responses",
]


def _get(obj: Any, name: str) -> Any:
    """Attribute or key ``name`` of ``obj`` (None when absent or when ``obj`` is None)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _put(details: dict[str, Any], key: str, value: Any) -> None:
    """Keep a detail only when it says something (a number other than 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
        details[key] = value


def _ids(obj: Any) -> tuple[str | None, str | None]:
    return _str(_get(obj, "model")), _str(_get(obj, "id"))


# -- snapshots: what the hot path reads off a response, raw (made into RawUsage later) ----------
# A usage snapshot is ``(input, output, total, input_details, output_details)``: the usage
# object's three counts and its two detail objects' field dicts, unvalidated. Reading them costs
# a few attribute loads; keeping them instead of the SDK object lets the response be freed.
UsageSnapshot = tuple[Any, Any, Any, Any, Any]


def snap_completion(obj: Any) -> UsageSnapshot | None:
    """Chat and legacy completions (``CompletionUsage``). Raises on an odd object."""
    u = obj.usage
    if u is None:
        return None
    pd = u.prompt_tokens_details
    cd = u.completion_tokens_details
    return (
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        pd if pd is None or type(pd) is dict else pd.__dict__,
        cd if cd is None or type(cd) is dict else cd.__dict__,
    )


def snap_responses(obj: Any) -> UsageSnapshot | None:
    """Responses API (``ResponseUsage``). Raises on an odd object."""
    u = obj.usage
    if u is None:
        return None
    idt = u.input_tokens_details
    odt = u.output_tokens_details
    return (
        u.input_tokens,
        u.output_tokens,
        u.total_tokens,
        idt if idt is None or type(idt) is dict else idt.__dict__,
        odt if odt is None or type(odt) is dict else odt.__dict__,
    )


def snap_embeddings(obj: Any) -> UsageSnapshot | None:
    """Embeddings: prompt and total tokens only. Raises on an odd object."""
    u = obj.usage
    if u is None:
        return None
    return (u.prompt_tokens, None, u.total_tokens, None, None)


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
    prompt, completion, total, pd, cd = snap
    details: dict[str, Any] = {}
    _detail_values(pd, ins, details)
    _detail_values(cd, outs, details)
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
    "embeddings": (snap_embeddings, from_embeddings_snapshot),
}


def extract_completion(obj: Any) -> Extraction:
    """Chat completions and legacy completions (responses and stream chunks): CompletionUsage."""
    try:
        snap = snap_completion(obj)
        model, rid = obj.model, obj.id
    except Exception:
        return _slow_completion(obj)
    model = model if type(model) is str and model else None
    rid = rid if type(rid) is str and rid else None
    return (from_completion_snapshot(snap) if snap is not None else None), model, rid


def _slow_completion(obj: Any) -> Extraction:
    model, rid = _ids(obj)
    u = _get(obj, "usage")
    if u is None:
        return None, model, rid
    pd = _get(u, "prompt_tokens_details")
    cd = _get(u, "completion_tokens_details")
    details: dict[str, Any] = {}
    _put(details, "cache_write_tokens", _get(pd, "cache_write_tokens"))
    _put(details, "input_audio_tokens", _get(pd, "audio_tokens"))
    _put(details, "input_image_tokens", _get(pd, "image_tokens"))
    _put(details, "output_audio_tokens", _get(cd, "audio_tokens"))
    _put(details, "accepted_prediction_tokens", _get(cd, "accepted_prediction_tokens"))
    _put(details, "rejected_prediction_tokens", _get(cd, "rejected_prediction_tokens"))
    raw = RawUsage(
        prompt=_get(u, "prompt_tokens"),
        completion=_get(u, "completion_tokens"),
        total=_get(u, "total_tokens"),
        cached=_get(pd, "cached_tokens"),
        reasoning=_get(cd, "reasoning_tokens"),
        details=details,
    )
    return raw, model, rid


def extract_responses(obj: Any) -> Extraction:
    """Responses API (``Response``, also from ``response.completed`` events): ResponseUsage."""
    model, rid = _ids(obj)
    u = _get(obj, "usage")
    if u is None:
        return None, model, rid
    idt = _get(u, "input_tokens_details")
    odt = _get(u, "output_tokens_details")
    details: dict[str, Any] = {}
    _put(details, "cache_write_tokens", _get(idt, "cache_write_tokens"))
    raw = RawUsage(
        prompt=_get(u, "input_tokens"),
        completion=_get(u, "output_tokens"),
        total=_get(u, "total_tokens"),
        cached=_get(idt, "cached_tokens"),
        reasoning=_get(odt, "reasoning_tokens"),
        details=details,
    )
    return raw, model, rid


def extract_embeddings(obj: Any) -> Extraction:
    """Embeddings: prompt and total tokens only."""
    model, _ = _ids(obj)
    u = _get(obj, "usage")
    if u is None:
        return None, model, None
    return RawUsage(prompt=_get(u, "prompt_tokens"), total=_get(u, "total_tokens")), model, None


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


EXTRACTORS = {
    "chat.completions": extract_completion,
    "completions": extract_completion,
    "responses": extract_responses,
    "embeddings": extract_embeddings,
    "images": extract_images,
    "audio.transcriptions": extract_audio,
}
