"""The keyboard review flow and the calibration page in headless Chromium against a real server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import RunningServer
from tests.evals_review.support import chat_span, record

pytestmark = pytest.mark.browser


def _setup(server: RunningServer) -> tuple[str, list[dict[str, str]]]:
    spans = [chat_span(server, f"question {i}", f"<b>answer</b> {i}", start_ns=None) for i in range(3)]
    record(server, *spans)
    with server.client() as c:
        c.post("/api/score-configs", json={"name": "correct", "data_type": "boolean"}).raise_for_status()
        body = {"name": "tone", "data_type": "categorical", "categories": ["polite", "neutral", "rude"]}
        c.post("/api/score-configs", json=body).raise_for_status()
        ids = [s.trace_id for s in spans]
        r = c.post("/api/review-queues", json={"name": "kb", "configs": ["correct", "tone"], "trace_ids": ids})
        r.raise_for_status()
        qid = r.json()["queue_id"]
        return qid, c.get(f"/api/review-queues/{qid}/items").json()["data"]


def test_keyboard_review_flow(server: RunningServer, page: Page, console_errors: list[str]) -> None:
    """Number keys pick values, Enter submits and moves to the next pending item, s skips, j/k move; a typed
    correction is kept; the labels are the queue's recorded state and human trace scores; no console errors."""
    qid, items = _setup(server)
    page.context.add_cookies([{"name": "llmops_key", "value": server.key, "url": server.base_url}])
    page.goto(f"{server.base_url}/review")
    page.get_by_role("link", name="kb").click()
    expect(page.locator("#review")).to_have_attribute("data-item-id", items[0]["item_id"])
    expect(page.locator(".review-output")).to_contain_text("<b>answer</b> 0")  # escaped, shown as text
    page.keyboard.press("1")  # correct = true
    page.keyboard.press("2")  # tone = neutral
    expect(page.locator('input[name="label.tone"][value="neutral"]')).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#review")).to_have_attribute("data-item-id", items[1]["item_id"])
    page.keyboard.press("s")
    expect(page.locator("#review")).to_have_attribute("data-item-id", items[2]["item_id"])
    page.keyboard.press("k")
    expect(page.locator("#review")).to_have_attribute("data-item-id", items[1]["item_id"])
    expect(page.locator("#item-status")).to_have_text("skipped")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#review")).to_have_attribute("data-item-id", items[2]["item_id"])
    page.locator("#correction").fill("a better answer")
    page.keyboard.press("Escape")
    page.keyboard.press("2")  # correct = false
    page.keyboard.press("1")  # tone = polite
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"item="))
    expect(page.locator("#item-status")).to_have_text("done")
    with server.client() as c:
        got = {i["item_id"]: i for i in c.get(f"/api/review-queues/{qid}/items").json()["data"]}
        first, second, third = (got[i["item_id"]] for i in items)
        assert (first["status"], first["labels"]) == ("done", {"correct": True, "tone": "neutral"})
        assert second["status"] == "skipped"
        assert (third["labels"], third["correction"]) == ({"correct": False, "tone": "polite"}, "a better answer")
        human = c.get("/api/scores", params={"source": "human", "name": "tone"}).json()["data"]
        assert sorted(s["value"] for s in human) == ["neutral", "polite"]
    assert console_errors == []


def test_calibration_page_shows_the_matrix(server: RunningServer, page: Page, console_errors: list[str]) -> None:
    """Labels from the queue and a judge's scores on the same traces render κ, n and the confusion matrix."""
    qid, items = _setup(server)
    with server.client() as c:
        for item, human, judge in zip(items, [True, False, True], [1, 0, 0], strict=True):
            r = c.post(f"/api/review-queues/{qid}/items/{item['item_id']}", json={"labels": {"correct": human}})
            r.raise_for_status()
            body = {"trace_id": item["trace_id"], "name": "judge-correct", "value": judge, "source": "llm_judge"}
            c.post("/api/scores", json=body).raise_for_status()
    page.context.add_cookies([{"name": "llmops_key", "value": server.key, "url": server.base_url}])
    page.goto(f"{server.base_url}/review/calibration?judge=judge-correct&config=correct")
    expect(page.locator("#cal-n")).to_have_text("3")
    # human F,T,T vs judge F,T,F: p_o = 2/3, p_e = (1/3)(2/3) + (2/3)(1/3) = 4/9, κ = (2/9)/(5/9) = 0.4
    expect(page.locator("#cal-kappa")).to_have_text("0.400")
    expect(page.locator("#confusion tbody tr").nth(1).locator("td")).to_have_text(["1", "1"])
    assert console_errors == []


def test_queue_created_from_the_page(server: RunningServer, page: Page, console_errors: list[str]) -> None:
    """The /review form builds a queue from a trace filter and a sample size and opens it; a bad filter is
    reported on the page."""
    _setup(server)  # three traces of model `m`, two configs
    record(server, chat_span(server, "elsewhere", "x", request_model="other"))
    page.context.add_cookies([{"name": "llmops_key", "value": server.key, "url": server.base_url}])
    page.goto(f"{server.base_url}/review")
    page.fill('input[name="name"]', "from-form")
    page.select_option('select[name="configs"]', ["correct"])
    page.fill('input[name="filter"]', "score.x=gt:abc")
    page.click("text=Create queue")
    expect(page.locator("#new-queue .alert-error")).to_contain_text("needs a number")
    page.fill('input[name="name"]', "from-form")
    page.select_option('select[name="configs"]', ["correct"])
    page.fill('input[name="filter"]', "model=m")
    page.fill('input[name="sample"]', "2")
    page.click("text=Create queue")
    expect(page.locator("h1")).to_have_text("from-form")
    expect(page.locator(".review-item-link")).to_have_count(2)
    assert console_errors == []
