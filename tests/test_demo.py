"""The demo runs offline, writes its JSONL and prints the per-model summary."""

from __future__ import annotations

from pathlib import Path

import pytest

import ai_tokentrace
from ai_tokentrace import TokenUsageRecord, _demo_genai
from ai_tokentrace._demo import main


def test_demo_runs_offline_and_writes_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, the demo counts every call into the JSONL file and prints a summary table."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "demo" / "usage.jsonl"
    try:
        assert main(["--out", str(out)]) == 0
    finally:
        ai_tokentrace.uninstrument()
    records = [TokenUsageRecord.from_json(line) for line in out.read_text().splitlines()]
    openai_records = [r for r in records if r.provider == "openai"]
    import openai

    agents = hasattr(openai.OpenAI(api_key="sk-none").beta, "agents")  # the beta Agents API
    assert len(openai_records) == 10 + agents
    if agents:
        [turn] = [r for r in openai_records if r.operation == "agents.turns"]
        assert (turn.trace_name, turn.model) == ("coding-agent", "gpt-5-mini")
    assert "flex" in {r.usage_details.get("service_tier") for r in openai_records}
    [batch] = [r for r in openai_records if r.operation == "batches"]
    assert (batch.trace_name, batch.usage_details["processing"]) == ("indexer", "batch")
    assert {r.trace_name for r in openai_records} - {"coding-agent"} == {"support-bot", "indexer"}
    assert all(r.usage_available and r.total_tokens > 0 for r in openai_records)
    assert any(r.streamed for r in openai_records)
    gemini = [r for r in records if r.provider == "gcp.gemini"]
    assert {r.operation for r in gemini} >= {"generate_content", "embed_content"}
    if _demo_genai.has_interactions():
        assert "interactions" in {r.operation for r in gemini}
    text = capsys.readouterr().out
    assert "gpt-4o-mini" in text
    assert "cost USD" in text
    assert f"{len(records)} records appended to {out}" in text


def test_demo_live_without_key_falls_back_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--live without OPENAI_API_KEY says so and still runs on the fake transport."""
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    try:
        assert main(["--live", "--out", str(tmp_path / "u.jsonl")]) == 0
    finally:
        ai_tokentrace.uninstrument()
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().out
