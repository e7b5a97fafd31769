"""Score configs, annotation queues, reviewer labels and judge calibration over HTTP against a real server."""

from __future__ import annotations

from typing import Any

import httpx
from click.testing import CliRunner

from llmops.cli.main import cli
from tests.conftest import RunningServer
from tests.evals_review.support import chat_span, record


def _configs(c: httpx.Client) -> None:
    for body in (
        {"name": "correct", "data_type": "boolean"},
        {"name": "quality", "data_type": "numeric", "min": 1, "max": 5},
        {"name": "tone", "data_type": "categorical", "categories": ["polite", "neutral", "rude"]},
    ):
        assert c.post("/api/score-configs", json=body).status_code == 201


def _error(r: httpx.Response) -> dict[str, Any]:
    return r.json()["error"]  # type: ignore[no-any-return]


def test_score_configs_validate_themselves(server: RunningServer) -> None:
    """Configs are created, listed, unique by name (409), and malformed ones are refused with the field."""
    with server.client() as c:
        _configs(c)
        assert [x["name"] for x in c.get("/api/score-configs").json()["data"]] == ["correct", "quality", "tone"]
        assert c.get("/api/score-configs/tone").json()["categories"] == ["polite", "neutral", "rude"]
        assert c.post("/api/score-configs", json={"name": "tone", "data_type": "boolean"}).status_code == 409
        bad = [
            ({"name": "x", "data_type": "stars"}, "data_type"),
            ({"name": "x", "data_type": "numeric", "min": 5, "max": 1}, "min"),
            ({"name": "x", "data_type": "numeric"}, "min"),
            ({"name": "x", "data_type": "categorical", "categories": ["only"]}, "categories"),
            ({"name": "x", "data_type": "boolean", "categories": ["a", "b"]}, "categories"),
        ]
        for body, param in bad:
            r = c.post("/api/score-configs", json=body)
            assert r.status_code == 400 and _error(r)["param"] == param, (body, r.text)
        assert c.delete("/api/score-configs/tone").status_code == 204
        assert c.get("/api/score-configs/tone").status_code == 404


def test_queue_labels_become_trace_scores_and_calibrate_a_judge(server: RunningServer) -> None:
    """A queue from a filter holds the matching traces; labels are validated precisely, stored as human trace
    scores, items move to done/skipped; a judge's scores on the same traces give κ and the confusion matrix."""
    spans = [chat_span(server, f"q{i}", f"answer {i}", request_model="m") for i in range(6)]
    spans.append(chat_span(server, "other", "x", request_model="other-model"))
    record(server, *spans)
    with server.client() as c:
        _configs(c)
        r = c.post("/api/review-queues", json={"name": "q1", "configs": ["correct", "tone"], "filter": {"model": "m"}})
        assert r.status_code == 201, r.text
        queue = r.json()
        assert queue["counts"] == {"pending": 6, "done": 0, "skipped": 0}
        qid = queue["queue_id"]
        items = c.get(f"/api/review-queues/{qid}/items").json()["data"]
        assert {i["trace_id"] for i in items} == {s.trace_id for s in spans[:6]}
        first = c.get(f"/api/review-queues/{qid}/items/{items[0]['item_id']}").json()
        assert first["output"][0]["parts"][0]["content"].startswith("answer") and first["spans"][0]["model"] == "m"
        url = f"/api/review-queues/{qid}/items/{items[0]['item_id']}"
        r = c.post(url, json={"labels": {"tone": "angry"}})
        assert r.status_code == 400 and "'polite', 'neutral', 'rude'" in _error(r)["message"]
        assert _error(r)["param"] == "labels.tone"
        r = c.post(url, json={"labels": {"quality": 3}})  # not a config of this queue
        assert r.status_code == 400 and "quality" in _error(r)["message"]
        r = c.post(url, json={"labels": {"correct": "maybe"}})
        assert r.status_code == 400 and "boolean" in _error(r)["message"]
        human = [True, True, False, True, False]
        judge = [0.9, 0.8, 0.2, 0.3, 0.1]  # agrees on 4 of 5
        for item, h, j in zip(items[:5], human, judge, strict=True):
            r = c.post(
                f"/api/review-queues/{qid}/items/{item['item_id']}",
                json={"labels": {"correct": h, "tone": "polite"}, "correction": f"fixed {item['position']}"},
            )
            assert r.status_code == 200 and r.json()["status"] == "done", r.text
            body = {"trace_id": item["trace_id"], "name": "judge-correct", "value": j, "source": "llm_judge"}
            assert c.post("/api/scores", json=body).status_code == 201
        assert c.post(f"/api/review-queues/{qid}/items/{items[5]['item_id']}/skip").json()["status"] == "skipped"
        assert c.get(f"/api/review-queues/{qid}").json()["counts"] == {"pending": 0, "done": 5, "skipped": 1}
        scores = c.get("/api/scores", params={"name": "correct", "source": "human"}).json()["data"]
        assert sorted(s["trace_id"] for s in scores) == sorted(i["trace_id"] for i in items[:5])
        cal = c.get("/api/calibration", params={"judge": "judge-correct", "config": "correct"}).json()
        # human (rows) x judge (cols), categories false, true: TT TT FF TF FF -> [[2,0],[1,2]]
        assert cal["n"] == 5 and cal["categories"] == ["false", "true"]
        assert cal["matrix"] == [[2, 0], [1, 2]] and cal["agreement"] == 0.8
        # p_o = .8, p_e = .4*.6 + .6*.4 = .48, κ = .32/.52
        assert abs(cal["kappa"] - 0.32 / 0.52) < 1e-9
        corrections = c.get(f"/api/review-queues/{qid}/corrections").json()["data"]
        assert len(corrections) == 5 and corrections[0]["expected_output"].startswith("fixed")
        assert corrections[0]["source_trace_id"] in {i["trace_id"] for i in items}
        if getattr(server.services, "datasets", None) is None:  # datasets not installed: said, not faked
            r = c.post(f"/api/review-queues/{qid}/corrections/dataset", json={"dataset": "fixes"})
            assert r.status_code == 404 and "datasets are not available" in _error(r)["message"]
    auth = ["--base-url", server.base_url, "--api-key", server.key]
    out = CliRunner().invoke(cli, ["review", "calibration", "--judge", "judge-correct", "--config", "correct", *auth])
    assert out.exit_code == 0, out.output
    assert "n=5 kappa=0.615 agreement=80.0%" in out.output
    out = CliRunner().invoke(cli, ["review", "queues", *auth])
    assert out.exit_code == 0 and "q1" in out.output
    out = CliRunner().invoke(cli, ["review", "calibration", "--judge", "j", "--config", "missing", *auth])
    assert out.exit_code == 1 and "score config 'missing' not found" in out.output


