"""Cost reports (GET /api/costs, /api/costs/what-if) over real gateway traffic and recorded spans.

Proven here: spend equals the price table applied to the usage the clients received, per model, key, user,
prompt and tag, in zero-filled hourly/daily UTC buckets; cache savings and hit rates come from the cache span
attributes; what-if reprices the same chat tokens (cache hits and embeddings excluded) with another model's
price; unpriced spans are counted, never shown as $0; another project's spend never shows; bad parameters get
precise 400s. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import pytest

from llmops.tracing import Span
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

PRICES = {
    "cheap-model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
    "dear-model": {"input_per_mtok": 10.0, "output_per_mtok": 30.0},
}
HOUR_NS = 3_600 * 10**9


def _config(fake: FakeUpstream) -> dict[str, Any]:
    cfg = fake_config(
        fake,
        {"name": "cheap", "deployments": [openai_dep(fake, "cheap-model")]},
        {"name": "dear", "deployments": [openai_dep(fake, "dear-model")]},
    )
    cfg["prices"] = PRICES
    return cfg


@pytest.fixture(params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, server_factory: Any, fake_upstream: FakeUpstream) -> RunningServer:
    if request.param == "postgres":
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "costs_" + secrets.token_hex(6))
        return server_factory(_config(fake_upstream), database_url=url)  # type: ignore[no-any-return]
    return server_factory(_config(fake_upstream))  # type: ignore[no-any-return]


def _expected(usage: dict[str, int], model: str) -> float:
    p = PRICES[model]
    return (usage["prompt_tokens"] * p["input_per_mtok"] + usage["completion_tokens"] * p["output_per_mtok"]) / 1e6


def _chat(srv: RunningServer, alias: str, text: str, **headers: str) -> dict[str, Any]:
    body = {"model": alias, "messages": [{"role": "user", "content": text}]}
    resp = httpx.post(srv.v1 + "/chat/completions", json=body, headers={**srv.headers(), **headers}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["usage"]  # type: ignore[no-any-return]


def _record(srv: RunningServer, spans: list[Span]) -> None:
    loop = srv.services.loop
    assert loop is not None

    async def put() -> None:
        for s in spans:
            srv.services.recorder.record(s)
        await srv.services.recorder.flush()

    asyncio.run_coroutine_threadsafe(put(), loop).result(timeout=30)


def _span(project_id: str, start_ns: int, **fields: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": secrets.token_hex(16),
        "span_id": secrets.token_hex(8),
        "project_id": project_id,
        "name": "chat cheap",
        "kind": "llm",
        "start_ns": start_ns,
        "end_ns": start_ns + 10**6,
        "operation": "chat",
        "request_model": "cheap",
    }
    return Span(**{**base, **fields})


def _project(srv: RunningServer) -> str:
    assert srv.services.bootstrap_key is not None
    return srv.services.bootstrap_key.key.project_id


def _get(srv: RunningServer, path: str, **params: Any) -> dict[str, Any]:
    resp = httpx.get(srv.base_url + path, params=params, headers=srv.headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_spend_by_model_and_user_matches_the_price_table(srv: RunningServer) -> None:
    """Spend per model/user equals the configured prices applied to the usage each client got back."""
    spent: dict[str, float] = {"cheap": 0.0, "dear": 0.0}
    by_user: dict[str, float] = {"ann": 0.0, "bob": 0.0}
    for i, (alias, user) in enumerate([("cheap", "ann"), ("dear", "ann"), ("dear", "bob"), ("cheap", "bob")] * 2):
        usage = _chat(srv, alias, "word " * (i + 3), **{"x-llmops-user": user})
        cost = _expected(usage, f"{alias}-model")
        spent[alias] += cost
        by_user[user] += cost
    srv.flush()
    report = _get(srv, "/api/costs", group_by="model")
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["cheap"]["requests"] == 4 and groups["dear"]["requests"] == 4
    for alias in spent:
        assert groups[alias]["cost_usd"] == pytest.approx(spent[alias], rel=1e-6)
    assert report["totals"]["cost_usd"] == pytest.approx(sum(spent.values()), rel=1e-6)
    assert [g["group"] for g in report["groups"]] == ["dear", "cheap"]  # by spend, highest first
    assert report["totals"]["unpriced_requests"] == 0 and report["totals"]["cache_hit_rate"] is None
    users = {g["group"]: g["cost_usd"] for g in _get(srv, "/api/costs", group_by="user")["groups"]}
    assert users == pytest.approx(by_user, rel=1e-6)
    keys = _get(srv, "/api/costs", group_by="key")["groups"]
    assert len(keys) == 1 and keys[0]["cost_usd"] == pytest.approx(sum(spent.values()), rel=1e-6)
    project = _get(srv, "/api/costs", group_by="project")["groups"]
    assert [g["group"] for g in project] == [_project(srv)]


def test_series_buckets_tags_prompts_and_cache_savings(srv: RunningServer) -> None:
    """Recorded spans two hours apart land in their UTC hour buckets (zero-filled between); tags and prompts
    group; cache hits count as savings with their kind, and the hit rate per route is hits / (hits + misses)."""
    project = _project(srv)
    hour = (time.time_ns() // HOUR_NS - 3) * HOUR_NS
    hit = {"llmops.cache.status": "hit", "llmops.cache.kind": "exact", "llmops.cache.saved_usd": 0.25}
    spans = [
        _span(project, hour + 5, cost_usd=1.0, input_tokens=100, output_tokens=10, attributes={"llmops.tags": ["x"]}),
        _span(project, hour + 6, cost_usd=0.5, attributes={"llmops.tags": ["x", "y"], "llmops.cache.status": "miss"}),
        _span(project, hour + 2 * HOUR_NS, cost_usd=0.0, attributes={**hit, "llmops.prompt.name": "greet"}),
        _span(project, hour + 2 * HOUR_NS + 1, cost_usd=None, request_model="mystery", kind="llm"),
        _span(project, hour + 2 * HOUR_NS + 2, cost_usd=9.0, operation=None, kind="agent"),  # not an LLM call
    ]
    _record(srv, spans)
    start, end = hour / 1e9, (hour + 3 * HOUR_NS) / 1e9
    report = _get(srv, "/api/costs", interval="hour", start=start, end=end, group_by="tag")
    assert [s["cost_usd"] for s in report["series"]] == [1.5, 0.0, 0.0]
    assert [s["requests"] for s in report["series"]] == [2, 0, 2]
    assert report["series"][2]["saved_usd"] == 0.25
    t = report["totals"]
    assert (t["requests"], t["cost_usd"], t["unpriced_requests"], t["saved_usd"]) == (4, 1.5, 1, 0.25)
    assert t["cache_hits"] == 1 and t["cache_hit_rate"] == 0.5
    tags = {g["group"]: g["cost_usd"] for g in report["groups"]}
    assert tags == {"x": 1.5, "y": 0.5, None: 0.0}  # a span with two tags counts in both
    routes = {r["model"]: r for r in report["cache_by_route"]}
    assert routes["cheap"]["cache_hit_rate"] == 0.5 and routes["cheap"]["hits_by_kind"] == {"exact": 1}
    assert "mystery" not in routes  # no cache traffic: no hit rate
    prompts = {
        g["group"]: g["requests"] for g in _get(srv, "/api/costs", start=start, end=end, group_by="prompt")["groups"]
    }
    assert prompts == {"greet": 1, None: 3}
    daily = _get(srv, "/api/costs", interval="day", start=start, end=end)
    assert sum(s["cost_usd"] for s in daily["series"]) == 1.5 and daily["groups"] == []


def test_what_if_reprices_the_same_chat_tokens(srv: RunningServer) -> None:
    """The chat traffic priced with the dear alias's price (and with a model name from the price data);
    cache hits and embeddings are left out; an unknown model is a 400 naming the parameter."""
    tokens = {"in": 0, "out": 0}
    actual = 0.0
    for i in range(3):
        usage = _chat(srv, "cheap", "say " * (i + 2))
        tokens["in"] += usage["prompt_tokens"]
        tokens["out"] += usage["completion_tokens"]
        actual += _expected(usage, "cheap-model")
    project = _project(srv)
    now = time.time_ns()
    _record(
        srv,
        [
            _span(
                project, now - 10**9, input_tokens=1000, output_tokens=1000, attributes={"llmops.cache.status": "hit"}
            ),
            _span(project, now - 10**9, input_tokens=1000, output_tokens=0, operation="embeddings"),
        ],
    )
    srv.flush()
    report = _get(srv, "/api/costs/what-if", model="dear", group_by="model")
    t = report["totals"]
    assert t["input_tokens"] == tokens["in"] and t["output_tokens"] == tokens["out"] and t["requests"] == 3
    assert t["actual_usd"] == pytest.approx(actual, rel=1e-6)
    assert t["what_if_usd"] == pytest.approx((tokens["in"] * 10 + tokens["out"] * 30) / 1e6, rel=1e-6)
    assert t["ratio"] == pytest.approx(t["what_if_usd"] / t["actual_usd"], rel=1e-6)
    assert report["price"] == {"input_per_mtok": 10.0, "output_per_mtok": 30.0}
    assert [g["group"] for g in report["groups"]] == ["cheap"]
    assert _get(srv, "/api/costs/what-if", model="local")["totals"]["what_if_usd"] == 0.0  # free local model
    known = _get(srv, "/api/costs/what-if", model="gpt-4o-mini")  # from the bundled genai-prices data
    assert known["price"]["input_per_mtok"] > 0 and known["totals"]["what_if_usd"] > 0
    resp = httpx.get(
        srv.base_url + "/api/costs/what-if", params={"model": "no-such-model"}, headers=srv.headers(), timeout=60
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "model" and resp.json()["error"]["code"] == "model_not_priced"


def test_other_projects_spend_never_shows(srv: RunningServer) -> None:
    """Spans of another project (same time, same model) count for that project only."""
    other = srv.services.projects.create_project("other-costs")
    key = srv.services.projects.create_key_in(other.project_id, "k").secret
    now = time.time_ns()
    _record(srv, [_span(other.project_id, now - 10**9, cost_usd=7.0, user_id="other-user")])
    mine = _get(srv, "/api/costs", group_by="user")
    assert mine["totals"]["cost_usd"] == 0.0 and mine["groups"] == []
    theirs = httpx.get(
        srv.base_url + "/api/costs", params={"group_by": "user"}, headers=srv.headers(key), timeout=60
    ).json()
    assert theirs["totals"]["cost_usd"] == 7.0 and theirs["groups"][0]["group"] == "other-user"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"interval": "week"}, "interval"),
        ({"group_by": "planet"}, "group_by"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ({"start": "yesterday"}, "start"),
        ({"interval": "hour", "start": "2020-01-01", "end": "2026-01-01"}, "start"),
    ],
)
def test_bad_parameters_are_precise_400s(server_factory: Any, params: dict[str, str], param: str) -> None:
    srv = server_factory()
    resp = httpx.get(srv.base_url + "/api/costs", params=params, headers=srv.headers(), timeout=60)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param
    missing = httpx.get(srv.base_url + "/api/costs/what-if", headers=srv.headers(), timeout=60)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
    assert httpx.get(srv.base_url + "/api/costs", timeout=60).status_code == 401
