"""Retries and fallbacks against a real fake upstream with fault modes.

Rules proven here: retry/fallback only before the first byte; 429 honours Retry-After; timeouts and
connection resets fall back; a client error (400) is not retried; a stream broken midway ends with an
error event and never with a finish_reason "stop" or [DONE]; every failed attempt is in the trace.
"""

from __future__ import annotations

import time

import httpx
import openai
import orjson
import pytest

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

MSG = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def two_deployments(fake_upstream: FakeUpstream, server_factory) -> RunningServer:  # type: ignore[no-untyped-def]
    """Alias `chat` → primary then backup, both on the fake upstream, 1 retry each."""
    cfg = fake_config(
        fake_upstream,
        {
            "name": "chat",
            "deployments": [
                openai_dep(fake_upstream, "primary-model", name="primary", timeout_s=1.0),
                openai_dep(fake_upstream, "backup-model", name="backup", timeout_s=1.0),
            ],
        },
    )
    return server_factory(cfg)


def _sdk(srv: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)


def _models_called(fake: FakeUpstream) -> list[str]:
    return [r.json["model"] for r in fake.requests if r.path == "/v1/chat/completions"]


def test_answer_from_primary_with_deployment_header(
    two_deployments: RunningServer, fake_upstream: FakeUpstream
) -> None:
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-llmops-deployment"] == "primary"
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert fake_upstream.requests[0].headers["authorization"] == "Bearer upstream-secret"


@pytest.mark.parametrize("fault", ["status:code=500", "status:code=503", "reset_before_first", "malformed_json"])
def test_server_errors_retry_then_fall_back(
    two_deployments: RunningServer, fake_upstream: FakeUpstream, fault: str
) -> None:
    """5xx / connection drop / garbage: one retry on the primary, then the backup answers."""
    fake_upstream.enqueue(fault, fault)
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-llmops-deployment"] == "backup"
    assert _models_called(fake_upstream) == ["primary-model", "primary-model", "backup-model"]
    two_deployments.flush()
    trace = two_deployments.client().get(f"/api/traces/{raw.headers['x-llmops-trace-id']}").json()
    attempts = trace["spans"][0]["attributes"]["llmops.failed_attempts"]
    assert [a["deployment"] for a in attempts] == ["primary", "primary"]
    assert trace["status"] == "ok"


