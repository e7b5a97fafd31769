"""Rate limits through a real server and the official openai SDK: key and end-user rpm/tpm with OpenAI's
x-ratelimit-* headers, 429 rate_limit_exceeded with retry-after, deployment rpm falling back, and the API."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import fake_config, openai_dep
from tests.gateway_limits.conftest import PRICED, priced_config
from tests.support.fake_upstream import FakeUpstream

BODY = {"model": PRICED, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.mark.parametrize("mode", ["memory", "redis"])
def test_key_rpm_headers_and_refusal_through_the_openai_sdk(
    server_factory, fake_upstream: FakeUpstream, mode: str, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    """rpm=3 on a key: three calls carry x-ratelimit-limit/remaining/reset-requests (3, 2, 1, 0 left), the fourth
    is openai.RateLimitError code rate_limit_exceeded with retry-after and the same headers; another key is not
    limited."""
    extra = {"redis_url": request.getfixturevalue("redis_url")} if mode == "redis" else {}
    srv = server_factory(config=priced_config(fake_upstream), **extra)
    key = srv.client().post("/api/keys", json={"name": "limited"}).json()
    resp = srv.client().put("/api/rate-limits", json={"scope": "key", "subject": key["key_id"], "rpm": 3})
    assert resp.status_code == 200, resp.text
    client = openai.OpenAI(base_url=srv.v1, api_key=key["secret"], max_retries=0)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(**BODY)  # type: ignore[call-overload]
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        assert raw.parse().choices[0].message.content == "echo: hi"
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(**BODY)  # type: ignore[call-overload]
    assert err.value.code == "rate_limit_exceeded"
    headers = err.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-remaining-requests"] == "0" and headers["x-ratelimit-limit-requests"] == "3"
    other = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    assert other.chat.completions.create(**BODY).choices  # type: ignore[call-overload]


def test_end_user_tpm_counts_real_tokens(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """tpm for every end user ('*'): each user has their own window; the charge is corrected to the real usage
    after the call, so a user is refused once the tokens really used reach the limit."""
    srv = server_factory(config=priced_config(fake_upstream))
    api = srv.client()
    assert api.put("/api/rate-limits", json={"scope": "user", "subject": "*", "tpm": 60}).status_code == 200
    body = {**BODY, "max_tokens": 1, "user": "u1"}
    codes = [api.post("/v1/chat/completions", json=body).status_code for _ in range(30)]
    assert 200 in codes and 429 in codes
    served = codes.index(429)
    assert all(c == 200 for c in codes[:served])
    # each served call really used 3 tokens (1 prompt word + "echo: hi"); the upfront charge was higher
    assert 60 // 12 <= served <= 60 // 3
    refused = api.post("/v1/chat/completions", json=body)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded" and "x-ratelimit-limit-tokens" in refused.headers
    assert api.post("/v1/chat/completions", json={**body, "user": "u2"}).status_code == 200


def test_deployment_rpm_falls_back_to_the_next_deployment(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """A deployment with rpm=2 takes two calls; the third goes to the next deployment of the alias; with no
    deployment left the client gets 429."""
    cfg = fake_config(
        fake_upstream,
        {
            "name": "pair",
            "deployments": [
                openai_dep(fake_upstream, "m1", name="first-rpm2", rpm=2, retries=0),
                openai_dep(fake_upstream, "m2", name="second-rpm1", rpm=1, retries=0),
            ],
        },
        retries=0,
    )
    srv = server_factory(config=cfg)
    body = {**BODY, "model": "pair"}
    used = [srv.client().post("/v1/chat/completions", json=body).headers.get("x-llmops-deployment") for _ in range(3)]
    assert used == ["first-rpm2", "first-rpm2", "second-rpm1"]
    last = srv.client().post("/v1/chat/completions", json=body)
    assert last.status_code == 429, last.text


def test_rate_limit_api_validates_and_is_project_scoped(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """PUT replaces the limit of the same subject; precise 400s; a key of another project is 404; delete."""
    srv = server_factory(config=priced_config(fake_upstream))
    api = srv.client()
    assert api.put("/api/rate-limits", json={"scope": "user", "subject": "x"}).json()["error"]["param"] == "rpm"
    bad = api.put("/api/rate-limits", json={"scope": "user", "subject": "x", "rpm": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"
    other = srv.services.projects.create_project("other")
    foreign = srv.services.projects.create_key_in(other.project_id, "o", is_admin=True)
    resp = api.put("/api/rate-limits", json={"scope": "key", "subject": foreign.key.key_id, "rpm": 1})
    assert resp.status_code == 404
    first = api.put("/api/rate-limits", json={"scope": "user", "subject": "x", "rpm": 5}).json()
    second = api.put("/api/rate-limits", json={"scope": "user", "subject": "x", "tpm": 7}).json()
    assert second["limit_id"] == first["limit_id"] and (second["rpm"], second["tpm"]) == (None, 7)
    assert [r["subject"] for r in api.get("/api/rate-limits").json()["data"]] == ["x"]
    theirs = httpx.Client(base_url=srv.base_url, headers=srv.headers(foreign.secret))
    assert theirs.get("/api/rate-limits").json()["data"] == []
    assert theirs.delete(f"/api/rate-limits/{first['limit_id']}").status_code == 404
    assert api.delete(f"/api/rate-limits/{first['limit_id']}").json()["deleted"] is True
    assert api.get("/api/rate-limits").json()["data"] == []
