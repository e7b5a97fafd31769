"""The Budgets page: lists the project's budgets with scope, period, limit, spent, reserved, mode and a bar of
spent/limit; an admin creates and deletes budgets from it (same-origin form posts, like the other pages); a plain
key sees the list but cannot change it; the nav links to it; without a key it redirects to the login."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer
from tests.gateway_limits.conftest import PRICED, call_cost, create_budget, priced_config, settled_budget
from tests.support.fake_upstream import FakeUpstream

TEXT = "one two three"
BODY = {"model": PRICED, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 10}


def _page(srv: RunningServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=srv.base_url, cookies={"llmops_key": key or srv.key}, timeout=60, follow_redirects=False
    )


def _row(html: str, budget_id: str) -> str:
    return html[html.index(f'id="budget-{budget_id}"') :].split("</tr>")[0]


def test_budgets_page_lists_creates_and_deletes(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """A $0.1 budget after one call shows its spend, the spent share in the bar and "hard"; the form creates a
    soft tag budget (then listed by the API too); a bad amount comes back as an error on the page; delete removes
    it; a cross-site post is refused."""
    srv = server_factory(config=priced_config(fake_upstream))
    budget = create_budget(srv, name="team cap", limit_usd=0.1, period="day")
    assert srv.client().post("/v1/chat/completions", json=BODY).status_code == 200
    spent = settled_budget(srv, budget["budget_id"])["spent_usd"]
    assert spent == call_cost(TEXT)
    with _page(srv) as web:
        html = web.get("/budgets").text
        assert 'href="/budgets"' in html and 'aria-current="page"' in html
        row = _row(html, budget["budget_id"])
        pct = round(100 * spent / 0.1, 1)
        assert "team cap" in row and "project" in row and "day" in row and "hard" in row
        assert f"width: {pct}%" in row and f"{pct}%" in row
        made = web.post(
            "/budgets",
            data={"name": "tagged", "scope": "tag", "subject": "team-a", "period": "total", "limit_usd": "2.5",
                  "mode": "soft"},
        )  # fmt: skip
        assert made.status_code == 303 and made.headers["location"] == "/budgets"
        listed = {b["name"]: b for b in srv.client().get("/api/budgets").json()["data"]}
        tagged = listed["tagged"]
        assert (tagged["scope"], tagged["subject"], tagged["period"], tagged["limit_usd"], tagged["mode"]) == (
            "tag", "team-a", "total", 2.5, "soft",
        )  # fmt: skip
        assert "soft" in _row(web.get("/budgets").text, tagged["budget_id"])
        bad = web.post("/budgets", data={"name": "x", "limit_usd": "lots"})
        assert bad.status_code == 303 and "error=" in bad.headers["location"]
        assert "limit_usd must be a number" in web.get(bad.headers["location"]).text
        no_subject = web.post("/budgets", data={"name": "x", "scope": "key", "limit_usd": "1"})
        assert "needs a subject" in web.get(no_subject.headers["location"]).text
        cross = web.post(f"/budgets/{tagged['budget_id']}/delete", headers={"origin": "https://evil.example"})
        assert cross.status_code == 403
        gone = web.post(f"/budgets/{tagged['budget_id']}/delete")
        assert gone.status_code == 303
        assert f'id="budget-{tagged["budget_id"]}"' not in web.get("/budgets").text
        assert web.post(f"/budgets/{tagged['budget_id']}/delete").status_code == 404  # gone (or another project's)
    assert srv.client().get(f"/api/budgets/{tagged['budget_id']}").status_code == 404


def test_budgets_page_is_read_only_for_plain_keys_and_needs_a_login(
    server_factory, fake_upstream: FakeUpstream
) -> None:  # type: ignore[no-untyped-def]
    """A plain key sees the budgets but no form or delete button, and its posts change nothing; anonymous
    visitors are sent to the login."""
    srv = server_factory(config=priced_config(fake_upstream))
    budget = create_budget(srv, name="cap", limit_usd=1.0)
    plain = srv.client().post("/api/keys", json={"name": "viewer"}).json()["secret"]
    with _page(srv, plain) as web:
        html = web.get("/budgets").text
        assert f'id="budget-{budget["budget_id"]}"' in html
        assert 'action="/budgets"' not in html and "/delete" not in html
        refused = web.post(f"/budgets/{budget['budget_id']}/delete")
        assert "needs an admin key" in web.get(refused.headers["location"]).text
    assert srv.client().get(f"/api/budgets/{budget['budget_id']}").status_code == 200
    anonymous = httpx.get(srv.base_url + "/budgets", timeout=30, follow_redirects=False)
    assert anonymous.status_code in (302, 303, 307) and "/login" in anonymous.headers["location"]