def test_429_honours_retry_after(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    """A 429 with Retry-After: 1 is retried on the same deployment after about a second."""
    fake_upstream.enqueue("status:code=429,retry_after=1")
    started = time.monotonic()
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-llmops-deployment"] == "primary"
    assert time.monotonic() - started >= 0.9
    assert _models_called(fake_upstream) == ["primary-model", "primary-model"]


def test_long_retry_after_falls_back_at_once(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue("status:code=429,retry_after=120")
    started = time.monotonic()
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-llmops-deployment"] == "backup"
    assert time.monotonic() - started < 5


def test_timeout_falls_back(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    """A deployment slower than its timeout (1 s) is abandoned; the backup answers."""
    fake_upstream.enqueue("latency:ms=3000", "latency:ms=3000")
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-llmops-deployment"] == "backup"


def test_slow_first_byte_on_stream_falls_back(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    fake_upstream.enqueue("ttft:ms=3000", "ttft:ms=3000")
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG, stream=True)
    assert raw.headers["x-llmops-deployment"] == "backup"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "echo: hello there"


def test_client_error_is_not_retried(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    """An upstream 400 is the request's fault: returned as is, no retry, no fallback."""
    fake_upstream.enqueue("status:code=400")
    with pytest.raises(openai.BadRequestError):
        _sdk(two_deployments).chat.completions.create(model="chat", messages=MSG)
    assert _models_called(fake_upstream) == ["primary-model"]


def test_context_window_error_falls_back_without_retry(
    two_deployments: RunningServer, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.enqueue("status:code=400,context=1")
    raw = _sdk(two_deployments).chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert raw.headers["x-llmops-deployment"] == "backup"
    assert _models_called(fake_upstream) == ["primary-model", "backup-model"]


def test_all_failing_gives_502_with_every_attempt_in_the_trace(
    two_deployments: RunningServer, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.enqueue(*["status:code=500"] * 4)
    with two_deployments.client() as c:
        resp = c.post("/v1/chat/completions", json={"model": "chat", "messages": MSG})
    assert resp.status_code == 502
    assert resp.json()["error"]["type"] == "api_error"
    assert resp.headers["x-llmops-attempts"] == "4"
    two_deployments.flush()
    with two_deployments.client() as c:
        trace = c.get("/api/traces", params={"status": "error"}).json()["data"][0]
        span = c.get(f"/api/traces/{trace['trace_id']}").json()["spans"][0]
    assert len(span["attributes"]["llmops.failed_attempts"]) == 4
    assert span["status"] == "error"


def test_all_rate_limited_gives_429_with_retry_after(
    two_deployments: RunningServer, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.enqueue(*["status:code=429,retry_after=60"] * 2)
    with two_deployments.client() as c:
        resp = c.post("/v1/chat/completions", json={"model": "chat", "messages": MSG})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "60"
    assert resp.json()["error"]["code"] == "upstream_rate_limited"


def _raw_stream(srv: RunningServer, body: dict) -> list[bytes]:  # type: ignore[type-arg]
    with httpx.Client(base_url=srv.base_url, headers=srv.headers(), timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            return [line.encode() for line in resp.iter_lines() if line]


@pytest.mark.parametrize("fault", ["reset_after:chunks=2", "inband_error", "malformed_json", "no_done"])
def test_broken_stream_ends_with_error_event_never_a_fake_finish(
    two_deployments: RunningServer, fake_upstream: FakeUpstream, fault: str
) -> None:
    """After the first byte there is no retry: the client gets an error event, no stop, no [DONE]."""
    fake_upstream.enqueue(fault)
    lines = _raw_stream(two_deployments, {"model": "chat", "messages": MSG, "stream": True})
    events = [orjson.loads(line[6:]) for line in lines if line != b"data: [DONE]"]
    assert b"data: [DONE]" not in lines
    assert "error" in events[-1] and events[-1]["error"]["message"]
    finishes = [c["choices"][0].get("finish_reason") for c in events[:-1] if c.get("choices")]
    if fault != "no_done":
        assert "stop" not in finishes
    assert _models_called(fake_upstream) == ["primary-model"]  # no replay after the first byte
    two_deployments.flush()
    with two_deployments.client() as c:
        trace = c.get("/api/traces").json()["data"][0]
    assert trace["status"] == "error"


def test_sdk_stream_raises_on_broken_stream(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    """The openai SDK surfaces the error event as an exception instead of a clean finish."""
    fake_upstream.enqueue("reset_after:chunks=2")
    stream = _sdk(two_deployments).chat.completions.create(model="chat", messages=MSG, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_stream_usage_missing_is_estimated_and_flagged(
    two_deployments: RunningServer, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.enqueue("usage_missing")
    _raw_stream(two_deployments, {"model": "chat", "messages": MSG, "stream": True})
    two_deployments.flush()
    with two_deployments.client() as c:
        trace = c.get("/api/traces").json()["data"][0]
        span = c.get(f"/api/traces/{trace['trace_id']}").json()["spans"][0]
    assert span["attributes"]["llmops.usage.estimated"] is True
    assert span["output_tokens"] > 0


def test_tools_and_tool_choice_pass_through(two_deployments: RunningServer, fake_upstream: FakeUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    resp = _sdk(two_deployments).chat.completions.create(model="chat", messages=MSG, tools=tools, tool_choice="auto")
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index, union-attr]
    sent = fake_upstream.requests[-1].json
    assert sent["tools"] == tools and sent["tool_choice"] == "auto"


def test_cost_from_price_table(fake_upstream: FakeUpstream, server_factory) -> None:  # type: ignore[no-untyped-def]
    """A priced upstream model gets a USD cost from genai-prices; config overrides win."""
    cfg = fake_config(
        fake_upstream,
        {"name": "mini", "deployments": [openai_dep(fake_upstream, "gpt-4o-mini")]},
        {"name": "mine", "deployments": [openai_dep(fake_upstream, "my-finetune")]},
        {"name": "unknown", "deployments": [openai_dep(fake_upstream, "mystery-model")]},
    )
    cfg["prices"] = {"my-finetune": {"input_per_mtok": 1_000_000, "output_per_mtok": 0}}
    srv = server_factory(cfg)
    ids = {}
    for alias in ("mini", "mine", "unknown"):
        raw = _sdk(srv).chat.completions.with_raw_response.create(model=alias, messages=MSG)
        ids[alias] = raw.headers["x-llmops-trace-id"]
    srv.flush()
    with srv.client() as c:
        spans = {a: c.get(f"/api/traces/{t}").json()["spans"][0] for a, t in ids.items()}
    assert spans["mini"]["cost_usd"] == pytest.approx((2 * 0.15 + 3 * 0.6) / 1e6)
    assert spans["mine"]["cost_usd"] == pytest.approx(2.0)
    assert spans["unknown"]["cost_usd"] is None
