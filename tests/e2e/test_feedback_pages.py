"""Sessions, users, scores on the trace page, search and the dashboard's score chart, in headless Chromium."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from llmops.tracing import Span
from tests.e2e.conftest import XSS_OUTPUT, Web

pytestmark = pytest.mark.browser


@dataclass
class Conversation:
    session: str
    user: str
    word: str  # a word only this conversation's first question contains
    trace_ids: list[str]


def _turn(web: Web, c: Conversation, start_ns: int, question: str, answer: str) -> Span:
    project_id = web.server.services.bootstrap_key.key.project_id  # type: ignore[union-attr]
    return Span(
        trace_id=secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        project_id=project_id,
        name="chat local",
        kind="llm",
        start_ns=start_ns,
        end_ns=start_ns + 50_000_000,
        operation="chat",
        request_model="local",
        input_tokens=4,
        output_tokens=3,
        cost_usd=0.0002,
        user_id=c.user,
        session_id=c.session,
        attributes={"tag.tags": ["e2e"]},
        input=[{"role": "user", "parts": [{"type": "text", "content": question}]}],
        output=[{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}],
    )


@pytest.fixture(scope="module")
def conversation(web: Web) -> Conversation:
    """A two-turn conversation two hours ago (older than the other e2e traffic), scored through the API."""
    suffix = secrets.token_hex(4)
    c = Conversation(f"e2e-conv-{suffix}", f"e2e-bob-{suffix}", f"zebra{suffix}", [])
    t0 = time.time_ns() - 2 * 3_600 * 10**9
    turns = [
        _turn(web, c, t0, f"Tell me about the {c.word}", "Zebras are striped."),
        _turn(web, c, t0 + 10**9, "And their speed?", XSS_OUTPUT),
    ]
    web.record(*turns)
    c.trace_ids = [t.trace_id for t in turns]
    with web.server.client() as api:
        for body in (
            {"trace_id": c.trace_ids[0], "name": "helpfulness", "value": 0.8, "source": "llm_judge"},
            {"trace_id": c.trace_ids[1], "name": "thumbs", "value": False, "comment": "wrong answer"},
        ):
            assert api.post("/api/scores", json=body).status_code == 201
    return c


def test_session_page_renders_the_conversation_as_chat(
    web: Web, conversation: Conversation, signed_in: Page, console_errors: list[str]
) -> None:
    """Sessions are in the nav; the list links to a session whose page shows every turn in order as user and
    assistant bubbles, with each turn's scores; hostile output stays text."""
    page, c = signed_in, conversation
    page.goto(web.base + "/")
    page.click("nav >> text=Sessions")
    page.wait_for_url(web.base + "/sessions")
    row = page.locator(f'tr[data-session-id="{c.session}"]')
    expect(row).to_contain_text(c.user)
    expect(row.locator("td").nth(2)).to_have_text("2")
    row.locator("a.row-link").click()
    page.wait_for_url(f"{web.base}/sessions/{c.session}")
    turns = page.locator(".turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0).locator(".role-user .msg-text")).to_have_text(f"Tell me about the {c.word}")
    expect(turns.nth(0).locator(".role-assistant .msg-text")).to_have_text("Zebras are striped.")
    expect(turns.nth(0)).to_contain_text("helpfulness")
    expect(turns.nth(1).locator(".role-user .msg-text")).to_have_text("And their speed?")
    expect(turns.nth(1).locator(".role-assistant .msg-text")).to_have_text(XSS_OUTPUT)
    expect(turns.nth(1).locator(".score")).to_contain_text("thumbs")
    assert page.evaluate("typeof window.__xss") == "undefined"
    web.shot(page, "session")
    assert console_errors == []


def test_users_list_and_detail(web: Web, conversation: Conversation, signed_in: Page) -> None:
    """The users list shows requests and feedback per user and links to the user's page with totals, feedback
    and sessions."""
    page, c = signed_in, conversation
    page.goto(web.base + "/users")
    row = page.locator(f'tr[data-user-id="{c.user}"]')
    expect(row.locator("td").nth(1)).to_have_text("2")
    expect(row).to_contain_text("thumbs")
    row.locator("a.row-link").click()
    page.wait_for_url(f"{web.base}/users/{c.user}")
    expect(page.locator("#user-requests")).to_have_text("2")
    expect(page.locator(".user-feedback")).to_contain_text("helpfulness")
    expect(page.locator(f'a[href="/sessions/{c.session}"]')).to_be_visible()
    expect(page.locator(".trace-row")).to_have_count(2)
    web.shot(page, "user")


def test_trace_rows_link_to_sessions_and_search_finds_words(
    web: Web, conversation: Conversation, signed_in: Page
) -> None:
    """Full-text search on the traces page finds the one trace with the word; its row links to the session."""
    page, c = signed_in, conversation
    page.goto(web.base + "/traces")
    page.fill("#f-q", c.word)
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"**q={c.word}**")
    expect(page.locator(".trace-row")).to_have_count(1)
    expect(page.locator(".trace-row")).to_have_attribute("data-trace-id", c.trace_ids[0])
    export = httpx.get(
        web.base + page.locator(".export-link").get_attribute("href"), cookies={"llmops_key": web.server.key}
    )  # type: ignore[operator]
    assert [line for line in export.text.splitlines() if line] and c.trace_ids[0] in export.text
    assert c.trace_ids[1] not in export.text
    page.locator(".trace-row .session-link").click()
    page.wait_for_url(f"{web.base}/sessions/{c.session}")


