"""Helpers: record traces through a running server's own recorder."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from llmops.tracing import Span
from tests.conftest import RunningServer


def project_of(srv: RunningServer) -> str:
    assert srv.services.bootstrap_key is not None
    return srv.services.bootstrap_key.key.project_id


def record(srv: RunningServer, *spans: Span) -> None:
    loop = srv.services.loop
    assert loop is not None

    async def put() -> None:
        for s in spans:
            srv.services.recorder.record(s)
        await srv.services.recorder.flush()

    asyncio.run_coroutine_threadsafe(put(), loop).result(timeout=30)


def chat_span(srv: RunningServer, question: str, answer: str, **kw: Any) -> Span:
    start = kw.pop("start_ns", None) or time.time_ns() - 10**9
    return Span(
        trace_id=secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        project_id=kw.pop("project_id", None) or project_of(srv),
        name=kw.pop("name", "chat m"),
        kind="llm",
        start_ns=start,
        end_ns=start + 20_000_000,
        operation="chat",
        request_model=kw.pop("request_model", "m"),
        input=[{"role": "user", "parts": [{"type": "text", "content": question}]}],
        output=[{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}],
        **kw,
    )
