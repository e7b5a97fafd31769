"""Online evaluation against a running server: live gateway traffic, a rule with a deterministic scorer,
scores on traces, a durable cursor, sampling and a bounded backlog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import openai
import pytest

from llmops.core.settings import OnlineEvalSettings
from llmops.evals._sql_review import SqlReviewStore
from llmops.evals.online import NewRule, OnlineWorker, RuleFilter, sampled
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.evals_review.support import chat_span, project_of, record
from tests.support.fake_upstream import FakeUpstream

T = TypeVar("T")


def on_loop(srv: RunningServer, coro: Coroutine[Any, Any, T]) -> T:
    loop = srv.services.loop
    assert loop is not None
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def gateway_server(fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer]) -> RunningServer:
    cfg = fake_config(
        fake_upstream,
        {"name": "m", "deployments": [openai_dep(fake_upstream, "up-m")]},
        {"name": "n", "deployments": [openai_dep(fake_upstream, "up-n")]},
    )
    return server_factory(cfg, online_eval=OnlineEvalSettings(poll_interval_s=0.1))


def _scores(srv: RunningServer, name: str) -> list[dict[str, Any]]:
    with srv.client() as c:
        return c.get("/api/scores", params={"name": name, "limit": 200}).json()["data"]  # type: ignore[no-any-return]


def test_rule_scores_live_gateway_traffic(gateway_server: RunningServer) -> None:
    """Calls through /v1 are scored by the rule's scorer (only model `m`, not `n`); scores land on the traces
    with source `code`; counters and cursor are persisted; a fresh worker (a restart) rescores nothing and
    picks up only the traffic that came after."""
    srv = gateway_server
    with srv.client() as c:
        body = {
            "name": "echo-check",
            "scorers": [{"name": "contains", "value": "echo", "score_name": "has-echo"}],
            "model": "m",
            "delay_s": 0.2,
        }
        r = c.post("/api/online-rules", json=body)
        assert r.status_code == 201, r.text
        rule_id = r.json()["rule_id"]
        bad = c.post("/api/online-rules", json={**body, "name": "x", "scorers": [{"name": "nope"}]})
        assert bad.status_code == 400 and "unknown scorer" in bad.json()["error"]["message"]
    sdk = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    for i in range(3):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": f"hello {i}"}])
    sdk.chat.completions.create(model="n", messages=[{"role": "user", "content": "not me"}])
    wait_for(lambda: len(_scores(srv, "has-echo")) == 3)
    scores = _scores(srv, "has-echo")
    assert {s["value"] for s in scores} == {True} and {s["source"] for s in scores} == {"code"}
    with srv.client() as c:
        traces = c.get("/api/traces", params={"model": "m"}).json()["data"]
        assert {t["trace_id"] for t in traces} == {s["trace_id"] for s in scores}
        wait_for(lambda: c.get(f"/api/online-rules/{rule_id}").json()["scored"] == 3)
        listed = c.get("/api/online-rules").json()
        assert listed["worker"] == {"backlog": 0, "dropped": 0}
        health = c.get("/readyz").json()["online_eval"]
        assert health["scored"] == 3 and health["dropped"] == 0 and health["backlog"] == 0
    on_loop(srv, srv.services.online_worker.stop())  # type: ignore[union-attr]
    restarted = OnlineWorker(
        SqlReviewStore(srv.services.engine), srv.services.traces, srv.services.scores, _factory(srv)
    )
    on_loop(srv, restarted.run_once())
    assert restarted.stats.enqueued == 0  # the persisted cursor is past every scored trace
    sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "after restart"}])
    time.sleep(0.3)  # the rule's delay_s
    srv.flush()
    on_loop(srv, restarted.run_once())
    assert restarted.stats.enqueued == 1 and restarted.stats.scored == 1
    assert len(_scores(srv, "has-echo")) == 4


def _factory(srv: RunningServer) -> Any:
    worker = srv.services.online_worker
    assert worker is not None
    return worker._evaluators  # the app's own registry-backed factory


def test_sampling_and_bounded_backlog(gateway_server: RunningServer) -> None:
    """sample_rate 0 scores nothing; with a queue of 2 and no consumer, 5 matching traces give 2 jobs and 3
    counted drops; sampling is a deterministic function of (rule, trace)."""
    srv = gateway_server
    on_loop(srv, srv.services.online_worker.stop())  # type: ignore[union-attr]
    rules = srv.services.online_rules
    assert rules is not None
    pid = project_of(srv)
    start = time.time_ns() - 60 * 10**9
    spec = [{"name": "contains", "value": "a", "score_name": "sampled-a"}]
    never = on_loop(srv, rules.create_rule(pid, NewRule("never", spec, sample_rate=0.0, delay_s=0, start_ns=start)))
    full = on_loop(
        srv, rules.create_rule(pid, NewRule("full", spec, RuleFilter(name="tagged"), delay_s=0, start_ns=start))
    )
    record(srv, *[chat_span(srv, f"q{i}", "a", name="tagged", start_ns=start + (i + 1) * 10**9) for i in range(5)])
    small = OnlineWorker(
        SqlReviewStore(srv.services.engine), srv.services.traces, srv.services.scores, _factory(srv), queue_size=2
    )
    on_loop(srv, small.poll())
    assert small.stats.enqueued == 2 and small.stats.dropped == 3
    assert small.stats.dropped_by_rule == {full.rule_id: 3}
    assert never.rule_id not in small.stats.dropped_by_rule
    assert sampled("r", "t", 0.5) == sampled("r", "t", 0.5)
    share = sum(sampled("rule", f"{i:032x}", 0.3) for i in range(2000)) / 2000
    assert 0.25 < share < 0.35


def test_failing_scorer_is_counted_and_shown(gateway_server: RunningServer) -> None:
    """A scorer that cannot judge (``contains`` with no value and no expected output) stores no score; the
    rule counts it as failed, the worker goes on, and the /review page shows the rule with its counters."""
    srv = gateway_server
    with srv.client() as c:
        body = {"name": "cannot-judge", "scorers": [{"name": "contains", "score_name": "never"}], "delay_s": 0}
        rule_id = c.post("/api/online-rules", json=body).json()["rule_id"]
        record(srv, *[chat_span(srv, f"q{i}", "a", start_ns=time.time_ns() + i) for i in range(2)])
        wait_for(lambda: c.get(f"/api/online-rules/{rule_id}").json()["failed"] == 2)
        assert _scores(srv, "never") == []
        assert c.patch(f"/api/online-rules/{rule_id}", json={"enabled": False}).json()["enabled"] is False
        c.cookies.set("llmops_key", srv.key)
        page = c.get("/review")
        assert page.status_code == 200
        row = page.text.split(f'data-rule-id="{rule_id}"', 1)[1].split("</tr>", 1)[0]
        assert "cannot-judge" in row and "paused" in row and '<td class="num mono">2</td>' in row
        assert c.delete(f"/api/online-rules/{rule_id}").status_code == 204
        assert c.get(f"/api/online-rules/{rule_id}").status_code == 404