def test_reviewer_adds_a_score_on_the_trace_page(web: Web, conversation: Conversation, signed_in: Page) -> None:
    """The trace page lists its scores; a reviewer's label posted from the form shows up and is stored as
    source=human."""
    page, c = signed_in, conversation
    page.goto(f"{web.base}/traces/{c.trace_ids[0]}")
    expect(page.locator(".scores-table")).to_contain_text("helpfulness")
    page.fill("#score-name", "review")
    page.fill("#score-value", "needs-citation")
    page.fill("#score-comment", "no source given")
    page.click(".score-form button[type=submit]")
    page.wait_for_url(f"**/traces/{c.trace_ids[0]}#scores")
    expect(page.locator(".scores-table")).to_contain_text("needs-citation")
    with web.server.client() as api:
        scores = api.get("/api/scores", params={"trace_id": c.trace_ids[0], "name": "review"}).json()["data"]
    assert [(s["value"], s["source"], s["comment"]) for s in scores] == [("needs-citation", "human", "no source given")]
    web.shot(page, "trace-scores")


def test_dashboard_charts_mean_scores(web: Web, conversation: Conversation, signed_in: Page) -> None:
    """The dashboard has a Scores chart with one line per score name and a table of means."""
    page = signed_in
    page.goto(web.base + "/dashboard?range=1h")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-scores'))")
    names = page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-scores')).data.datasets.map(d => d.label)"
    )
    assert {"helpfulness", "thumbs"} <= set(names)
    expect(page.locator("table.by-score")).to_contain_text("helpfulness")
    web.shot(page, "dashboard-scores")


def test_new_pages_need_sign_in_and_hide_unknown_ids(web: Web, page: Page, signed_in: Page) -> None:
    """Signed out, the new pages redirect to /login; signed in, unknown sessions and users are 404 pages."""
    anonymous = httpx.Client(base_url=web.base, follow_redirects=False)
    for path in ("/sessions", "/users", "/sessions/x", "/users/x"):
        assert anonymous.get(path).headers["location"].startswith("/login?next=")
    for path in ("/sessions/no-such-session", "/users/no-such-user"):
        resp = signed_in.goto(web.base + path)
        assert resp is not None and resp.status == 404
