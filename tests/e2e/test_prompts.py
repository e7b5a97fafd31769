"""Prompt pages in headless Chromium: list, detail with versions, diff and label history, moving labels (a
non-admin key is refused on `production` with a clear message), and the playground running two versions side
by side on the embedded `local` model (each run traced)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import WAIT_MS, Web

pytestmark = pytest.mark.browser
NAME = "e2e-greeter"


@dataclass
class Prompts:
    dev_key: str


def _spec(system: str) -> dict[str, object]:
    return {
        "type": "chat",
        "model": "local",
        "params": {"max_tokens": 4, "temperature": 0},
        "variables": {"who": "string", "tone": {"type": "string", "default": "warm"}},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Greet {{ who }}."}],
        "description": "Greets a visitor",
    }


@pytest.fixture(scope="module")
def prompts(web: Web) -> Prompts:
    with web.server.client() as api:
        if api.get(f"/api/prompts/{NAME}").status_code == 404:
            api.post("/api/prompts", json={"name": NAME, **_spec("You are {{ tone }}."), "message": "first"})
            api.post(f"/api/prompts/{NAME}/versions", json={**_spec("Be very {{ tone }}."), "message": "stronger"})
            api.put(f"/api/prompts/{NAME}/labels/production", json={"version": 1})
    dev = web.server.services.projects.create_key("default", "e2e-dev")
    return Prompts(dev.secret)


@pytest.fixture
def dev_page(web: Web, browser: Browser, prompts: Prompts) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    ctx.add_cookies([{"name": "llmops_key", "value": prompts.dev_key, "url": web.base}])
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def test_list_detail_and_diff(web: Web, prompts: Prompts, signed_in: Page, console_errors: list[str]) -> None:
    """The list shows the prompt with its labels; its page lists versions, labels and history; `diff` shows the
    changed system line removed and added."""
    page = signed_in
    page.goto(web.base + "/prompts")
    row = page.locator(f'tr[data-prompt="{NAME}"]')
    expect(row).to_contain_text("chat")
    expect(row).to_contain_text("production v1")
    expect(row).to_contain_text("latest v2")
    row.locator("a.row-link").click()
    page.wait_for_url(f"{web.base}/prompts/{NAME}")
    expect(page.locator(".version-row")).to_have_count(2)
    expect(page.locator('.label-row[data-label="production"]')).to_contain_text("protected")
    expect(page.locator("#version-file")).to_contain_text("Be very {{ tone }}.")
    expect(page.locator(".history-row").first).to_contain_text("production")
    page.locator('.version-row[data-version="2"] a.diff-prev').click()
    expect(page.locator("#diff .dl-del")).to_have_text("-You are {{ tone }}.")
    expect(page.locator("#diff .dl-add")).to_have_text("+Be very {{ tone }}.")
    web.shot(page, "prompt-detail")
    assert console_errors == []


def test_moving_labels(web: Web, prompts: Prompts, signed_in: Page, dev_page: Page) -> None:
    """A label move through the form updates the labels card in place; a non-admin key is refused on the
    protected `production` label with a message saying so, and nothing moves."""
    page = signed_in
    page.goto(f"{web.base}/prompts/{NAME}")
    page.fill("#move-label", "staging")
    page.select_option("#move-version", "2")
    page.click(".move-form button[type=submit]")
    expect(page.locator("#labels .alert-ok")).to_contain_text("staging → v2")
    expect(page.locator('.label-row[data-label="staging"] .label-target')).to_have_text("v2")

    dev_page.goto(f"{web.base}/prompts/{NAME}")
    dev_page.fill("#move-label", "production")
    dev_page.select_option("#move-version", "2")
    dev_page.click(".move-form button[type=submit]")
    expect(dev_page.locator("#labels .alert-error")).to_contain_text("protected: moving it needs an admin key")
    expect(dev_page.locator('.label-row[data-label="production"] .label-target')).to_have_text("v1")
    web.shot(dev_page, "prompt-label-refused", full_page=False)
    api = httpx.get(f"{web.base}/api/prompts/{NAME}/labels", headers=web.server.headers())
    assert {lb["label"]: lb["version"] for lb in api.json()["data"]}["production"] == 1


def test_playground_runs_two_versions_side_by_side(
    web: Web, prompts: Prompts, signed_in: Page, console_errors: list[str]
) -> None:
    """v2 and v1 run on `local` in two columns, each with output, latency, tokens, cost and a trace link."""
    page = signed_in
    page.goto(f"{web.base}/prompts/{NAME}/playground")
    page.fill("#var-who", "Ada")
    page.select_option("#version-b", "1")
    page.click("#run")
    results = page.locator("#results .result")
    expect(results).to_have_count(2, timeout=60_000)
    for i, version in enumerate(("v2", "v1")):
        card = results.nth(i)
        expect(card.locator(".card-title")).to_contain_text(version)
        expect(card.locator(".latency")).to_have_text(re.compile(r"^[\d.]+ m?s$"))
        expect(card.locator(".tokens")).not_to_have_text("— / —")
        expect(card.locator(".cost")).not_to_be_empty()
        card.locator("details.rendered summary").click()
        expect(card.locator(".role-user .msg-text")).to_have_text("Greet Ada.")
    web.shot(page, "prompt-playground")
    trace_href = str(results.nth(0).locator("a.trace-link").get_attribute("href"))
    web.server.flush()
    span = httpx.get(web.base + "/api" + trace_href, headers=web.server.headers()).json()["spans"][0]
    assert (span["attributes"]["llmops.prompt.name"], span["attributes"]["llmops.prompt.version"]) == (NAME, 2)
    assert span["session_id"] == "playground"
    page.goto(web.base + trace_href)
    expect(page.locator(".span-row")).to_have_count(1)
    web.shot(page, "playground-trace")
    assert console_errors == []
