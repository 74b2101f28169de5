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
    "extract_audio",
    "extract_completion",
    "extract_embeddings",
    "extract_images",
    "extract_responses",
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


def _nonzero(details: dict[str, Any], key: str, value: Any) -> None:
    if value:
        details[key] = value


def _fast_completion(obj: Any) -> Extraction:
    """The SDK's typed objects: plain attribute reads (any surprise falls back to the slow path)."""
    u = obj.usage
    model, rid = obj.model, obj.id
    model = model if type(model) is str and model else None
    rid = rid if type(rid) is str and rid else None
    if u is None:
        return None, model, rid
    pd = u.prompt_tokens_details
    cd = u.completion_tokens_details
    details: dict[str, Any] = {}
    cached = reasoning = None
    if pd is not None:
        cached = pd.cached_tokens
        _nonzero(details, "cache_write_tokens", getattr(pd, "cache_write_tokens", None))
        _nonzero(details, "input_audio_tokens", pd.audio_tokens)
        _nonzero(details, "input_image_tokens", getattr(pd, "image_tokens", None))
    if cd is not None:
        reasoning = cd.reasoning_tokens
        _nonzero(details, "output_audio_tokens", cd.audio_tokens)
        _nonzero(details, "accepted_prediction_tokens", cd.accepted_prediction_tokens)
        _nonzero(details, "rejected_prediction_tokens", cd.rejected_prediction_tokens)
    if details and not all(type(v) is int for v in details.values()):
        raise TypeError("odd detail values")
    raw = RawUsage(
        prompt=u.prompt_tokens,
        completion=u.completion_tokens,
        total=u.total_tokens,
        cached=cached,
        reasoning=reasoning,
        details=details,
    )
    return raw, model, rid


def extract_completion(obj: Any) -> Extraction:
    """Chat completions and legacy completions (responses and stream chunks): CompletionUsage."""
    try:
        return _fast_completion(obj)
    except Exception:
        return _slow_completion(obj)


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
