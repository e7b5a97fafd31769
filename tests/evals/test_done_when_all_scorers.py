"""Issue 5 "done when", scorer families: two prompt versions run over HTTP against a dataset, scored at once by a
deterministic scorer, the local NLI factual-consistency scorer, the local toxicity classifier and an LLM judge
(a scripted judge model on loopback, reached through the gateway), then compared with significance.

The answering model is the loopback fake upstream (it echoes the question); the judge is a second loopback
server that answers the judge's JSON-schema request with a verdict that depends on the answer it was shown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream, serve_in_thread

FACTS = [
    ("The library opens at nine in the morning.", "when does the library open"),
    ("The museum closes at five in the afternoon.", "when does the museum close"),
    ("The pool is heated to twenty-eight degrees.", "how warm is the pool"),
    ("The train to Lyon leaves from platform four.", "which platform for the Lyon train"),
    ("The bakery sells bread made with rye flour.", "what bread does the bakery sell"),
    ("The park is open to dogs on a leash.", "are dogs allowed in the park"),
    ("The office is closed on public holidays.", "is the office open on holidays"),
    ("The bridge was built in the year 1890.", "when was the bridge built"),
]


@pytest.fixture
def judge_url() -> Iterator[str]:
    """An OpenAI-compatible judge: score 5 when the answer shown to it repeats the reference, else 1."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        shown = " ".join(str(m.get("content")) for m in body["messages"])
        score = 1 if "Rewritten" in shown else 5
        verdict = {"reasoning": f"scored {score}", "score": score}
        return {
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "judge-1",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": json.dumps(verdict)}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        }

    with serve_in_thread(app) as base:
        yield base


def _wait(api: httpx.Client, run_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = api.get(f"/api/experiments/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_two_prompt_versions_scored_by_every_scorer_family(
    fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer], judge_url: str
) -> None:
    cfg = fake_config(
        fake_upstream,
        {"name": "fake", "deployments": [openai_dep(fake_upstream, "gpt-fake")]},
        {"name": "judge", "deployments": [{"provider": "openai", "base_url": judge_url + "/v1", "model": "judge-1"}]},
    )
    srv = server_factory(cfg)
    api = httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {srv.key}"}, timeout=120)
    items = [
        {"id": f"q{i}", "input": {"fact": fact}, "expected": f"echo: {fact}", "contexts": [fact]}
        for i, (fact, _) in enumerate(FACTS)
    ]
    assert api.post("/api/datasets", json={"name": "facts", "items": items}).status_code == 201
    prompt = {"name": "say", "type": "text", "template": "{{ fact }}", "variables": {"fact": "string"}}
    assert api.post("/api/prompts", json={**prompt, "model": "fake"}).status_code == 201
    v2 = {**prompt, "template": "Rewritten: the opposite of {{ fact }}", "model": "fake"}
    assert api.post("/api/prompts/say/versions", json=v2).status_code == 201
    scorers = [
        "exact",
        {"name": "factual_consistency", "against": "contexts"},
        "toxicity",
        {"type": "judge", "rubric": "relevance", "model": "judge"},
    ]
    runs = []
    for version in (1, 2):
        body = {
            "dataset": "facts",
            "target": {"prompt": {"name": "say", "version": version}, "model": "fake"},
            "scorers": scorers,
            "concurrency": 4,
        }
        resp = api.post("/api/experiments", json=body)
        assert resp.status_code == 202, resp.text
        runs.append(_wait(api, resp.json()["run_id"]))
    r1, r2 = runs
    assert r1["status"] == "done" and r2["status"] == "done", (r1, r2)
    d1 = api.get(f"/api/experiments/{r1['run_id']}").json()
    s1 = d1["summary"]["scorers"]
    assert set(s1) == {"exact", "factual_consistency", "toxicity", "judge:relevance"}, s1
    for res in d1["results"]:
        assert res["error"] is None, res
        for name, score in res["scores"].items():
            assert score.get("error") is None, (name, score)
    judge_name = "judge:relevance"
    assert s1["exact"]["mean"] == 1.0 and s1[judge_name]["mean"] == 1.0  # judge: score 5 on a 1-5 scale
    assert s1["factual_consistency"]["mean"] > 0.8  # the echo repeats its context: claims supported (NLI)
    assert s1["toxicity"]["mean"] < 0.2  # polite facts: low toxicity probability
    assert "claims supported" in d1["results"][0]["scores"]["factual_consistency"]["reason"]
    cmp = api.get("/api/experiments/compare", params={"runs": f"{r1['run_id']},{r2['run_id']}"}).json()
    by_scorer = {c["scorer"]: c for c in cmp["comparisons"]}
    assert by_scorer["exact"]["regression"] and by_scorer["exact"]["significant"]
    assert by_scorer[judge_name]["regression"] and by_scorer[judge_name]["ci_high"] < 0
    assert cmp["comparisons"][0]["regression"]  # regressions are listed first
