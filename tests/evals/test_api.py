"""Datasets and experiments over HTTP, on a real server (``server_factory``) with a fake upstream model.

Proves the issue-5 "done when" flow through the API: gateway traffic -> a dataset built from traces (filter and
single trace) -> two prompt versions run through the gateway (traced, costed) -> compared with significance,
regressions first; plus import/export, versions, bad input, cancel/resume, HTTP targets and review corrections
becoming dataset items.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request

from llmops.core.settings import EvalSettings
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream, serve_in_thread

QUESTIONS = [f"capital of country number {i}" for i in range(14)]


def _api(srv: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {srv.key}"}, timeout=60)


def _wait_run(api: httpx.Client, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = api.get(f"/api/experiments/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {run['status']}")


@pytest.fixture
def srv(fake_upstream: FakeUpstream, server_factory: Any) -> RunningServer:
    cfg = fake_config(fake_upstream, {"name": "fake", "deployments": [openai_dep(fake_upstream, "gpt-fake")]})
    cfg["prices"] = {"gpt-fake": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    return server_factory(cfg, evals=EvalSettings(promotion_gates={"production": "capitals"}))


def _traffic(srv: RunningServer) -> list[str]:
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    ids = []
    for q in QUESTIONS:
        raw = client.chat.completions.with_raw_response.create(
            model="fake", messages=[{"role": "user", "content": q}], extra_headers={"x-llmops-tags": "prod"}
        )
        ids.append(raw.headers["x-llmops-trace-id"])
    srv.flush()
    return ids


def test_done_when_dataset_from_traces_two_prompt_versions_compared(srv: RunningServer) -> None:
    """Traces -> dataset (bulk filter) -> prompt v1 and v2 through the gateway -> comparison: v2 (which rewrites
    the question) is a significant exact-match regression with a CI below 0, listed first; every result keeps
    its gateway trace id and cost; the run pins the dataset version and a fingerprint."""
    trace_ids = _traffic(srv)
    api = _api(srv)
    assert api.post("/api/datasets", json={"name": "capitals", "description": "from prod"}).status_code == 201
    resp = api.post("/api/datasets/capitals/items/from-traces", json={"filter": {"tag": "prod"}, "limit": 100})
    assert resp.status_code == 201, resp.text
    assert resp.json()["added"] == len(QUESTIONS) and resp.json()["version"] == 1
    items = api.get("/api/datasets/capitals/items", params={"limit": 1000}).json()["data"]
    by_q = {i["input"][0]["content"]: i for i in items}
    assert set(by_q) == set(QUESTIONS)
    first = by_q[QUESTIONS[0]]
    assert first["input"] == [{"role": "user", "content": QUESTIONS[0]}]
    assert first["expected"] == f"echo: {QUESTIONS[0]}"
    assert first["source"]["trace_id"] in trace_ids and first["source"]["span_id"]

    prompt = {"name": "answer", "type": "text", "template": "{{ input }}", "variables": {"input": "string"}}
    assert api.post("/api/prompts", json={**prompt, "model": "fake"}).status_code == 201, "prompt v1"
    v2 = {**prompt, "template": "Answer in French: {{ input }}", "model": "fake"}
    assert api.post("/api/prompts/answer/versions", json=v2).status_code == 201
    runs = []
    for version in (1, 2):
        body = {
            "dataset": "capitals",
            "target": {"prompt": {"name": "answer", "version": version}, "model": "fake"},
            "scorers": ["exact"],
            "concurrency": 4,
            "run_id": f"prompt:answer@{version}/capitals",  # the promotion gate's run name
        }
        resp = api.post("/api/experiments", json=body)
        assert resp.status_code == 202, resp.text
        runs.append(_wait_run(api, resp.json()["run_id"]))
    r1, r2 = runs
    assert r1["status"] == "done" and r1["done"] == len(QUESTIONS) and r1["errors"] == 0
    assert r1["dataset_version"] == 1 and r1["fingerprint"] != r2["fingerprint"]
    detail = api.get(f"/api/experiments/{r1['run_id']}").json()
    assert detail["summary"]["scorers"]["exact"]["mean"] == 1.0
    assert detail["summary"]["cost_usd"] > 0
    res = detail["results"][0]
    assert res["trace_id"] and res["latency_ms"] > 0 and res["tokens"] > 0
    srv.flush()
    trace = api.get(f"/api/traces/{res['trace_id']}").json()  # the target call is a real, traced gateway call
    assert trace["trace_id"] == res["trace_id"]

    cmp = api.get("/api/experiments/compare", params={"runs": f"{r1['run_id']},{r2['run_id']}"}).json()
    top = cmp["comparisons"][0]
    assert top["scorer"] == "exact" and top["regression"] and top["significant"]
    assert top["delta"] == -1.0 and top["ci_high"] < 0 and top["p_value"] < 0.05 and top["n"] == len(QUESTIONS)
    assert cmp["items"][0]["worst_delta"] == -1.0
    assert [r["run_id"] for r in cmp["runs"]] == [r1["run_id"], r2["run_id"]]
    assert cmp["runs"][1]["summary"]["latency_ms"]["p50"] is not None

    assert api.put("/api/prompts/answer/labels/production", json={"version": 1}).status_code == 200
    refused = api.put("/api/prompts/answer/labels/production", json={"version": 2})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "promotion_gate_failed"
    assert "significant regression vs version 1" in refused.json()["error"]["message"]

    one = api.post("/api/datasets/capitals/items/from-traces", json={"trace_id": trace_ids[0]})
    assert one.status_code == 201 and one.json()["version"] == 2 and one.json()["item_count"] == len(QUESTIONS) + 1
    old = api.get("/api/datasets/capitals", params={"version": 1}).json()
    assert old["item_count"] == len(QUESTIONS)
    assert [v["version"] for v in old["versions"]] == [2, 1]


def test_import_export_and_bad_input(srv: RunningServer) -> None:
    """JSONL/CSV import appends a version; errors name the line; export round-trips; unknown dataset is 404;
    bad targets/scorers are 400 with the envelope."""
    api = _api(srv)
    assert api.post("/api/datasets", json={"name": "ds"}).status_code == 201
    assert api.post("/api/datasets", json={"name": "ds"}).status_code == 409
    jsonl = '{"id": "a", "input": "hi", "expected": "echo: hi"}\n{"id": "b", "input": "yo"}\n'
    resp = api.post("/api/datasets/ds/import", content=jsonl)
    assert resp.status_code == 201 and resp.json()["item_count"] == 2
    bad = api.post("/api/datasets/ds/import", content='{"input": "ok"}\n{not json\n')
    assert bad.status_code == 400 and "line 2" in bad.json()["error"]["message"]
    csv_bad = api.post("/api/datasets/ds/import", params={"format": "csv"}, content="input,expected\nx,y,z\n")
    assert csv_bad.status_code == 400 and "line 2" in csv_bad.json()["error"]["message"]
    resp = api.post("/api/datasets/ds/import", params={"format": "csv"}, content="id,input,expected\nc,hey,echo: hey\n")
    assert resp.status_code == 201 and resp.json()["version"] == 2
    exported = api.get("/api/datasets/ds/export").text.splitlines()
    assert len(exported) == 3 and '"id":"c"' in exported[2]
    assert "a,hi,echo: hi" in api.get("/api/datasets/ds/export", params={"format": "csv", "version": 1}).text
    assert api.get("/api/datasets/nope").status_code == 404
    assert api.post("/api/datasets/nope/items", json={"items": [{"input": "x"}]}).status_code == 404
    base = {"dataset": "ds", "scorers": ["exact"]}
    for target, word in (
        ({"python": "os:getcwd"}, "in-process"),
        ({"http": {"url": "ftp://x"}}, "http"),
        ({"prompt": {"name": "p", "version": 0}}, "version"),
        ({"sql": 1}, "target"),
    ):
        resp = api.post("/api/experiments", json={**base, "target": target})
        assert resp.status_code == 400 and word in resp.json()["error"]["message"], (target, resp.text)
    resp = api.post("/api/experiments", json={**base, "target": {"model": "fake"}, "scorers": ["no-such-scorer"]})
    assert resp.status_code == 400 and "scorers[0]" in resp.json()["error"]["message"]
    resp = api.get("/api/experiments/compare", params={"runs": "only-one"})
    assert resp.status_code == 400
    assert api.get("/api/experiments/no-such-run").status_code == 404


def test_model_target_errors_are_per_item_and_runs_cancel_and_resume(
    srv: RunningServer, fake_upstream: FakeUpstream
) -> None:
    """A model-alias target: an upstream 500 fails only its item (recorded with the error); a slow run is
    cancelled, then resumed, and ends with every item done exactly once."""
    api = _api(srv)
    items = [{"id": f"i{n}", "input": f"question {n}", "expected": f"echo: question {n}"} for n in range(6)]
    assert api.post("/api/datasets", json={"name": "m", "items": items}).status_code == 201
    fake_upstream.enqueue("status:code=500", "status:code=500")  # the router retries once: one item fails
    run = api.post("/api/experiments", json={"dataset": "m", "target": {"model": "fake"}, "scorers": ["exact"],
                                             "concurrency": 1}).json()  # fmt: skip
    run = _wait_run(api, run["run_id"])
    assert run["status"] == "done" and run["done"] == 6 and run["errors"] == 1
    detail = api.get(f"/api/experiments/{run['run_id']}").json()
    failed = [r for r in detail["results"] if r["error"]]
    assert len(failed) == 1 and "500" in failed[0]["error"] or "upstream" in failed[0]["error"].lower()
    assert detail["summary"]["scorers"]["exact"]["mean"] == 1.0

    fake_upstream.enqueue(*["latency:ms=300"] * 6)
    body = {"dataset": "m", "target": {"model": "fake"}, "scorers": ["exact"], "concurrency": 1, "run_id": "slow"}
    assert api.post("/api/experiments", json=body).status_code == 202
    assert api.post("/api/experiments", json=body).status_code == 409
    time.sleep(0.5)
    cancelled = api.post("/api/experiments/slow/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["done"] < 6
    assert api.post("/api/experiments/slow/cancel").status_code == 409
    assert api.post("/api/experiments/slow/resume").status_code == 202
    run = _wait_run(api, "slow")
    assert run["status"] == "done" and run["done"] == 6
    results = api.get("/api/experiments/slow").json()["results"]
    assert sorted(r["item_id"] for r in results) == [f"i{n}" for n in range(6)]
    listed = api.get("/api/experiments").json()["data"]
    assert {r["run_id"] for r in listed} >= {"slow", run["run_id"]}


def test_http_target_with_json_path_and_timeout(srv: RunningServer) -> None:
    """An HTTP endpoint target: the output is read at ``output_path``; a slow endpoint times out per item."""
    app = FastAPI()

    @app.post("/answer")
    async def answer(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body["input"] == "slow":
            await asyncio.sleep(2)
        return {"data": {"answers": [str(body["input"]).upper()]}}

    api = _api(srv)
    items = [{"id": "1", "input": "abc", "expected": "ABC"}, {"id": "2", "input": "slow", "expected": "SLOW"}]
    assert api.post("/api/datasets", json={"name": "h", "items": items}).status_code == 201
    with serve_in_thread(app) as base:
        target = {"http": {"url": base + "/answer", "output_path": "data.answers.0", "timeout_s": 0.5}}
        run = api.post("/api/experiments", json={"dataset": "h", "target": target, "scorers": ["exact"]}).json()
        run = _wait_run(api, run["run_id"])
    results = {r["item_id"]: r for r in api.get(f"/api/experiments/{run['run_id']}").json()["results"]}
    assert results["1"]["output"] == "ABC", results
    assert results["1"]["scores"]["exact"]["value"] == 1.0
    assert results["2"]["output"] is None and "timed out" in results["2"]["error"]


def test_review_correction_becomes_a_dataset_item(srv: RunningServer) -> None:
    """svc.datasets is wired before review: a reviewer's corrected output lands in a dataset as an item with the
    trace's input, the correction as expected output and the source trace."""
    trace_id = _traffic(srv)[0]
    api = _api(srv)
    assert api.post("/api/score-configs", json={"name": "ok", "data_type": "boolean"}).status_code == 201
    queue = api.post("/api/review-queues", json={"name": "q", "configs": ["ok"], "trace_ids": [trace_id]}).json()
    item = api.get(f"/api/review-queues/{queue['queue_id']}/items").json()["data"][0]
    resp = api.post(
        f"/api/review-queues/{queue['queue_id']}/items/{item['item_id']}",
        json={"labels": {"ok": False}, "correction": "Paris"},
    )
    assert resp.status_code == 200, resp.text
    resp = api.post(f"/api/review-queues/{queue['queue_id']}/corrections/dataset", json={"dataset": "fixed"})
    assert resp.status_code == 200, resp.text
    items = api.get("/api/datasets/fixed/items").json()["data"]
    assert len(items) == 1 and items[0]["expected"] == "Paris"
    assert items[0]["source"]["trace_id"] == trace_id and items[0]["input"]
