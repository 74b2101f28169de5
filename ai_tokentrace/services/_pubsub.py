"""Records into Cloud Pub/Sub: one message per record, published in batches.

The body is the record's JSON (``to_json()``); attributes carry ``provider``, ``operation``,
``model``, ``schema_version`` and ``record_id``, so subscribers can filter without parsing and
drop the duplicates that at-least-once delivery (or a replay) may bring. A BigQuery
subscription with the shipped table schema (``ai_tokentrace/schema/bigquery_schema.json``)
turns the topic into a table.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from .._record import SCHEMA_VERSION, TokenUsageRecord
from ._base import RetryPolicy, TokenUsageService
from ._google import (
    CHANNEL_OPTIONS,
    DEFAULT_RETRY,
    default_spill_path,
    import_extra,
    is_transient,
    is_unavailable,
)

__all__ = ["MAX_MESSAGES_PER_REQUEST", "PubSubTokenUsageService", "attributes", "topic_path"]

MAX_MESSAGES_PER_REQUEST = 1000  # Pub/Sub's cap on the messages of one publish request
_MAX_REQUEST_BYTES = 9_000_000  # under the 10 MB request limit, with room for attributes

OrderingKey: TypeAlias = "str | Callable[[TokenUsageRecord], str | None] | None"


def topic_path(topic: str, project: str | None) -> str:
    """``projects/P/topics/T`` from a full path, or from a short name plus a project."""
    if topic.startswith("projects/"):
        parts = topic.split("/")
        if len(parts) != 4 or parts[2] != "topics" or not parts[1] or not parts[3]:
            raise ValueError(f"invalid Pub/Sub topic path: {topic!r}")
        return topic
    if not topic or "/" in topic:
        raise ValueError(f"invalid Pub/Sub topic name: {topic!r}")
    if not project:
        raise ValueError(
            f"Pub/Sub topic {topic!r} needs a project: pass project=..., set "
            "GOOGLE_CLOUD_PROJECT, or give the full path projects/P/topics/T"
        )
    return f"projects/{project}/topics/{topic}"


def attributes(record: TokenUsageRecord) -> dict[str, str]:
    """Message attributes: what subscribers filter and de-duplicate on."""
    attrs = {
        "provider": record.provider,
        "operation": record.operation,
        "schema_version": str(SCHEMA_VERSION),
        "record_id": record.record_id,
    }
    if record.model:
        attrs["model"] = record.model
    return attrs


class PubSubTokenUsageService(TokenUsageService):
    """Publishes each record to ``topic`` with the async publisher (``PublisherAsyncClient``).

    ``topic`` is a short name (the project comes from ``project``, ``GOOGLE_CLOUD_PROJECT`` or
    ``GCLOUD_PROJECT``) or a full ``projects/P/topics/T`` path. The topic must exist.
    ``ordering_key`` is a string or a function of the record (e.g. ``lambda r: r.user_id``);
    Pub/Sub delivers messages with one key in order when the subscription enables ordering.

    A ``client`` you pass (a ``google.pubsub_v1.PublisherAsyncClient``) is used as is and never
    closed here; it must belong to ai-tokentrace's background loop, so usually let the service
    make its own (with ``PUBSUB_EMULATOR_HOST`` set, one that talks to the emulator).

    Transient errors are retried by the pipeline with backoff; what still fails is appended to
    ``spill_path`` (default: ``$AI_TOKENTRACE_SPILL_DIR/pubsub-<topic>.jsonl``), for
    ``ai-tokentrace replay``. A retried or replayed record may then arrive twice: its
    ``record_id`` attribute marks the duplicate.
    """

    def __init__(
        self,
        topic: str,
        project: str | None = None,
        client: Any = None,
        *,
        ordering_key: OrderingKey = None,
        spill_path: str | os.PathLike[str] | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        rpc_timeout: float = 8.0,
        max_messages_per_request: int = MAX_MESSAGES_PER_REQUEST,
    ) -> None:
        self._pubsub = import_extra("google.pubsub_v1", "pubsub")
        project = (
            project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
        )
        self.topic = topic_path(topic, project)
        if not 1 <= max_messages_per_request <= MAX_MESSAGES_PER_REQUEST:
            raise ValueError(
                f"max_messages_per_request must be between 1 and {MAX_MESSAGES_PER_REQUEST}"
            )
        self.ordering_key = ordering_key
        self.retry = retry
        self.rpc_timeout = rpc_timeout
        self.max_messages_per_request = max_messages_per_request
        self.spill_path = (
            spill_path
            if spill_path is not None
            else default_spill_path("pubsub", self.topic.rsplit("/", 1)[-1])
        )
        self._request_pb: Any = self._pubsub.PublishRequest.pb()
        self._user_client = client
        self._client: Any = client
        self._channel: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    # -- client ------------------------------------------------------------------------------
    def _get_client(self) -> Any:
        if self._user_client is not None:
            return self._user_client
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            grpc: Any = importlib.import_module("grpc")
            from google.pubsub_v1.services.publisher.transports import (
                PublisherGrpcAsyncIOTransport,
            )

            # A channel of our own that reconnects within seconds after an outage.
            emulator = os.environ.get("PUBSUB_EMULATOR_HOST", "").strip()
            if emulator:
                self._channel = grpc.aio.insecure_channel(emulator, options=list(CHANNEL_OPTIONS))
            else:
                self._channel = PublisherGrpcAsyncIOTransport.create_channel(
                    options=[("grpc.keepalive_time_ms", 30000), *CHANNEL_OPTIONS]
                )
            transport = PublisherGrpcAsyncIOTransport(channel=self._channel)
            self._client = self._pubsub.PublisherAsyncClient(transport=transport)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        channel, self._channel = self._channel, None
        if client is None or client is self._user_client:
            self._client = self._user_client
            return
        closing = channel.close() if channel is not None else client.transport.close()
        if inspect.isawaitable(closing):
            await closing

    def after_fork(self) -> None:
        if self._user_client is None:
            self._client = self._channel = self._client_loop = None

    def is_retryable(self, exc: BaseException) -> bool:
        return is_transient(exc)

    # -- export ------------------------------------------------------------------------------
    def _requests(self, records: Sequence[TokenUsageRecord]) -> list[Any]:
        """Publish requests of at most 1,000 messages and ~9 MB, messages built in place."""
        requests: list[Any] = []
        request: Any = None
        size = 0
        key = self.ordering_key
        for record in records:
            data = record.to_json().encode()
            if (
                request is None
                or len(request.messages) >= self.max_messages_per_request
                or size + len(data) > _MAX_REQUEST_BYTES
            ):
                request = self._request_pb(topic=self.topic)
                requests.append(request)
                size = 0
            msg = request.messages.add()
            msg.data = data
            msg.attributes.update(attributes(record))
            if key is not None:
                value = key(record) if callable(key) else key
                if value:
                    msg.ordering_key = str(value)
            size += len(data) + 200  # attributes and framing, generously
        wrap = self._pubsub.PublishRequest.wrap
        return [wrap(r) for r in requests]

    async def aexport(self, record: TokenUsageRecord) -> None:
        await self.aexport_batch((record,))

    async def aexport_batch(self, records: Sequence[TokenUsageRecord]) -> None:
        if not records:
            return
        client = self._get_client()
        requests = self._requests(records)
        try:
            if self.ordering_key is not None:
                # Messages with one ordering key must be published one request after the other.
                for request in requests:
                    await client.publish(request=request, retry=None, timeout=self.rpc_timeout)
                return
            results = await asyncio.gather(
                *(
                    client.publish(request=r, retry=None, timeout=self.rpc_timeout)
                    for r in requests
                ),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
        except Exception as exc:
            if is_unavailable(exc):
                await self.aclose()  # the next attempt connects afresh
            raise

    def __repr__(self) -> str:
        return f"PubSubTokenUsageService({self.topic!r})"
