"""Every error class has one envelope shape on every surface: {"error": {message, type, param, code}}."""

from __future__ import annotations

import httpx
import pytest

from llmops.core import errors
from llmops.core.errors import LlmopsError, error_envelope
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream


def _all_error_classes() -> list[type[LlmopsError]]:
    seen, todo = [], [LlmopsError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_has_an_envelope(cls: type[LlmopsError]) -> None:
    exc = cls("it broke 'here'")
    status, headers, body = error_envelope(exc)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] == "it broke 'here'" and body["error"]["type"]
    assert 400 <= status < 600
    if status < 500 and status != 429:
        assert headers["x-should-retry"] == "false"


def test_budget_errors_are_never_retried_by_sdks() -> None:
    _, headers, body = error_envelope(errors.BudgetExceededError("over budget"))
    assert headers["x-should-retry"] == "false" and body["error"]["code"] == "budget_exceeded"


def _check(resp: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


def test_surfaces_share_the_shape(fake_upstream: FakeUpstream, server_factory) -> None:  # type: ignore[no-untyped-def]
    cfg = fake_config(
        fake_upstream, {"name": "up", "deployments": [openai_dep(fake_upstream, "m", timeout_s=0.5)]}, retries=0
    )
    srv: RunningServer = server_factory(cfg)
    user = srv.services.projects.create_key("default", "plain")
    chat = {"model": "up", "messages": [{"role": "user", "content": "x"}]}
    with srv.client() as c, srv.client(user.secret) as plain, httpx.Client(base_url=srv.base_url) as anon:
        _check(anon.post("/v1/chat/completions", json=chat), 401)  # fast path
        _check(anon.get("/v1/models"), 401)  # FastAPI /v1
        _check(anon.get("/api/traces"), 401)  # /api
        # authentication comes before any validation: a bad body or parameter without a key is still a 401
        _check(anon.post("/api/prompts", content=b"{not json"), 401)
        _check(anon.get("/api/traces", params={"limit": 0}), 401)
        _check(httpx.post(srv.base_url + "/api/prompts", json={}, headers={"Authorization": "Bearer sk-nope"}), 401)
        _check(c.post("/v1/chat/completions", content=b"{"), 400)
        _check(c.get("/api/traces", params={"limit": 0}), 400)
        _check(c.get("/api/traces", params={"start": "yesterday-ish"}), 400)
        _check(plain.get("/api/keys"), 403)
        _check(c.get("/api/traces/" + "0" * 32), 404)
        _check(c.get("/v1/models/nope"), 404)
        fake_upstream.enqueue("status:code=500")
        assert _check(c.post("/v1/chat/completions", json=chat), 502)["type"] == "api_error"
        fake_upstream.enqueue("latency:ms=2000")
        _check(c.post("/v1/chat/completions", json=chat), 504)
        fake_upstream.enqueue("status:code=429,retry_after=30")
        _check(c.post("/v1/chat/completions", json=chat), 429)
