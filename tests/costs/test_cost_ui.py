"""The Costs page and ``llmops costs`` against a real server with priced fake-upstream traffic.

Proven here: the page (cookie sign-in) shows the spend the API reports, one SVG bar per bucket, the breakdown by
the chosen group, cache savings per route, a what-if result (and a precise message for an unknown model), and
the deployment health panel; anonymous visitors are sent to /login; the CLI prints the same figures.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

import httpx
from click.testing import CliRunner

from llmops.cli.main import cli
from llmops.tracing import Span
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream

PRICES = {"cheap-model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}


def _server(server_factory: Any, fake: FakeUpstream) -> RunningServer:
    cfg = fake_config(
        fake,
        {
            "name": "cheap",
            "strategy": "least-busy",
            "deployments": [openai_dep(fake, "cheap-model", name="cheap-a"), openai_dep(fake, "cheap-model")],
        },
    )
    cfg["prices"] = PRICES
    srv: RunningServer = server_factory(cfg)
    for i in range(3):
        body = {"model": "cheap", "messages": [{"role": "user", "content": "hi " * (i + 1)}]}
        assert httpx.post(srv.v1 + "/chat/completions", json=body, headers=srv.headers(), timeout=60).status_code == 200
    assert srv.services.bootstrap_key is not None
    project = srv.services.bootstrap_key.key.project_id
    now = time.time_ns()
    hit = Span(
        trace_id=secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        project_id=project,
        name="chat cheap",
        kind="llm",
        start_ns=now - 10**9,
        end_ns=now - 10**9 + 1000,
        operation="chat",
        request_model="cheap",
        cost_usd=0.0,
        attributes={"llmops.cache.status": "hit", "llmops.cache.kind": "semantic", "llmops.cache.saved_usd": 0.5},
    )
    loop = srv.services.loop
    assert loop is not None

    async def put() -> None:
        srv.services.recorder.record(hit)
        await srv.services.recorder.flush()

    asyncio.run_coroutine_threadsafe(put(), loop).result(timeout=30)
    srv.flush()
    return srv


def test_costs_page_shows_spend_savings_what_if_and_health(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    srv = _server(server_factory, fake_upstream)
    api = httpx.get(srv.base_url + "/api/costs", params={"group_by": "model"}, headers=srv.headers(), timeout=60).json()
    cookies = {"llmops_key": srv.key}
    page = httpx.get(srv.base_url + "/costs", params={"range": "7d", "by": "model"}, cookies=cookies, timeout=60)
    assert page.status_code == 200
    html = page.text
    assert 'aria-current="page"' in html and "nav-costs active" in html
    spend = re.search(r'id="total-spend">([^<]+)<', html)
    assert spend is not None and spend.group(1).startswith("$") and spend.group(1) != "$0"
    assert api["totals"]["cost_usd"] > 0
    assert len(re.findall(r'<g class="bar">', html)) == 8  # one bar per UTC day: 7 days back reach into 8 days
    assert re.search(r'id="total-saved">\$0\.5<', html)
    assert 'table class="table cache-routes"' in html and "semantic 1" in html
    assert 'data-deployment="cheap-a"' in html and "least-busy" in html
    what_if = httpx.get(srv.base_url + "/costs", params={"what_if": "cheap"}, cookies=cookies, timeout=60).text
    assert 'id="what-if-total"' in what_if
    unknown = httpx.get(srv.base_url + "/costs", params={"what_if": "no-such-model"}, cookies=cookies, timeout=60).text
    assert "no price known for model &#39;no-such-model&#39;" in unknown
    by_user = httpx.get(srv.base_url + "/costs", params={"by": "user", "range": "24h"}, cookies=cookies, timeout=60)
    assert by_user.status_code == 200 and "<th>User</th>" in by_user.text
    anonymous = httpx.get(srv.base_url + "/costs", follow_redirects=False, timeout=60)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_cli_prints_spend_and_what_if(server_factory: Any, fake_upstream: FakeUpstream) -> None:
    srv = _server(server_factory, fake_upstream)
    api = httpx.get(srv.base_url + "/api/costs", params={"group_by": "model"}, headers=srv.headers(), timeout=60).json()
    args = ["costs", "--by", "model", "--days", "7", "--what-if", "gpt-4o-mini"]
    result = CliRunner().invoke(cli, [*args, "--base-url", srv.base_url, "--api-key", srv.key])
    assert result.exit_code == 0, result.output
    assert f"${api['totals']['cost_usd']:,.6f}" in result.output
    assert "cheap" in result.output and "cache hit rate 25.0%" not in result.output  # 1 hit, 0 misses: 100%
    assert "cache hit rate 100.0% (1 hits)" in result.output
    assert "what if gpt-4o-mini:" in result.output and "for 3 chat request(s)" in result.output
    bad = CliRunner().invoke(
        cli, ["costs", "--what-if", "nope-model", "--base-url", srv.base_url, "--api-key", srv.key]
    )
    assert bad.exit_code != 0 and "model_not_priced" in bad.output
