"""The web UI in headless Chromium against a real server fed by the official openai SDK."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import WAIT_MS, XSS_INPUT, XSS_OUTPUT, Web

pytestmark = pytest.mark.browser


def _login(page: Page, web: Web, key: str, next_path: str = "/") -> None:
    page.goto(f"{web.base}/login?next={next_path}")
    page.fill("#key", key)
    page.click("button[type=submit]")


def test_unauthenticated_pages_redirect_to_login(web: Web, page: Page) -> None:
    """Every page sends a signed-out visitor to /login (keeping where they wanted to go); fragments say HX-Redirect."""
    for path in ("/", "/traces", "/dashboard", f"/traces/{web.traffic.chat_trace_id}"):
        page.goto(web.base + path)
        assert page.url.startswith(f"{web.base}/login?next="), (path, page.url)
        expect(page.locator("h1")).to_have_text("Sign in")
    r = httpx.get(web.base + "/ui/fragments/traces", headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["hx-redirect"] == "/login"


def test_bad_key_shows_an_error_and_sets_no_cookie(web: Web, page: Page) -> None:
    """A wrong key re-renders the form with an error; no session cookie is set."""
    _login(page, web, "sk-llmops-not-a-real-key")
    expect(page.locator(".alert-error")).to_contain_text("not accepted")
    assert "/login" in page.url
    assert not [c for c in page.context.cookies() if c["name"] == "llmops_key"]
    forged = httpx.post(web.base + "/login", data={"key": web.server.key}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "llmops_key" not in forged.cookies


def test_login_lands_on_home_with_a_working_quick_start(web: Web, page: Page, console_errors: list[str]) -> None:
    """Signing in sets an HttpOnly SameSite=Strict cookie; home shows a snippet for this server, the signed-in
    key's name but never its secret, the models and recent traces."""
    _login(page, web, web.server.key, next_path="/")
    page.wait_for_url(web.base + "/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "llmops_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    snippet = page.locator("#snippet-python")
    expect(snippet).to_contain_text(f'base_url="{web.base}/v1"')
    expect(snippet).to_contain_text('model="local"')
    page.click("[data-tab=env]")
    expect(page.locator("#snippet-env")).to_contain_text(f"OPENAI_BASE_URL={web.base}/v1")
    expect(page.locator("#snippet-env")).to_contain_text("OPENAI_API_KEY=")
    page.click("[data-tab=curl]")
    expect(page.locator("#snippet-curl")).to_contain_text(f"curl {web.base}/v1/chat/completions")
    expect(page.locator(".key-name")).to_have_text("admin")
    expect(page.locator(".project-name")).to_have_text("default")
    expect(page.locator(".model-list")).to_contain_text("local-embed")
    assert web.server.key not in page.content()
    expect(page.locator(".recent .trace-row")).to_have_count(5)
    page.click("[data-tab=python]")
    web.shot(page, "home")
    assert console_errors == []


def test_traces_list_updates_live_and_filters(web: Web, signed_in: Page, console_errors: list[str]) -> None:
    """A call made while /traces is open shows up without a reload; filters and the cursor pager work."""
    page = signed_in
    page.goto(web.base + "/traces")
    expect(page.locator("h1")).to_have_text("Traces")
    chat_row = page.locator(f'tr[data-trace-id="{web.traffic.chat_trace_id}"]')
    expect(chat_row).to_contain_text("e2e-alice")
    expect(chat_row).to_contain_text("e2e-session-1")
    expect(chat_row.locator(".badge-ok")).to_have_text("ok")
    expect(chat_row).to_contain_text(re.compile(r"\d+ / \d+"))

    resp = web.openai().embeddings.with_raw_response.create(
        model="local-embed", input="live", extra_headers={"x-llmops-user": "e2e-live"}
    )
    live_row = page.locator(f'tr[data-trace-id="{resp.headers["x-llmops-trace-id"]}"]')
    expect(live_row).to_contain_text("e2e-live", timeout=WAIT_MS)
    web.shot(page, "traces", full_page=False)

    page.goto(web.base + "/traces?status=error")
    expect(page.locator(".trace-row")).to_have_count(1)
    expect(page.locator(".trace-row")).to_contain_text("agent plan-trip")

    page.goto(f"{web.base}/traces?user={web.traffic.pager_user}")
    expect(page.locator(".trace-row")).to_have_count(50)
    page.click("a.next-page")
    expect(page.locator(".trace-row")).to_have_count(web.traffic.pager_count - 50)
    assert "cursor=" in page.url and f"user={web.traffic.pager_user}" in page.url
    assert console_errors == []


def test_trace_detail_shows_messages_tokens_and_tree(web: Web, signed_in: Page, console_errors: list[str]) -> None:
    """Clicking a chat trace opens its detail: the user's message and the model's answer as bubbles, tokens,
    timings and the attributes table."""
    page = signed_in
    page.goto(web.base + "/traces")
    page.locator(f'tr[data-trace-id="{web.traffic.chat_trace_id}"] a.row-link').click()
    page.wait_for_url(f"{web.base}/traces/{web.traffic.chat_trace_id}")
    expect(page.locator("#trace-id")).to_have_text(web.traffic.chat_trace_id)
    expect(page.locator(".span-row")).to_have_count(1)
    panel = page.locator(".span-panel.active")
    expect(panel.locator(".role-user .msg-text")).to_have_text("Say hi.")
    expect(panel.locator(".role-assistant .msg-text")).not_to_be_empty()
    expect(panel.locator(".span-tokens")).to_have_text(re.compile(r"[1-9]\d* / [1-9]\d*"))
    expect(panel).to_contain_text("Time to first token")
    panel.locator(".attributes summary").click()
    expect(panel.locator(".kv")).to_contain_text("gen_ai.usage.input_tokens")
    web.shot(page, "trace-chat")
    assert console_errors == []


def test_agent_trace_tree_attempts_and_tool_calls(web: Web, signed_in: Page) -> None:
    """A nested trace renders as an indented tree on a timeline; spans are selectable; failed attempts,
    tool calls and errors show."""
    page, ids = signed_in, web.traffic.agent_span_ids
    page.goto(f"{web.base}/traces/{web.traffic.agent_trace_id}")
    rows = page.locator(".span-row")
    expect(rows).to_have_count(3)
    pads = [
        rows.nth(i).locator(".wf-name").evaluate("e => parseInt(getComputedStyle(e).paddingLeft)") for i in range(3)
    ]
    assert pads[0] < pads[1] < pads[2]
    bars = [rows.nth(i).locator(".bar").bounding_box() for i in range(3)]
    assert all(b and b["width"] > 0 for b in bars)
    assert bars[2]["x"] > bars[1]["x"] > bars[0]["x"] - 1  # type: ignore[index]

    page.locator(f'.span-row[data-span="{ids["llm"]}"]').click()
    panel = page.locator(f'[data-panel-span="{ids["llm"]}"]')
    expect(panel).to_be_visible()
    expect(page.locator(f'[data-panel-span="{ids["agent"]}"]')).to_be_hidden()
    expect(panel.locator(".attempts")).to_contain_text("primary-gpt")
    expect(panel.locator(".attempts")).to_contain_text("504")
    expect(panel.locator(".tool")).to_contain_text("get_weather")
    expect(panel.locator(".tool")).to_contain_text('"city": "Paris"')
    expect(panel.locator(".role-system")).to_contain_text("You plan trips.")
    expect(panel).to_contain_text("$0.000123")
    web.shot(page, "trace-agent")

    page.locator(f'.span-row[data-span="{ids["tool"]}"]').click()
    expect(page.locator(f'[data-panel-span="{ids["tool"]}"] .alert-error')).to_contain_text("unreachable")


def test_recorded_content_is_escaped_not_executed(web: Web, signed_in: Page) -> None:
    """Hostile input and model output are shown as text; nothing in them runs."""
    page = signed_in
    page.goto(f"{web.base}/traces/{web.traffic.xss_trace_id}")
    expect(page.locator(".role-user .msg-text")).to_have_text(XSS_INPUT)
    expect(page.locator(".role-assistant .msg-text")).to_have_text(XSS_OUTPUT)
    page.locator(".attributes summary").click()
    expect(page.locator(".kv")).to_contain_text(XSS_OUTPUT)
    assert page.locator(".chat img, .chat script").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.goto(f"{web.base}/traces/{web.traffic.agent_trace_id}#span-{web.traffic.agent_span_ids['llm']}")
    expect(page.locator(".span-panel.active .role-assistant")).to_contain_text(XSS_OUTPUT)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_dashboard_draws_charts_from_metrics(web: Web, signed_in: Page, console_errors: list[str]) -> None:
    """The dashboard draws four Chart.js charts with the recorded requests, and a per-model table; the range
    selector switches bucket sizes."""
    page = signed_in
    page.goto(web.base + "/dashboard?range=1h")
    for cid in ("chart-requests", "chart-tokens", "chart-latency", "chart-cost"):
        page.wait_for_function(f"() => window.Chart && Chart.getChart(document.getElementById('{cid}'))")
    requests = page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-requests')).data.datasets"
        ".flatMap(d => d.data).reduce((a, b) => a + b, 0)"
    )
    assert requests >= 3
    size = page.evaluate("() => { const c = document.getElementById('chart-tokens'); return [c.width, c.height]; }")
    assert size[0] > 100 and size[1] > 100
    table = page.locator("table.by-model")
    expect(table).to_contain_text("local-embed")
    expect(table).to_contain_text("local")
    expect(page.locator("#total-requests")).not_to_have_text("0")
    web.shot(page, "dashboard")

    page.click(".segmented >> text=7d")
    page.wait_for_url(re.compile(r"range=7d"))
    page.wait_for_function("() => Chart.getChart(document.getElementById('chart-requests'))")
    labels = page.evaluate("() => Chart.getChart(document.getElementById('chart-requests')).data.labels.length")
    assert labels == 168
    assert console_errors == []


