"""Batch jobs: one record per job, when a ``get`` finds it ended, summing its responses' usage
at batch rates."""

from __future__ import annotations

import inspect
import threading
from typing import Any

import pytest
from google.genai import files, types

import ai_tokentrace
from ai_tokentrace.integrations import _genai_batches
from ai_tokentrace.testing.fake_genai import FakeGemini

from ..._support import genai_prices_cost

pytestmark = [
    pytest.mark.usefixtures("instrumented"),
    pytest.mark.skipif(
        not hasattr(types, "InlinedResponse"),
        reason="this google-genai has no batches of inlined requests",
    ),
]

needs_download_destination = pytest.mark.skipif(
    "destination" not in inspect.signature(files.Files.download).parameters,
    reason="this google-genai cannot download a file to a destination",
)

REQUESTS = [
    {"contents": [{"parts": [{"text": "one"}], "role": "user"}]},
    {"contents": [{"parts": [{"text": "two"}, {"text": "three"}], "role": "user"}]},
]


@pytest.fixture(params=["direct"])
def hook_form(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Jobs:
    """``client.batches`` or ``client.aio.batches``, awaited alike."""

    def __init__(self, client: Any, kind: str) -> None:
        self.batches = client.batches if kind == "sync" else client.aio.batches
        self.files = client.files if kind == "sync" else client.aio.files
        self.is_async = kind == "async"
        self.fake: FakeGemini = client.fake

    async def _run(self, result: Any) -> Any:
        return await result if self.is_async else result

    async def create(self, src: Any = None) -> Any:
        src = REQUESTS if src is None else src
        return await self._run(self.batches.create(model="gemini-2.5-flash", src=src))

    async def get(self, name: str) -> Any:
        return await self._run(self.batches.get(name=name))

    async def cancel(self, name: str) -> Any:
        return await self._run(self.batches.cancel(name=name))

    async def download(self, file: Any, destination: Any = None) -> Any:
        if destination is None:
            return await self._run(self.files.download(file=file))
        return await self._run(self.files.download(file=file, destination=destination))

    async def ended_file_job(self) -> Any:
        """A job of a file of requests, created and then got until it has ended."""
        job = await self.create("files/requests")
        for _ in range(2):
            ended = await self.get(job.name)
        assert ended.dest.file_name
        return ended


@pytest.fixture(params=["sync", "async"])
def jobs(request: pytest.FixtureRequest, client: Any) -> Jobs:
    return Jobs(client, str(request.param))


async def test_a_job_is_counted_once_when_a_get_finds_it_ended(jobs: Jobs, records: Any) -> None:
    job = await jobs.create()
    states = [(await jobs.get(job.name)).state.name for _ in range(3)]
    assert states == ["JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "JOB_STATE_SUCCEEDED"]
    [rec] = records()
    assert (rec.provider, rec.operation, rec.model, rec.response_id) == (
        "gcp.gemini",
        "batches",
        "gemini-2.5-flash",
        job.name,
    )
    assert (rec.status, rec.usage_available) == ("ok", True)


async def test_a_job_record_sums_what_its_requests_were_billed(
    jobs: Jobs, fake: FakeGemini, records: Any
) -> None:
    """Input = prompts, output = candidates + thoughts, over every answered request."""
    job = await jobs.create()
    for _ in range(2):
        await jobs.get(job.name)
    [rec] = records()
    billed = fake.billed.values()
    assert rec.total_tokens == sum(u["totalTokenCount"] for u in billed)
    assert rec.input_tokens == sum(u["promptTokenCount"] for u in billed) == 30
    assert rec.reasoning_tokens == sum(u["thoughtsTokenCount"] for u in billed)
    assert rec.usage_details == {
        "prompt_tokens_details": {"TEXT": 30},
        "candidates_tokens_details": {"TEXT": 40},
        "processing": "batch",
        "batch_requests": 2,
    }


async def test_a_job_is_priced_at_batch_rates(jobs: Jobs, records: Any) -> None:
    job = await jobs.create()
    for _ in range(2):
        await jobs.get(job.name)
    [rec] = records()
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google", {"processing": "batch"}))
    assert rec.cost_usd == pytest.approx(genai_prices_cost(rec, "google") / 2)


async def test_a_job_is_dated_and_timed_by_the_job_itself(jobs: Jobs, records: Any) -> None:
    job = await jobs.create()
    await jobs.get(job.name)
    ended = await jobs.get(job.name)
    [rec] = records()
    assert rec.timestamp == ended.end_time
    assert rec.latency_ms == pytest.approx(
        (ended.end_time - ended.create_time).total_seconds() * 1000.0, abs=0.001
    )


async def test_a_job_counts_in_the_scope_it_was_created_in(jobs: Jobs, records: Any) -> None:
    with ai_tokentrace.trace_tokens("nightly-eval") as made:
        job = await jobs.create()
    with ai_tokentrace.trace_tokens("poller") as polled:
        for _ in range(2):
            await jobs.get(job.name)
    [rec] = records()
    assert made.records == (rec,)
    assert polled.records == ()


async def test_a_job_created_elsewhere_counts_in_the_getting_scope(
    jobs: Jobs, records: Any
) -> None:
    job = await jobs.create()
    await jobs.get(job.name)
    with ai_tokentrace.trace_tokens("poller") as polled:
        await jobs.get(job.name)
    [rec] = records()
    assert polled.records == (rec,)


async def test_a_job_counted_in_two_processes_has_one_record_id(
    jobs: Jobs, records: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await jobs.create()
    for _ in range(2):
        await jobs.get(job.name)
    monkeypatch.setattr(_genai_batches, "_counted", {})  # a second process knows nothing
    await jobs.get(job.name)
    first, second = records()
    assert first.record_id == second.record_id


async def test_a_cancelled_job_is_partial_with_what_it_answered(jobs: Jobs, records: Any) -> None:
    job = await jobs.create()
    await jobs.cancel(job.name)
    ended = await jobs.get(job.name)
    assert ended.state.name == "JOB_STATE_CANCELLED"
    [rec] = records()
    assert (rec.status, rec.usage_details["batch_requests"], rec.input_tokens) == (
        "partial",
        1,
        10,
    )


async def test_a_job_with_its_results_in_a_file_counts_nothing_until_they_are_read(
    jobs: Jobs, records: Any
) -> None:
    await jobs.ended_file_job()
    assert records() == []


async def test_a_file_jobs_results_downloaded_count_it_once(jobs: Jobs, records: Any) -> None:
    """Its lines' usage summed, as inlined responses are: two answered, one failed."""
    ended = await jobs.ended_file_job()
    data = await jobs.download(ended.dest.file_name)
    assert data.count(b"\n") == 3
    await jobs.download(ended.dest.file_name)
    [rec] = records()
    assert (rec.operation, rec.model, rec.response_id) == (
        "batches",
        "gemini-2.5-flash",
        ended.name,
    )
    assert rec.total_tokens == jobs.fake.billed_total > 0
    assert rec.usage_details["processing"] == "batch"
    assert (rec.usage_details["batch_requests"], rec.usage_details["batch_requests_failed"]) == (
        2,
        1,
    )
    assert rec.usage_details["prompt_tokens_details"] == {"TEXT": rec.input_tokens}


@needs_download_destination
async def test_a_file_jobs_results_downloaded_to_a_path_are_read(
    jobs: Jobs, records: Any, tmp_path: Any
) -> None:
    ended = await jobs.ended_file_job()
    await jobs.download(ended.dest.file_name, destination=str(tmp_path / "results.jsonl"))
    [rec] = records()
    assert (rec.response_id, rec.total_tokens) == (ended.name, jobs.fake.billed_total)


@needs_download_destination
async def test_a_file_jobs_results_downloaded_to_a_stream_are_not_read(
    jobs: Jobs, records: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import io

    ended = await jobs.ended_file_job()
    with caplog.at_level("INFO", logger="ai_tokentrace"):
        await jobs.download(ended.dest.file_name, destination=io.BytesIO())
    assert records() == []
    assert "downloaded to a stream" in caplog.text


async def test_a_file_job_counts_in_the_scope_it_was_created_in(jobs: Jobs, records: Any) -> None:
    with ai_tokentrace.trace_tokens("nightly") as made:
        job = await jobs.create("files/requests")
    for _ in range(2):
        ended = await jobs.get(job.name)
    with ai_tokentrace.trace_tokens("reader") as reader:
        await jobs.download(ended.dest.file_name)
    [rec] = records()
    assert made.records == (rec,)
    assert reader.records == ()


async def test_results_of_a_job_not_seen_ending_here_count_nothing(
    jobs: Jobs, records: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended = await jobs.ended_file_job()
    monkeypatch.setattr(_genai_batches, "_files", {})  # another process saw it end
    await jobs.download(ended.dest.file_name)
    assert records() == []


def test_a_results_file_with_odd_lines_sums_what_it_can() -> None:
    lines = [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"key": "0", "response": {"usageMetadata": {"promptTokenCount": 5, '
        b'"candidatesTokenCount": 7, "totalTokenCount": 12}}}',
        b'{"key": "1", "response": {}}',
        b'{"key": "2", "error": {"code": 500}}',
    ]
    raw, _, name = _genai_batches.extract_batch_file((b"\n".join(lines), "batches/x"))
    assert raw is not None
    assert (raw.prompt, raw.completion, raw.total, name) == (5, 7, 12, "batches/x")
    assert (raw.details["batch_requests"], raw.details["batch_requests_failed"]) == (2, 1)


def test_threads_getting_one_ended_job_count_it_once(
    client: Any, fake: FakeGemini, records: Any
) -> None:
    fake.batch_polls = 0
    job = client.batches.create(model="gemini-2.5-flash", src=REQUESTS)
    start = threading.Barrier(8)

    def poll() -> None:
        start.wait()
        for _ in range(5):
            client.batches.get(name=job.name)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.response_id for r in records()] == [job.name]


def test_a_job_without_usage_on_its_responses_gives_no_usage() -> None:
    job = types.BatchJob(
        name="batches/x",
        dest=types.BatchJobDestination(
            inlined_responses=[
                types.InlinedResponse(response=types.GenerateContentResponse()),
                types.InlinedResponse(error=types.JobError(code=3, message="bad")),
            ]
        ),
    )
    raw, _, name = _genai_batches.extract_batch_job(job)
    assert (raw, name) == (None, "batches/x")


def test_decorator_only_mode_counts_a_returned_ended_job_once(
    client: Any, records: Any, fake: FakeGemini
) -> None:
    """Without instrument(), a traced function returning the job counts it when it has ended,
    once however often it returns it."""
    ai_tokentrace.uninstrument()
    fake.batch_polls = 0
    job = client.batches.create(model="gemini-2.5-flash", src=REQUESTS)

    @ai_tokentrace.trace_tokens("poll")
    def poll() -> Any:
        return client.batches.get(name=job.name)

    poll()
    poll()
    [rec] = records()
    assert (rec.operation, rec.trace_name, rec.usage_details["processing"]) == (
        "batches",
        "poll",
        "batch",
    )


async def test_a_job_seen_in_our_own_traffic_is_not_counted(jobs: Jobs, records: Any) -> None:
    """What ai-tokentrace's own code calls (``suppressing()``) is never recorded."""
    from ai_tokentrace._internal import suppressing

    with suppressing():
        job = await jobs.create()
        for _ in range(2):
            await jobs.get(job.name)
    assert records() == []
