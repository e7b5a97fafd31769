"""Budgets enforced by reservation through a real server: the 200-request race (SQLite, Postgres, Redis), release
on upstream errors and client disconnects, soft warnings, admin keys, tags, free models and the API."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import httpx
import openai
import pytest

from tests.conftest import RunningServer
from tests.gateway_limits.conftest import (
    FREE,
    PRICED,
    burst,
    call_cost,
    create_budget,
    priced_config,
    settled_budget,
)
from tests.support.fake_upstream import FakeUpstream
from tests.support.postgres import create_database

TEXT = "hello there"
BODY = {"model": PRICED, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 10}


def _race(srv: RunningServer) -> None:
    c = call_cost(TEXT)
    budget = create_budget(srv, limit_usd=round(50 * c, 9), period="day")
    replies = asyncio.run(burst(srv.base_url, srv.key, 200, BODY))
    served = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code != 200]
    assert 0 < len(served) <= 50
    for r in refused:
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "budget_exceeded"
        assert r.json()["error"]["type"] == "insufficient_quota"
        assert r.headers["x-should-retry"] == "false" and "retry-after" not in r.headers
    after = settled_budget(srv, budget["budget_id"])
    assert after["reserved_usd"] == 0
    assert after["spent_usd"] == pytest.approx(len(served) * c, abs=1e-9)
    assert after["spent_usd"] <= budget["limit_usd"] + 1e-9
    # spend grows until the budget is used: sequential calls then get 429 once spent + worst case > limit
    client = srv.client()
    while client.post("/v1/chat/completions", json=BODY).status_code == 200:
        pass
    final = settled_budget(srv, budget["budget_id"])
    assert final["spent_usd"] <= budget["limit_usd"] + 1e-9


@pytest.mark.slow
def test_200_concurrent_requests_never_overspend_sqlite(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """SQLite mode (in-process counters): of 200 simultaneous requests at most 50 are served against a budget of
    50 calls, every refusal is 429 budget_exceeded (not retryable), and the spend equals the served calls' cost."""
    _race(server_factory(config=priced_config(fake_upstream)))


@pytest.mark.slow
def test_200_concurrent_requests_never_overspend_postgres(
    server_factory, fake_upstream: FakeUpstream, pg_server: str
) -> None:  # type: ignore[no-untyped-def]
    """The same race with the database on PostgreSQL."""
    url = create_database(pg_server, "lim_" + uuid.uuid4().hex[:12])
    _race(server_factory(config=priced_config(fake_upstream), database_url=url))


@pytest.mark.slow
def test_200_concurrent_requests_never_overspend_redis(
    server_factory, fake_upstream: FakeUpstream, redis_url: str
) -> None:  # type: ignore[no-untyped-def]
    """The same race with the counters in Redis (Lua reservation)."""
    _race(server_factory(config=priced_config(fake_upstream), redis_url=redis_url))


