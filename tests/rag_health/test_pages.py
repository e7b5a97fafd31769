"""The corpus-health page through a real server: contradictions side by side with the claims and the differing
values highlighted, duplicates, stale documents, health scores, chart, background state; resolve / dismiss /
reopen by form; "check now"; another project's collection is a 404; cross-site posts are refused."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from tests.conftest import RunningServer
from tests.rag_health.test_api import _docs

DOCS = ["pet-policy.md", "office-guide-berlin.md", "sla.md", "status-page-faq.md", "webhooks.md",
        "webhooks-partner.md", "vpn-setup-2022.md"]  # fmt: skip


def _page(srv: RunningServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, cookies={"llmops_key": key or srv.key}, timeout=60)


def _article(html: str, finding_id: str) -> str:
    start = html.index(f'id="finding-{finding_id}"')
    return html[start : html.index("</article>", start)]


def test_health_page_shows_findings_and_acts_on_them(server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory(rag_health={"background": False})
    with srv.client() as api, _page(srv) as ui:
        api.post("/api/rag/collections", json={"name": "kb"})
        assert api.post("/api/rag/kb/documents", json={"documents": _docs(DOCS)}).status_code == 200
        findings = api.get("/api/rag/kb/findings").json()["findings"]
        sla = next(f for f in findings if {d["source"] for d in f["documents"]} == {"sla.md", "status-page-faq.md"})
        assert sla["subtype"] == "numeric_mismatch"

        assert 'class="chip-link corpus-health-link" href="/rag/kb/health"' in ui.get("/rag/kb").text  # linked
        r = ui.get("/rag/kb/health")
        assert r.status_code == 200
        html = r.text
        article = _article(html, sla["finding_id"])
        assert article.count('class="conflict-side"') == 2  # side by side
        assert "sla.md" in article and "status-page-faq.md" in article
        marks = re.findall(r'<mark class="claim">(.*?)</mark>', article, re.S)
        assert len(marks) == 2  # each passage shown in its chunk with the claim marked
        values = re.findall(r'<strong class="value">(.*?)</strong>', article)
        assert "99.9%" in values and "99.5%" in values  # the conflicting values are emphasised
        assert "Differing values" in article
        assert 'findings-duplicate"' in html and "webhooks-partner.md" in html
        stale = next(f for f in findings if f["kind"] == "stale")
        assert "vpn-setup-2022.md" in _article(html, stale["finding_id"])
        assert '<svg class="health-chart"' in html and 'class="bar-contradiction"' in html
        health_rows = re.findall(r'<tr class="health-row" data-document-id="([^"]+)">', html)
        assert set(health_rows) == set(DOCS)
        assert 'class="check-state badge">inline<' in html

        r = ui.post(f"/rag/kb/health/findings/{sla['finding_id']}", data={"action": "resolve", "status": "open"})
        assert r.status_code == 303 and r.headers["location"].startswith("/rag/kb/health?status=open")
        assert (
            api.get("/api/rag/kb/findings", params={"status": "resolved"}).json()["findings"][0]["finding_id"]
            == (sla["finding_id"])
        )
        assert f'id="finding-{sla["finding_id"]}"' not in ui.get("/rag/kb/health").text  # open view hides it
        resolved = ui.get("/rag/kb/health", params={"status": "resolved"}).text
        assert 'value="reopen"' in _article(resolved, sla["finding_id"])
        r = ui.post(f"/rag/kb/health/findings/{sla['finding_id']}", data={"action": "reopen"})
        assert r.status_code == 303
        r = ui.post(f"/rag/kb/health/findings/{sla['finding_id']}", data={"action": "explode"})
        assert r.status_code == 303 and "error=" in r.headers["location"]
        assert "unknown action" in ui.get(r.headers["location"]).text
        assert ui.post("/rag/kb/health/findings/fnd_nope", data={"action": "ignore"}).status_code == 404
        r = ui.post(
            f"/rag/kb/health/findings/{sla['finding_id']}", data={"action": "ignore"},
            headers={"origin": "https://evil.example"},
        )  # fmt: skip
        assert r.status_code == 403
        assert api.get("/api/rag/kb/findings", params={"status": "open"}).json()["findings"]  # still open

        r = ui.post("/rag/kb/health/check")  # inline mode: the check ran before the redirect
        assert r.status_code == 303 and r.headers["location"] == "/rag/kb/health"
        assert ui.get("/rag/nope/health").status_code == 404


def test_check_now_queues_a_background_check_and_other_projects_see_404(
    server_factory: Callable[..., RunningServer],
) -> None:
    srv = server_factory()
    other = srv.services.projects.create_project("other")
    other_key = srv.services.projects.create_key_in(other.project_id, "k", is_admin=True).secret
    with srv.client() as api, _page(srv) as ui, _page(srv, other_key) as stranger:
        api.post("/api/rag/collections", json={"name": "kb"})
        api.post("/api/rag/kb/documents", json={"documents": _docs(DOCS[:2])})
        assert ui.post("/rag/kb/health/check").status_code == 303
        deadline = time.monotonic() + 120
        while (
            api.get("/api/rag/kb/check").json()["state"] != "idle"
            or not api.get("/api/rag/kb/findings").json()["findings"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        html = ui.get("/rag/kb/health").text
        assert 'class="check-state badge">idle<' in html and "last run" in html
        assert stranger.get("/rag/kb/health").status_code == 404
        finding = api.get("/api/rag/kb/findings").json()["findings"][0]
        r = stranger.post(f"/rag/kb/health/findings/{finding['finding_id']}", data={"action": "ignore"})
        assert r.status_code == 404
        assert stranger.post("/rag/kb/health/check").status_code == 404
        assert api.get("/api/rag/kb/findings", params={"status": "ignored"}).json()["findings"] == []