def test_unknown_trace_and_page_are_404_pages(web: Web, signed_in: Page) -> None:
    """Unknown traces and paths get the HTML 404 page, inside the layout."""
    page = signed_in
    resp = page.goto(f"{web.base}/traces/{'0' * 32}")
    assert resp is not None and resp.status == 404
    expect(page.locator("h1")).to_have_text("Nothing here")
    resp = page.goto(f"{web.base}/no/such/page")
    assert resp is not None and resp.status == 404
    web.shot(page, "not-found")


def test_sign_out_clears_the_session(web: Web, page: Page) -> None:
    """Sign out drops the cookie; pages redirect to the login form again."""
    _login(page, web, web.server.key, next_path="/traces")
    page.wait_for_url(web.base + "/traces")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/login"))
    web.shot(page, "login")
    page.goto(web.base + "/traces")
    assert "/login" in page.url


def test_pages_work_without_the_npm_scripts(web: Web, signed_in: Page) -> None:
    """If htmx and Chart.js are unavailable the pages still render; the dashboard shows its data table."""
    page = signed_in
    page.route("**/static/vendor/**", lambda route: route.abort())
    page.goto(web.base + "/dashboard?range=1h")
    expect(page.locator("#series-table")).to_have_attribute("open", "")
    expect(page.locator("#charts")).to_be_hidden()
    expect(page.locator("#series-table tbody tr").first).not_to_contain_text("No requests")
    page.goto(web.base + "/traces")
    expect(page.locator(f'tr[data-trace-id="{web.traffic.chat_trace_id}"]')).to_be_visible()