def test_queue_sources_reviewers_and_tenancy(server: RunningServer) -> None:
    """Random samples and explicit ids; a queue restricted to a reviewer refuses other keys (403); another
    project sees none of it (404) and cannot queue this project's traces."""
    spans = [chat_span(server, f"s{i}", "a") for i in range(10)]
    record(server, *spans)
    with server.client() as c:
        _configs(c)
        r = c.post("/api/review-queues", json={"name": "s", "configs": ["quality"], "sample": 3, "seed": 7})
        assert r.status_code == 201 and r.json()["counts"]["pending"] == 3
        ids = [spans[0].trace_id, spans[1].trace_id]
        body = {"name": "ids", "configs": ["quality"], "trace_ids": ids, "reviewers": ["alice"]}
        qid = c.post("/api/review-queues", json=body).json()["queue_id"]
        item = c.get(f"/api/review-queues/{qid}/items").json()["data"][0]
        r = c.post(f"/api/review-queues/{qid}/items/{item['item_id']}", json={"labels": {"quality": 4}})
        assert r.status_code == 403
        r = c.post("/api/keys", json={"name": "alice"})
        assert r.status_code == 201, r.text
        alice = r.json()["secret"]
    with server.client(alice) as c:
        r = c.post(f"/api/review-queues/{qid}/items/{item['item_id']}", json={"labels": {"quality": 6}})
        assert r.status_code == 400 and "between 1 and 5" in _error(r)["message"]
        r = c.post(f"/api/review-queues/{qid}/items/{item['item_id']}", json={"labels": {"quality": 4}})
        assert r.status_code == 200 and r.json()["reviewer"] == "alice"
    server.services.projects.create_project("other")
    other_key = server.services.projects.create_key("other", "other-admin", is_admin=True).secret
    with server.client(other_key) as c:
        assert c.get(f"/api/review-queues/{qid}").status_code == 404
        assert c.get("/api/review-queues").json()["data"] == []
        c.post("/api/score-configs", json={"name": "quality", "data_type": "numeric", "min": 1, "max": 5})
        r = c.post("/api/review-queues", json={"name": "steal", "configs": ["quality"], "trace_ids": ids})
        assert r.status_code == 404
