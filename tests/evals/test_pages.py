"""Eval pages on a real server: the Evals nav link, dataset list/detail with versions, experiment list, run detail
(outputs, scores with reasons, errors, latency, trace links) and the comparison view with its inline SVG charts
(delta per scorer with CI bars, score distributions), all scoped to the signed-in project."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.evals.test_api import _api, _wait_run
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def srv(fake_upstream: FakeUpstream, server_factory: Any) -> RunningServer:
    cfg = fake_config(fake_upstream, {"name": "fake", "deployments": [openai_dep(fake_upstream, "gpt-fake")]})
    return server_factory(cfg)


def _page(srv: RunningServer, path: str, key: str | None = None) -> httpx.Response:
    with httpx.Client(base_url=srv.base_url, cookies={"llmops_key": key or srv.key}, timeout=60) as c:
        return c.get(path, follow_redirects=False)


def test_eval_pages(srv: RunningServer) -> None:
    api = _api(srv)
    items = [{"id": f"q{n}", "input": f"question <{n}>", "expected": f"echo: question <{n}>"} for n in range(12)]
    assert api.post("/api/datasets", json={"name": "qa", "items": items}).status_code == 201
    assert api.post("/api/datasets/qa/items", json={"items": [{"id": "extra", "input": "x"}]}).status_code == 201
    prompt = {"name": "p", "type": "text", "template": "Rephrase: {{ input }}", "variables": {"input": "string"}}
    assert api.post("/api/prompts", json={**prompt, "model": "fake"}).status_code == 201
    runs = []
    for target in ({"model": "fake"}, {"prompt": {"name": "p", "version": 1}}):
        body = {
            "dataset": "qa",
            "version": 1,
            "target": target,
            "scorers": ["exact", {"name": "regex", "pattern": "^echo"}],
        }
        runs.append(_wait_run(api, api.post("/api/experiments", json=body).json()["run_id"]))
    base, cand = runs

    index = _page(srv, "/evals")
    assert index.status_code == 200
    assert 'href="/evals"' in index.text and 'aria-current="page"' in index.text  # the nav link, active
    assert 'href="/evals/datasets/qa"' in index.text and base["run_id"] in index.text and cand["run_id"] in index.text

    ds = _page(srv, "/evals/datasets/qa")
    assert ds.status_code == 200 and "v2" in ds.text and "extra" in ds.text
    assert "question &lt;3&gt;" in ds.text and "<3>" not in ds.text  # escaped
    v1 = _page(srv, "/evals/datasets/qa?version=1")
    assert v1.status_code == 200 and "extra" not in v1.text
    assert _page(srv, "/evals/datasets/qa?version=9").status_code == 404

    run = _page(srv, f"/evals/runs/{base['run_id']}")
    assert run.status_code == 200
    assert len(re.findall(r'class="result-row', run.text)) == 12
    assert "echo: question &lt;0&gt;" in run.text and 'href="/traces/' in run.text

    cmp = _page(srv, f"/evals/compare?runs={base['run_id']},{cand['run_id']}")
    assert cmp.status_code == 200
    assert cmp.text.count('class="eval-chart') == 3  # one delta chart + one distribution per scorer
    assert 'class="delta regression"' in cmp.text  # exact drops 1 -> 0 on every item: a significant regression
    rows = re.findall(r'<tr class="(cmp-regression)?"><td>(\w+)</td>', cmp.text)
    assert rows[0] == ("cmp-regression", "exact")  # regressions listed first
    assert _page(srv, "/evals/compare?runs=nope,other").status_code == 404
    assert _page(srv, "/evals/runs/nope").status_code == 404


def test_eval_pages_are_project_scoped(srv: RunningServer) -> None:
    """Another project's key sees none of this project's datasets or runs (404 on their pages)."""
    api = _api(srv)
    assert api.post("/api/datasets", json={"name": "secret-ds", "items": [{"input": "x"}]}).status_code == 201
    other = srv.services.projects.create_project("other")
    key = srv.services.projects.create_key_in(other.project_id, "k", is_admin=True).secret
    assert "secret-ds" not in _page(srv, "/evals", key).text
    assert _page(srv, "/evals/datasets/secret-ds", key).status_code == 404
    anon = httpx.get(srv.base_url + "/evals", follow_redirects=False)
    assert anon.status_code == 303 and anon.headers["location"].startswith("/login")


def test_eval_forms_build_a_dataset_from_traces_and_start_a_run(srv: RunningServer) -> None:
    """From the UI: items from traces by a filter (a new version with the trace link), an experiment started by
    form (redirect to its run page, which finishes), precise errors for bad JSON, cross-site posts refused."""
    import openai

    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    for q in ("alpha", "beta"):
        client.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": q}], extra_headers={"x-llmops-tags": "ui"}
        )
    srv.flush()
    api = _api(srv)
    assert api.post("/api/datasets", json={"name": "ui-ds"}).status_code == 201
    with httpx.Client(base_url=srv.base_url, cookies={"llmops_key": srv.key}, timeout=60) as web:
        resp = web.post("/evals/datasets/ui-ds/from-traces", data={"filter": "tag=ui", "limit": "10"})
        assert resp.status_code == 303 and resp.headers["location"] == "/evals/datasets/ui-ds"
        page = web.get("/evals/datasets/ui-ds")
        assert "v1" in page.text and "alpha" in page.text and 'href="/traces/' in page.text
        none = web.post("/evals/datasets/ui-ds/from-traces", data={"filter": "tag=nothing-here"})
        assert none.status_code == 303 and "error=" in none.headers["location"]
        foreign = web.post("/evals/datasets/ui-ds/from-traces", data={"filter": "tag=ui"},
                           headers={"origin": "https://evil.example"})  # fmt: skip
        assert foreign.status_code == 403

        bad = web.post("/evals/experiments", data={"dataset": "ui-ds", "target": "{not json"})
        assert bad.status_code == 303 and "target%20must%20be%20JSON" in bad.headers["location"]
        form = {"dataset": "ui-ds", "target": '{"model": "fake"}', "scorers": '["exact"]', "name": "from the form"}
        started = web.post("/evals/experiments", data=form)
        assert started.status_code == 303 and started.headers["location"].startswith("/evals/runs/")
        run_id = started.headers["location"].rsplit("/", 1)[1]
    run = _wait_run(api, run_id)
    assert run["name"] == "from the form" and run["status"] == "done" and run["done"] == 2
    assert api.get(f"/api/experiments/{run_id}").json()["summary"]["scorers"]["exact"]["mean"] == 1.0
