"""Load balancing across deployments of one alias, through a real server and the fake upstream.

Proven here: ``weighted`` spreads traffic by weight (within a binomial tolerance); ``least-busy`` sends a request
to the idle deployment while another one is busy (a stream counts until it ends); ``lowest-latency`` prefers the
fast deployment once both are measured; N failures cool a deployment (skipped: the upstream never sees it), a
probe after the cooldown brings it back or cools it again; fallback still works; GET /api/gateway/deployments
reports it all; invalid balancing config is refused at start-up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import openai
import pytest

from llmops.core.errors import ConfigError
from llmops.gateway import load_gateway_config
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

MSG = [{"role": "user", "content": "hello there"}]


def _alias(fake: FakeUpstream, strategy: str, *deps: dict[str, Any]) -> dict[str, Any]:
    return {"name": "chat", "strategy": strategy, "deployments": list(deps)}


def _dep(fake: FakeUpstream, name: str, model: str | None = None, **extra: Any) -> dict[str, Any]:
    return openai_dep(fake, model or f"{name}-model", name=name, timeout_s=5.0, **extra)


def _chat(srv: RunningServer, **extra: Any) -> httpx.Response:
    body = {"model": "chat", "messages": MSG, **extra}
    return httpx.post(srv.v1 + "/chat/completions", json=body, headers=srv.headers(), timeout=30)


def _health(srv: RunningServer) -> dict[str, dict[str, Any]]:
    resp = httpx.get(srv.base_url + "/api/gateway/deployments", headers=srv.headers(), timeout=30)
    assert resp.status_code == 200, resp.text
    alias = next(a for a in resp.json()["data"] if a["model"] == "chat")
    return {d["name"]: {**d, "strategy": alias["strategy"]} for d in alias["deployments"]}


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _called(fake: FakeUpstream, model: str) -> int:
    return sum(1 for r in fake.requests if r.path == "/v1/chat/completions" and r.json.get("model") == model)


def test_weighted_spreads_by_weight(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """Weights 3:1 over 400 requests: the heavy deployment serves 75% ± 7.5% (over 4 sigma of the binomial)."""
    cfg = fake_config(
        fake_upstream, _alias(fake_upstream, "weighted", _dep(fake_upstream, "a", weight=3), _dep(fake_upstream, "b"))
    )
    srv = server_factory(cfg)
    served: Counter[str] = Counter()
    with httpx.Client(headers=srv.headers(), timeout=30) as c:
        for _ in range(400):
            resp = c.post(srv.v1 + "/chat/completions", json={"model": "chat", "messages": MSG})
            assert resp.status_code == 200
            served[resp.headers["x-llmops-deployment"]] += 1
    assert abs(served["a"] / 400 - 0.75) < 0.075, served
    assert served["a"] + served["b"] == 400
    assert _called(fake_upstream, "a-model") == served["a"]  # the upstream saw exactly what the header says
    health = _health(srv)
    assert health["a"]["weight"] == 3 and health["a"]["requests"] == served["a"]
    assert health["a"]["strategy"] == "weighted"


def test_least_busy_prefers_the_idle_deployment(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """While `a` holds a slow request, the next request goes to idle `b`; once `a` is free again, `a` (first in
    config order) gets traffic again. A stream holds its deployment until it ends."""
    cfg = fake_config(
        fake_upstream, _alias(fake_upstream, "least-busy", _dep(fake_upstream, "a"), _dep(fake_upstream, "b"))
    )
    srv = server_factory(cfg)
    fake_upstream.enqueue("latency:ms=3000")
    slow: dict[str, httpx.Response] = {}
    t = threading.Thread(target=lambda: slow.setdefault("r", _chat(srv)))
    t.start()
    _wait(lambda: _health(srv)["a"]["in_flight"] == 1)
    quick = _chat(srv)
    assert quick.headers["x-llmops-deployment"] == "b"
    t.join(10)
    assert slow["r"].headers["x-llmops-deployment"] == "a"
    assert _health(srv)["a"]["in_flight"] == 0
    assert _chat(srv).headers["x-llmops-deployment"] == "a"
    # a stream counts as in flight until its last chunk
    fake_upstream.enqueue("slow_stream:chunks=6,gap_ms=500")
    with httpx.stream(
        "POST",
        srv.v1 + "/chat/completions",
        json={"model": "chat", "messages": MSG, "stream": True},
        headers=srv.headers(),
        timeout=30,
    ) as stream:
        assert stream.headers["x-llmops-deployment"] == "a"
        lines = stream.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        assert _health(srv)["a"]["in_flight"] == 1
        assert _chat(srv).headers["x-llmops-deployment"] == "b"
        assert any(line == "data: [DONE]" for line in lines)
    _wait(lambda: _health(srv)["a"]["in_flight"] == 0)


def test_lowest_latency_prefers_the_fast_deployment(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """`slow` answers in 150 ms, `fast` at once: after each is measured once, every request goes to `fast`."""
    slow = _dep(fake_upstream, "slow", model="fault:latency:ms=150")
    cfg = fake_config(fake_upstream, _alias(fake_upstream, "lowest-latency", slow, _dep(fake_upstream, "fast")))
    srv = server_factory(cfg)
    served = [_chat(srv).headers["x-llmops-deployment"] for _ in range(12)]
    assert sorted(served[:2]) == ["fast", "slow"], served  # each unmeasured deployment is tried once
    assert served[2:] == ["fast"] * 10, served
    health = _health(srv)
    assert health["slow"]["ewma_latency_ms"] >= 150
    assert health["fast"]["ewma_latency_ms"] < health["slow"]["ewma_latency_ms"]


def test_cooldown_skips_a_failing_deployment_then_recovers(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """Two 500s from `a` (router retries 0) cool it: the next requests go straight to `b` (the upstream never
    sees `a-model`); after cooldown_s the next request probes `a` first and, as it answers, `a` is healthy."""
    cfg = fake_config(
        fake_upstream,
        _alias(fake_upstream, "ordered", _dep(fake_upstream, "a"), _dep(fake_upstream, "b")),
        retries=0,
        cooldown_failures=2,
        cooldown_s=5,
    )
    srv = server_factory(cfg)
    for _ in range(2):
        fake_upstream.enqueue("status:code=500")
        resp = _chat(srv)
        assert resp.status_code == 200 and resp.headers["x-llmops-deployment"] == "b"  # fallback still works
    health = _health(srv)["a"]
    assert health["state"] == "cooldown" and health["cooldowns"] == 1 and health["cooldown_until"] > time.time()
    assert [e["status_code"] for e in health["recent_errors"]] == [500, 500]
    calls_to_a = _called(fake_upstream, "a-model")
    for _ in range(5):
        assert _chat(srv).headers["x-llmops-deployment"] == "b"
    assert _called(fake_upstream, "a-model") == calls_to_a  # skipped, not tried and failed
    _wait(lambda: _health(srv)["a"]["state"] == "half-open")
    probe = _chat(srv)
    assert probe.headers["x-llmops-deployment"] == "a"
    assert _health(srv)["a"]["state"] == "healthy"
    assert _chat(srv).headers["x-llmops-deployment"] == "a"


def test_failed_probe_cools_again_and_client_errors_do_not_count(
    server_factory: Any, fake_upstream: FakeUpstream
) -> None:
    """A probe that fails cools the deployment again at once (one failure is enough); a 400 (the client's fault)
    never counts towards a cooldown."""
    cfg = fake_config(
        fake_upstream,
        _alias(fake_upstream, "ordered", _dep(fake_upstream, "a"), _dep(fake_upstream, "b")),
        retries=0,
        cooldown_failures=2,
        cooldown_s=5,
    )
    srv = server_factory(cfg)
    for _ in range(3):
        fake_upstream.enqueue("status:code=400")
        assert _chat(srv).status_code == 400
    assert _health(srv)["a"]["state"] == "healthy" and _health(srv)["a"]["errors"] == 0
    fake_upstream.enqueue("status:code=503", "ok", "status:code=503", "ok")
    assert _chat(srv).headers["x-llmops-deployment"] == "b"
    assert _chat(srv).headers["x-llmops-deployment"] == "b"
    assert _health(srv)["a"]["state"] == "cooldown"
    _wait(lambda: _health(srv)["a"]["state"] == "half-open")
    fake_upstream.enqueue("status:code=503")
    assert _chat(srv).headers["x-llmops-deployment"] == "b"  # the probe failed, b answered
    health = _health(srv)["a"]
    assert health["state"] == "cooldown" and health["cooldowns"] == 2


def test_all_cooling_still_serves(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """Cooldown never refuses on its own: with every deployment cooling, they are still tried (earliest end
    first) and a working one answers."""
    cfg = fake_config(
        fake_upstream,
        _alias(fake_upstream, "weighted", _dep(fake_upstream, "a"), _dep(fake_upstream, "b")),
        retries=0,
        cooldown_failures=1,
        cooldown_s=30,
    )
    srv = server_factory(cfg)
    fake_upstream.enqueue("status:code=500", "status:code=500")
    assert _chat(srv).status_code == 502
    assert {h["state"] for h in _health(srv).values()} == {"cooldown"}
    resp = _chat(srv)
    assert resp.status_code == 200


def test_openai_sdk_works_through_a_balanced_alias(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """The official SDK, streaming and not, through a `least-busy` alias."""
    cfg = fake_config(
        fake_upstream, _alias(fake_upstream, "least-busy", _dep(fake_upstream, "a"), _dep(fake_upstream, "b"))
    )
    srv = server_factory(cfg)
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    reply = client.chat.completions.create(model="chat", messages=MSG)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "echo: hello there"
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="chat", messages=MSG, stream=True)  # type: ignore[arg-type]
        if c.choices
    )
    assert text.strip() == "echo: hello there"
    assert sum(h["in_flight"] for h in _health(srv).values()) == 0


def test_deployments_endpoint_requires_a_key(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    srv = server_factory(fake_config(fake_upstream, _alias(fake_upstream, "ordered", _dep(fake_upstream, "a"))))
    resp = httpx.get(srv.base_url + "/api/gateway/deployments", timeout=60)
    assert resp.status_code == 401
    body = httpx.get(srv.base_url + "/api/gateway/deployments", headers=srv.headers(), timeout=60).json()
    names = {a["model"] for a in body["data"]}
    assert {"chat", "local", "local-embed"} <= names
    assert "upstream-secret" not in str(body) and fake_upstream.base_url not in str(body)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"strategy": "random"}, "models.0.strategy"),
        ({"deployments": [{"provider": "openai", "weight": 0}]}, "models.0.deployments.0.weight"),
        ({"deployments": [{"provider": "openai", "rpm": -1}]}, "models.0.deployments.0.rpm"),
    ],
)
def test_invalid_balancing_config_is_refused(tmp_path: Any, change: dict[str, Any], loc: str) -> None:
    import yaml

    model = {"name": "chat", "deployments": [{"provider": "openai"}], **change}
    path = tmp_path / "llmops.yaml"
    path.write_text(yaml.safe_dump({"models": [model]}))
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert err.value.param == loc


def test_a_deployment_at_its_rpm_is_skipped_without_cooling(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    """`rpm: 1` on `a`: the second request within the minute falls back to `b`; being at our own limit is not an
    upstream failure, so `a` is not cooled and its error count stays 0."""
    cfg = fake_config(
        fake_upstream,
        _alias(fake_upstream, "ordered", _dep(fake_upstream, "a", rpm=1), _dep(fake_upstream, "b")),
        cooldown_failures=1,
    )
    srv = server_factory(cfg)
    assert _chat(srv).headers["x-llmops-deployment"] == "a"
    assert _chat(srv).headers["x-llmops-deployment"] == "b"
    health = _health(srv)["a"]
    assert health["state"] == "healthy" and health["errors"] == 0 and health["rpm"] == 1
    assert _called(fake_upstream, "a-model") == 1
