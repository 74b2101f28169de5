"""The JSONL file service: private, whole lines, safe with several writers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import ai_tokentrace
from ai_tokentrace import JsonlFileTokenUsageService

from .._support import emit_usage, make_record


def test_creates_parent_folders_and_a_private_file(tmp_path: Path) -> None:
    """A new file (and its folders) appear on the first record, with mode 0600."""
    path = tmp_path / "a" / "b" / "usage.jsonl"
    ai_tokentrace.configure(service=JsonlFileTokenUsageService(path))
    emit_usage()
    assert ai_tokentrace.flush(30)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_appends_one_json_object_per_line(tmp_path: Path) -> None:
    """Each record is one line holding its to_dict()."""
    path = tmp_path / "usage.jsonl"
    path.write_text('{"existing": true}\n')
    svc = JsonlFileTokenUsageService(path)
    ai_tokentrace.configure(service=svc)
    svc.export(make_record(1, tags=("x",)))
    assert ai_tokentrace.flush(30)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"existing": True}
    assert json.loads(lines[1]) == make_record(1, tags=("x",)).to_dict()


def test_four_processes_appending_to_one_file_never_tear_a_line(tmp_path: Path) -> None:
    """Concurrent writers in separate processes: every line parses, none is lost."""
    path = tmp_path / "shared.jsonl"
    code = textwrap.dedent(
        f"""
        import sys, ai_tokentrace
        from ai_tokentrace._capture import emit, now
        from ai_tokentrace._record import RawUsage
        def extract(p):
            return RawUsage(prompt=p, completion=1), None, None
        ai_tokentrace.configure(
            service=ai_tokentrace.JsonlFileTokenUsageService({str(path)!r}), batch_size=50
        )
        worker = int(sys.argv[1])
        for i in range(3000):
            emit("openai", "chat.completions", f"model-{{worker}}", i, extract, now(),
                 request_id="x" * (i % 200))
        assert ai_tokentrace.flush(60)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(w)], stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    lines = path.read_text().splitlines()
    assert len(lines) == 12000
    parsed = [json.loads(line) for line in lines]
    for w in range(4):
        mine = [d["input_tokens"] for d in parsed if d["model"] == f"model-{w}"]
        assert sorted(mine) == list(range(3000))


def test_closed_by_shutdown(tmp_path: Path) -> None:
    """shutdown() closes the file handle."""
    svc = JsonlFileTokenUsageService(tmp_path / "u.jsonl")
    ai_tokentrace.configure(service=svc)
    emit_usage()
    ai_tokentrace.shutdown(30)
    assert svc._file is None