@pytest.mark.parametrize("mode", ["memory", "redis"])
def test_upstream_error_releases_the_reservation(
    server_factory, fake_upstream: FakeUpstream, mode: str, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    """An upstream 500 (no retries) gives the whole reservation back: nothing spent, nothing held; the next call
    is admitted again."""
    extra = {"redis_url": request.getfixturevalue("redis_url")} if mode == "redis" else {}
    srv = server_factory(config=priced_config(fake_upstream), **extra)
    budget = create_budget(srv, limit_usd=1.0)
    fake_upstream.enqueue("status:code=500")
    resp = srv.client().post("/v1/chat/completions", json=BODY)
    assert resp.status_code == 502
    after = settled_budget(srv, budget["budget_id"])
    assert after["spent_usd"] == 0 and after["reserved_usd"] == 0
    assert srv.client().post("/v1/chat/completions", json=BODY).status_code == 200
    assert settled_budget(srv, budget["budget_id"])["spent_usd"] == pytest.approx(call_cost(TEXT))


def test_client_disconnect_mid_stream_settles_to_what_was_consumed(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """A client leaving a slow stream after its first chunk: the reservation is not held forever nor settled to 0;
    it is settled to the cost recorded on the span (the tokens the upstream produced), at most the worst case."""
    srv = server_factory(config=priced_config(fake_upstream))
    budget = create_budget(srv, limit_usd=1.0)
    fake_upstream.enqueue("slow_stream:chunks=50,gap_ms=50")
    body = {**BODY, "stream": True, "max_tokens": 100}
    with httpx.Client(base_url=srv.base_url, headers=srv.headers(), timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            trace_id = resp.headers["x-llmops-trace-id"]
            for line in resp.iter_lines():
                if line.startswith("data: {"):
                    break  # leave mid-stream
    deadline = time.monotonic() + 20
    while settled_budget(srv, budget["budget_id"])["spent_usd"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = settled_budget(srv, budget["budget_id"])
    srv.flush()
    attrs = srv.client().get(f"/api/traces/{trace_id}").json()["spans"][0]["attributes"]
    assert after["reserved_usd"] == 0
    assert 0 < after["spent_usd"] <= attrs["llmops.budget.reserved_usd"], (after, attrs)
    assert after["spent_usd"] == pytest.approx(attrs["llmops.cost_usd"])


def test_soft_budget_warns_and_serves(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """A soft budget over its limit lets the call through with x-llmops-budget-warning and a span attribute."""
    srv = server_factory(config=priced_config(fake_upstream))
    create_budget(srv, name="team-soft", limit_usd=0.0, mode="soft")
    resp = srv.client().post("/v1/chat/completions", json=BODY)
    assert resp.status_code == 200
    assert "team-soft" in resp.headers["x-llmops-budget-warning"]
    srv.flush()
    trace = srv.client().get(f"/api/traces/{resp.headers['x-llmops-trace-id']}").json()
    attrs = trace["spans"][0]["attributes"]
    assert attrs["llmops.budget.warning"] == ["team-soft"]
    assert attrs["llmops.budget.reserved_usd"] > 0


def test_admin_key_is_not_exempt_unless_the_budget_says_so(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """The start-up canary of reliability.md: a 0 budget refuses even the admin key (a refusal is one HTTP
    request through the openai SDK: no client retry); with exempt_admin only the admin key goes through."""
    srv = server_factory(config=priced_config(fake_upstream))
    zero = create_budget(srv, limit_usd=0.0)
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key)  # default max_retries=2
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(**BODY)  # type: ignore[call-overload]
    assert err.value.code == "budget_exceeded"
    assert len([r for r in fake_upstream.requests if r.path.endswith("/chat/completions")]) == 0
    srv.client().delete(f"/api/budgets/{zero['budget_id']}")
    create_budget(srv, limit_usd=0.0, exempt_admin=True)
    plain = srv.client().post("/api/keys", json={"name": "plain"}).json()["secret"]
    assert srv.client().post("/v1/chat/completions", json=BODY).status_code == 200
    resp = srv.client(plain).post("/v1/chat/completions", json=BODY)
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "budget_exceeded"


def test_key_user_and_tag_budgets_apply_only_to_their_subject(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Scopes: a key budget holds only that key, a user budget only that end user, a tag budget only calls
    carrying the tag (header or metadata.tags); tags land on the span as llmops.tags."""
    srv = server_factory(config=priced_config(fake_upstream))
    plain = srv.client().post("/api/keys", json={"name": "plain"}).json()
    create_budget(srv, scope="key", subject=plain["key_id"], limit_usd=0.0)
    create_budget(srv, scope="user", subject="mallory", limit_usd=0.0)
    create_budget(srv, scope="tag", subject="batch-x", limit_usd=0.0)
    api = srv.client()
    assert srv.client(plain["secret"]).post("/v1/chat/completions", json=BODY).status_code == 429
    assert api.post("/v1/chat/completions", json=BODY).status_code == 200
    assert api.post("/v1/chat/completions", json={**BODY, "user": "mallory"}).status_code == 429
    assert api.post("/v1/chat/completions", json={**BODY, "user": "alice"}).status_code == 200
    assert api.post("/v1/chat/completions", json=BODY, headers={"x-llmops-tags": "a, batch-x"}).status_code == 429
    tagged = {**BODY, "metadata": {"tags": ["batch-x"]}}
    assert api.post("/v1/chat/completions", json=tagged).status_code == 429
    ok = api.post("/v1/chat/completions", json={**BODY, "metadata": {"tags": ["other"], "k": "v"}})
    assert ok.status_code == 200
    sent = [r for r in fake_upstream.requests if r.path.endswith("/chat/completions")][-1].json
    assert sent["metadata"] == {"k": "v"}  # tags never go upstream (OpenAI metadata takes strings only)
    srv.flush()
    attrs = api.get(f"/api/traces/{ok.headers['x-llmops-trace-id']}").json()["spans"][0]["attributes"]
    assert attrs["llmops.tags"] == ["other"]
    bad = api.post("/v1/chat/completions", json={**BODY, "metadata": {"tags": [1]}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata.tags"


def test_free_models_consume_nothing(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """A model priced 0 is served under a 0 budget and adds nothing to the spend."""
    srv = server_factory(config=priced_config(fake_upstream))
    budget = create_budget(srv, limit_usd=0.0)
    resp = srv.client().post("/v1/chat/completions", json={**BODY, "model": FREE})
    assert resp.status_code == 200
    assert settled_budget(srv, budget["budget_id"])["spent_usd"] == 0


def test_budget_api_validates_and_is_project_scoped(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Create/list/get/delete; precise 400s; writes need an admin key; a key budget must name a key of the
    project; another project's budget is 404."""
    srv = server_factory(config=priced_config(fake_upstream))
    api = srv.client()
    bad = api.post("/api/budgets", json={"name": "x", "limit_usd": -1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit_usd"
    bad = api.post("/api/budgets", json={"name": "x", "limit_usd": 1, "scope": "key"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "subject"
    missing = api.post("/api/budgets", json={"name": "x", "limit_usd": 1, "scope": "key", "subject": "key_nope"})
    assert missing.status_code == 404
    made = create_budget(srv, name="monthly", limit_usd=5)
    assert made["period"] == "month" and made["spent_usd"] == 0 and made["remaining_usd"] == 5
    assert [b["name"] for b in api.get("/api/budgets").json()["data"]] == ["monthly"]
    plain = api.post("/api/keys", json={"name": "plain"}).json()["secret"]
    denied = srv.client(plain).delete(f"/api/budgets/{made['budget_id']}")
    assert denied.status_code == 403
    other = srv.services.projects.create_project("other")
    other_key = srv.services.projects.create_key_in(other.project_id, "o", is_admin=True).secret
    assert srv.client(other_key).get(f"/api/budgets/{made['budget_id']}").status_code == 404
    assert srv.client(other_key).delete(f"/api/budgets/{made['budget_id']}").status_code == 404
    assert srv.client(other_key).get("/api/budgets").json()["data"] == []
    assert api.delete(f"/api/budgets/{made['budget_id']}").json()["deleted"] is True
    assert api.get(f"/api/budgets/{made['budget_id']}").status_code == 404


def test_unreachable_redis_fails_closed(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """With LLMOPS_REDIS_URL pointing at nothing, a call held to a budget is refused with 503 storage_unavailable
    (retryable) and never reaches the upstream: no call goes unmetered."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    srv = server_factory(config=priced_config(fake_upstream), redis_url=dead)
    create_budget(srv, limit_usd=100.0)
    resp = srv.client().post("/v1/chat/completions", json=BODY)
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "storage_unavailable" and "retry-after" in resp.headers
    assert [r for r in fake_upstream.requests if r.path.endswith("/chat/completions")] == []
