"""``llmops.score``: what goes on the wire, background retries, and that errors are logged, never raised.

The HTTP side is an ``httpx.MockTransport`` standing in for ``POST /api/scores`` with scripted answers (the
real route is exercised in ``test_sdk_e2e.py``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmops
from llmops.sdk.scores import ScoreSender


class Server:
    """Scripted answers (status codes or exceptions, then 201 forever) and the requests received."""

    def __init__(self, *script: int | Exception) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else 201
        if isinstance(step, Exception):
            raise step
        return httpx.Response(step, json={"detail": "scripted"})

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def scored(clean_env: None) -> Iterator[Callable[..., Server]]:
    def start(*script: int | Exception) -> Server:
        server = Server(*script)
        llmops.init(
            "http://llmops.test",
            "sk-score",
            exporter=InMemorySpanExporter(),
            set_global_provider=False,
            score_transport=httpx.MockTransport(server),
        )
        return server

    yield start
    llmops.shutdown(timeout_s=5)


def test_score_defaults_to_the_current_span(scored: Callable[..., Server]) -> None:
    """Inside a span, a score names its trace and span; it is sent with the key, source ``code`` and a
    generated idempotency key (the value ``score`` returns)."""
    server = scored()
    with llmops.span("answer") as s:
        key = llmops.score("helpful", True, comment="nice")
    assert key is not None and key.startswith("sdk-")
    assert llmops.flush(timeout_s=10)
    (request,) = server.requests
    assert request.url.path == "/api/scores" and request.headers["authorization"] == "Bearer sk-score"
    assert server.bodies() == [
        {
            "trace_id": s.trace_id,
            "span_id": s.span_id,
            "name": "helpful",
            "value": True,
            "source": "code",
            "comment": "nice",
            "idempotency_key": key,
        }
    ]


def test_explicit_trace_and_options(scored: Callable[..., Server]) -> None:
    """Outside any span a score needs ``trace_id``; ``source``, ``idempotency_key`` and string/number values
    are sent as given, and no span id is invented."""
    server = scored()
    assert llmops.score("label", "good", trace_id="ab" * 16, source="human", idempotency_key="k-1") == "k-1"
    llmops.score("latency_ok", 0.5, trace_id="ab" * 16, source="llm_judge")
    assert llmops.flush(timeout_s=10)
    first, second = server.bodies()
    assert first["span_id"] is None and first["value"] == "good" and first["source"] == "human"
    assert first["idempotency_key"] == "k-1"
    assert second["value"] == 0.5 and second["source"] == "llm_judge"


def test_retries_until_the_trace_arrives_with_one_idempotency_key(scored: Callable[..., Server]) -> None:
    """404 (trace not ingested yet), 503 and connection errors are retried in the background with the same
    idempotency key until the server accepts the score."""
    server = scored(404, 503, httpx.ConnectError("refused"))
    llmops.score("s", 1, trace_id="cd" * 16)
    assert llmops.flush(timeout_s=20)
    assert len(server.requests) == 4
    assert len({b["idempotency_key"] for b in server.bodies()}) == 1


def test_rejected_scores_are_logged_and_dropped(
    scored: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    """A score the server refuses (422) is not retried; the refusal is logged, nothing is raised."""
    server = scored(422)
    with caplog.at_level(logging.WARNING, logger="llmops.sdk"):
        llmops.score("s", 1, trace_id="ef" * 16)
        assert llmops.flush(timeout_s=10)
    assert len(server.requests) == 1
    assert any("not sent (422)" in r.getMessage() for r in caplog.records)


def test_invalid_scores_are_logged_not_raised(scored: Callable[..., Server], caplog: pytest.LogCaptureFixture) -> None:
    """Bad arguments (no trace, unknown source, a list value, no name) return None and log why."""
    server = scored()
    with caplog.at_level(logging.WARNING, logger="llmops.sdk"):
        assert llmops.score("no-trace", 1) is None
        assert llmops.score("s", 1, trace_id="ab" * 16, source="robot") is None  # type: ignore[arg-type]
        assert llmops.score("s", [1], trace_id="ab" * 16) is None  # type: ignore[arg-type]
        assert llmops.score("", 1, trace_id="ab" * 16) is None
    assert llmops.flush(timeout_s=5) and server.requests == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "no current span" in messages and "source must be" in messages and "value must be" in messages


def test_score_before_init_is_dropped(clean_env: None, caplog: pytest.LogCaptureFixture) -> None:
    """Without ``init`` a score is dropped with a warning, never an exception."""
    with caplog.at_level(logging.WARNING, logger="llmops.sdk"):
        assert llmops.score("s", 1, trace_id="ab" * 16) is None
    assert "init" in caplog.text


def test_flush_is_bounded_while_the_server_keeps_failing(scored: Callable[..., Server]) -> None:
    """``flush`` gives up after its timeout (returns False) while a score keeps being retried; ``shutdown``
    then stops the sender without hanging."""
    scored(*([503] * 1000))
    llmops.score("s", 1, trace_id="ab" * 16)
    assert llmops.flush(timeout_s=0.3) is False
    llmops.shutdown(timeout_s=0.3)


def test_queue_is_bounded() -> None:
    """When the sender is stuck, scores beyond the queue size are refused (and counted), not buffered."""
    release = threading.Event()

    def stuck(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        return httpx.Response(201)

    sender = ScoreSender(
        "http://llmops.test", "k", flush_spans=lambda: None, transport=httpx.MockTransport(stuck), max_queue=2
    )
    accepted = [sender.submit({"name": f"s{i}"}) for i in range(6)]
    release.set()
    assert sender.close(10)
    assert accepted.count(True) <= 3 and sender.dropped == accepted.count(False) >= 3
    assert sender.sent == accepted.count(True)
