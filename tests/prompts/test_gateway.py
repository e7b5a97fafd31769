"""`/v1/chat/completions` with `model: "prompt:NAME@LABEL"` (or `llmops_prompt`) against a real server and the
fake upstream: what goes out on the wire, what the trace records, label moves and rollback taking effect on the
next call, and canary splits (proportion, stickiness, the side named in the trace)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import RunningServer, fake_config, openai_dep
from tests.prompts.conftest import chat_spec
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def srv(fake_upstream: FakeUpstream, server_factory: Callable[..., RunningServer]) -> RunningServer:
    cfg = fake_config(
        fake_upstream,
        {"name": "local", "deployments": [openai_dep(fake_upstream, "up-main")]},
        {"name": "other", "deployments": [openai_dep(fake_upstream, "up-other")]},
    )
    return server_factory(cfg)


@pytest.fixture
def api(srv: RunningServer) -> httpx.Client:
    client = srv.client()
    client.post("/api/prompts", json={"name": "support", **chat_spec(), "message": "v1"})
    client.post("/api/prompts/support/versions", json=chat_spec(system="You are very {{ tone }}."))
    client.put("/api/prompts/support/labels/production", json={"version": 1})
    return client


def _chat(api: httpx.Client, model: str, **body: Any) -> httpx.Response:
    return api.post("/v1/chat/completions", json={"model": model, **body})


def _span(srv: RunningServer, resp: httpx.Response) -> dict[str, Any]:
    srv.flush()
    trace = srv.client().get(f"/api/traces/{resp.headers['x-llmops-trace-id']}").json()
    return trace["spans"][0]  # type: ignore[no-any-return]


def test_prompt_model_is_rendered_on_the_server(
    srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    """The upstream receives the rendered messages, the prompt's model and params; the trace names the version."""
    resp = _chat(api, "prompt:support@production", llmops_prompt={"variables": {"who": "Ann"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "echo: Hi, I am Ann."
    sent = fake_upstream.requests[-1].json
    assert sent["model"] == "up-main" and sent["max_tokens"] == 8 and sent["temperature"] == 0
    assert sent["messages"] == [
        {"role": "system", "content": "You are friendly."},
        {"role": "user", "content": "Hi, I am Ann."},
    ]
    assert "llmops_prompt" not in sent
    span = _span(srv, resp)
    attrs = span["attributes"]
    assert (attrs["llmops.prompt.name"], attrs["llmops.prompt.version"], attrs["llmops.prompt.label"]) == (
        "support",
        1,
        "production",
    )
    assert "llmops.prompt.canary" not in attrs and span["request_model"] == "local"


def test_label_moves_and_rollback_change_the_next_call(
    srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    """Moving `production` changes the very next call, rollback restores it; traces filter and metrics group
    by prompt version."""
    body = {"llmops_prompt": {"variables": {"who": "Bo", "tone": "calm"}}}
    assert _chat(api, "prompt:support@production", **body).status_code == 200
    assert fake_upstream.requests[-1].json["messages"][0]["content"] == "You are calm."
    api.put("/api/prompts/support/labels/production", json={"version": 2})
    resp = _chat(api, "prompt:support@production", **body)
    assert fake_upstream.requests[-1].json["messages"][0]["content"] == "You are very calm."
    assert _span(srv, resp)["attributes"]["llmops.prompt.version"] == 2
    api.post("/api/prompts/support/labels/production/rollback")
    resp = _chat(api, "prompt:support@production", **body)
    assert fake_upstream.requests[-1].json["messages"][0]["content"] == "You are calm."
    assert _span(srv, resp)["attributes"]["llmops.prompt.version"] == 1
    by_version = api.get("/api/traces", params={"attr.llmops.prompt.version": "2"}).json()["data"]
    assert len(by_version) == 1
    metrics = api.get("/api/metrics", params={"group_by": "prompt"}).json()
    assert {g["group"]: g["requests"] for g in metrics["groups"]} == {"support@1": 2, "support@2": 1}


def test_request_overrides_and_appended_messages(api: httpx.Client, fake_upstream: FakeUpstream) -> None:
    """Request params and model win over the prompt's; request messages come after the rendered ones."""
    extra = [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "More please"}]
    resp = _chat(
        api,
        "other",
        messages=extra,
        max_tokens=3,
        llmops_prompt={"name": "support", "version": 2, "variables": {"who": "Cy"}},
    )
    assert resp.status_code == 200, resp.text
    sent = fake_upstream.requests[-1].json
    assert sent["model"] == "up-other" and sent["max_tokens"] == 3 and sent["temperature"] == 0
    assert [m["content"] for m in sent["messages"]] == [
        "You are very friendly.",
        "Hi, I am Cy.",
        *[m["content"] for m in extra],
    ]
    assert _chat(api, "prompt:support@2", llmops_prompt={"variables": {"who": "D"}}).status_code == 200
    assert fake_upstream.requests[-1].json["messages"][0]["content"] == "You are very friendly."


def test_streamed_prompt_call(srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream) -> None:
    """`stream: true` works the same: the prompt is rendered before the stream opens and the span names it."""
    body = {"model": "prompt:support@2", "stream": True, "llmops_prompt": {"variables": {"who": "Sam"}}}
    with api.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        events = [line for line in resp.iter_lines() if line.startswith("data: ")]
        trace_id = resp.headers["x-llmops-trace-id"]
    assert events[-1] == "data: [DONE]"
    assert fake_upstream.requests[-1].json["messages"][1]["content"] == "Hi, I am Sam."
    srv.flush()
    span = srv.client().get(f"/api/traces/{trace_id}").json()["spans"][0]
    assert span["attributes"]["llmops.prompt.version"] == 2 and "llmops.prompt.label" not in span["attributes"]


def test_openai_sdk_extra_body(srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream) -> None:
    """The official SDK sends `llmops_prompt` through extra_body; `messages` may be empty."""
    client = openai.OpenAI(base_url=srv.v1, api_key=srv.key, max_retries=0)
    resp = client.chat.completions.create(
        model="prompt:support@production", messages=[], extra_body={"llmops_prompt": {"variables": {"who": "Eve"}}}
    )
    assert resp.choices[0].message.content == "echo: Hi, I am Eve."
    assert fake_upstream.requests[-1].json["messages"][1]["content"] == "Hi, I am Eve."


BAD_CALLS: list[tuple[str, dict[str, Any], int, str]] = [
    ("prompt:nope@production", {}, 404, "model"),
    ("prompt:support@nolabel", {}, 404, "model"),
    ("prompt:support@production", {}, 400, "llmops_prompt.variables.who"),
    ("prompt:support@production", {"llmops_prompt": {"variables": {"who": 1}}}, 400, "llmops_prompt.variables.who"),
    (
        "prompt:support@production",
        {"llmops_prompt": {"variables": {"who": "a", "x": 1}}},
        400,
        "llmops_prompt.variables.x",
    ),
    ("local", {"llmops_prompt": {"label": "production"}}, 400, "llmops_prompt.name"),
    ("local", {"llmops_prompt": {"name": "support", "label": "a", "version": 1}}, 400, "llmops_prompt.version"),
    ("local", {"llmops_prompt": "support"}, 400, "llmops_prompt"),
    ("prompt:", {}, 400, "model"),
    ("prompt:support@production", {"llmops_prompt": {"name": "support"}}, 400, "llmops_prompt"),
]


def test_bad_prompt_calls_name_the_field(api: httpx.Client) -> None:
    """Unknown prompts/labels are 404s and bad variables or references 400s, each naming the request field."""
    for model, body, status, param in BAD_CALLS:
        resp = _chat(api, model, **body)
        assert resp.status_code == status, (model, body, resp.text)
        assert resp.json()["error"]["param"] == param, (model, body, resp.text)


def test_failed_prompt_calls_are_traced(srv: RunningServer, api: httpx.Client) -> None:
    """A call refused while resolving its prompt (missing variable) is still recorded, as an error."""
    resp = _chat(api, "prompt:support@production")
    assert resp.status_code == 400
    srv.flush()
    traces = srv.client().get("/api/traces", params={"status": "error"}).json()["data"]
    assert traces and traces[0]["model"] == "prompt:support@production"


def test_prompts_of_other_projects_are_not_found(srv: RunningServer, api: httpx.Client) -> None:
    """A key of another project cannot call this project's prompt: 404 prompt_not_found."""
    srv.services.projects.create_project("b")
    other = srv.client(srv.services.projects.create_key("b", "b").secret)
    resp = _chat(other, "prompt:support@production", llmops_prompt={"variables": {"who": "x"}})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "prompt_not_found"


def test_canary_split_proportion_stickiness_and_rollback(
    srv: RunningServer, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    """production = v1 70% / v2 30%: sides by user are sticky, near 30%, named in the trace; rollback ends it."""
    api.put("/api/prompts/support/labels/production/canary", json={"version": 2, "percent": 30})
    body = {"llmops_prompt": {"variables": {"who": "U"}}}

    def side(user: str) -> str:
        resp = api.post(
            "/v1/chat/completions",
            json={"model": "prompt:support@production", **body},
            headers={"x-llmops-user": user},
        )
        assert resp.status_code == 200
        return fake_upstream.requests[-1].json["messages"][0]["content"]

    counts = Counter(side(f"user-{i}") for i in range(200))
    assert set(counts) == {"You are friendly.", "You are very friendly."}
    assert 35 <= counts["You are very friendly."] <= 85  # 30% of 200
    assert {side("user-7") for _ in range(5)} == {side("user-7")}
    resp = api.post(
        "/v1/chat/completions",
        json={"model": "prompt:support@production", **body},
        headers={"x-llmops-session": "sess-1"},
    )
    attrs = _span(srv, resp)["attributes"]
    assert attrs["llmops.prompt.canary"] is (attrs["llmops.prompt.version"] == 2)
    api.post("/api/prompts/support/labels/production/rollback")
    assert {side(f"user-{i}") for i in range(20)} == {"You are friendly."}
