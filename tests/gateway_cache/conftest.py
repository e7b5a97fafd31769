"""Fixtures for the response-cache tests: a gateway whose routes point at the fake upstream with caches on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

PRICES = {"gpt-cache": {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}}


def cached_config(fake: FakeUpstream, **semantic: Any) -> dict[str, Any]:
    """`cached`: exact cache on; `sampled`: exact cache on with allow_sampled; `plain`: no cache section;
    `semantic`: semantic cache on (``semantic`` overrides its settings)."""
    cfg = fake_config(
        fake,
        {"name": "cached", "deployments": [openai_dep(fake, "gpt-cache")], "cache": {"exact": {"enabled": True}}},
        {
            "name": "sampled",
            "deployments": [openai_dep(fake, "gpt-cache")],
            "cache": {"exact": {"enabled": True, "allow_sampled": True}},
        },
        {"name": "plain", "deployments": [openai_dep(fake, "gpt-cache")]},
        {
            "name": "semantic",
            "deployments": [openai_dep(fake, "gpt-cache")],
            "cache": {"semantic": {"enabled": True, **semantic}},
        },
    )
    cfg["prices"] = PRICES
    return cfg


@pytest.fixture
def cache_server(server_factory: Callable[..., RunningServer], fake_upstream: FakeUpstream) -> RunningServer:
    return server_factory(config=cached_config(fake_upstream))


def upstream_calls(fake: FakeUpstream) -> int:
    return sum(1 for r in fake.requests if r.path == "/v1/chat/completions")


def chat(
    server: RunningServer, model: str = "cached", text: str = "What is 2+2?", *, key: str | None = None,
    headers: dict[str, str] | None = None, **params: Any,
) -> Any:  # fmt: skip
    body = {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0, **params}
    with server.client(key) as c:
        return c.post("/v1/chat/completions", json=body, headers=headers or {})


def span_attributes(server: RunningServer, trace_id: str) -> dict[str, Any]:
    server.flush()
    with server.client() as c:
        trace = c.get(f"/api/traces/{trace_id}").json()
    spans = trace.get("spans") or trace.get("data") or []
    return dict(spans[0]["attributes"]) if spans else trace["attributes"]
