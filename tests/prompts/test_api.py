"""REST API under /api/prompts against a real server: the full lifecycle, error envelopes that name the field,
admin-only protected labels, and project isolation (another project's prompts are 404 on every route)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningServer
from tests.prompts.conftest import chat_spec, text_spec


@pytest.fixture
def admin(server: RunningServer) -> httpx.Client:
    return server.client()


@pytest.fixture
def dev(server: RunningServer) -> httpx.Client:
    created = server.services.projects.create_key("default", "dev")
    return server.client(created.secret)


def _err(resp: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


def test_lifecycle(admin: httpx.Client, dev: httpx.Client) -> None:
    """Create, push (idempotent), list, get by label and number, diff, move, history, render, rollback."""
    created = dev.post("/api/prompts", json={"name": "support", **chat_spec(), "message": "first"})
    assert created.status_code == 201 and created.json()["version"] == 1
    same = dev.post("/api/prompts/support/versions", json=chat_spec())
    assert same.status_code == 200 and same.json()["created"] is False and same.json()["version"] == 1
    v2 = dev.post("/api/prompts/support/versions", json={**chat_spec(system="Be {{ tone }}!"), "labels": ["staging"]})
    assert v2.status_code == 201 and v2.json()["version"] == 2
    listed = dev.get("/api/prompts").json()["data"]
    assert [(p["name"], p["latest_version"], p["type"]) for p in listed] == [("support", 2, "chat")]
    assert listed[0]["labels"]["staging"]["version"] == 2 and listed[0]["labels"]["latest"]["version"] == 2
    by_label = dev.get("/api/prompts/support/versions/staging").json()
    assert by_label["version"] == 2 and by_label["label"]["label"] == "staging"
    assert dev.get("/api/prompts/support/versions/1").json()["message"] == "first"
    diff = dev.get("/api/prompts/support/diff", params={"a": 1, "b": "staging"}).json()["diff"]
    assert "-You are {{ tone }}." in diff and "+Be {{ tone }}!" in diff and diff.startswith("--- support@v1")
    assert admin.put("/api/prompts/support/labels/production", json={"version": 1}).json()["version"] == 1
    assert admin.put("/api/prompts/support/labels/production", json={"version": 2}).json()["version"] == 2
    out = dev.post("/api/prompts/support/render", json={"ref": "production", "variables": {"who": "Ann"}}).json()
    assert out["messages"] == [
        {"role": "system", "content": "Be friendly!"},
        {"role": "user", "content": "Hi, I am Ann."},
    ]
    assert admin.post("/api/prompts/support/labels/production/rollback").json()["version"] == 1
    history = dev.get("/api/prompts/support/history", params={"label": "production"}).json()["data"]
    assert [(m["action"], m["from"] and m["from"]["version"], m["to"]["version"]) for m in history] == [
        ("rollback", 2, 1),
        ("move", 1, 2),
        ("move", None, 1),
    ]
    detail = dev.get("/api/prompts/support").json()
    assert detail["protected_labels"] == ["production"] and [v["version"] for v in detail["versions"]] == [2, 1]
    assert {lb["label"]: lb["protected"] for lb in detail["labels"]}["production"] is True


def test_protected_labels_refuse_non_admin_keys(admin: httpx.Client, dev: httpx.Client) -> None:
    """Moving, splitting or rolling back `production` with a non-admin key is a 403 that says why."""
    dev.post("/api/prompts", json={"name": "p", **text_spec()})
    err = _err(dev.put("/api/prompts/p/labels/production", json={"version": 1}), 403)
    assert err["param"] == "label" and err["code"] == "protected_label" and "admin" in err["message"]
    _err(dev.put("/api/prompts/p/protected-labels", json={"labels": []}), 403)
    assert admin.put("/api/prompts/p/protected-labels", json={"labels": []}).json()["protected_labels"] == []
    assert dev.put("/api/prompts/p/labels/production", json={"version": 1}).status_code == 200


def test_canary_over_rest(admin: httpx.Client) -> None:
    """A canary split is set, refused at 0%, and ended by rollback (all traffic back on the stable version)."""
    admin.post("/api/prompts", json={"name": "c", **text_spec("A {{ who }}")})
    admin.post("/api/prompts/c/versions", json={**text_spec("B {{ who }}"), "labels": ["production"]})
    admin.put("/api/prompts/c/labels/production", json={"version": 1})
    split = admin.put("/api/prompts/c/labels/production/canary", json={"version": 2, "percent": 25}).json()
    assert (split["version"], split["canary_version"], split["canary_percent"]) == (1, 2, 25.0)
    _err(admin.put("/api/prompts/c/labels/production/canary", json={"version": 2, "percent": 0}), 400)
    back = admin.post("/api/prompts/c/labels/production/rollback").json()
    assert (back["version"], back["canary_version"]) == (1, None)


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"name": "x", "template": "{{ oops"}, 400, "template", "template_syntax_error"),
        ({"name": "x", "template": "{{ who }}"}, 400, "variables.who", "undeclared_variable"),
        ({"name": "x", "template": "{{ ''.__class__ }}"}, 400, "template", "unsafe_template"),
        ({"name": "x", "template": "x" * 100_001}, 413, "template", "template_too_large"),
        ({"name": "bad name!", "template": "x"}, 400, "name", "invalid_name"),
        ({"name": "x", "type": "chat", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages.0.role", None),
        ({"name": "x", "template": "x", "params": {"stream": True}}, 400, "params.stream", None),
        ({"name": "x", "template": "x", "surprise": 1}, 400, "surprise", "invalid_value"),
    ],
)
def test_bad_prompts_are_4xx_naming_the_field(
    admin: httpx.Client,
    body: dict,
    status: int,
    param: str,
    code: str | None,  # type: ignore[type-arg]
) -> None:
    err = _err(admin.post("/api/prompts", json=body), status)
    assert err["param"] == param
    if code:
        assert err["code"] == code


def test_other_bad_requests(admin: httpx.Client) -> None:
    """Duplicate names, labels on missing versions, bad and missing variables, unknown refs."""
    admin.post("/api/prompts", json={"name": "p", **text_spec()})
    assert _err(admin.post("/api/prompts", json={"name": "p", **text_spec()}), 409)["param"] == "name"
    assert _err(admin.put("/api/prompts/p/labels/staging", json={"version": 9}), 404)["param"] == "version"
    assert _err(admin.put("/api/prompts/p/labels/latest", json={"version": 1}), 400)["code"] == "label_reserved"
    render = admin.post("/api/prompts/p/render", json={"ref": 1, "variables": {}})
    assert _err(render, 400)["param"] == "variables.who"
    render = admin.post("/api/prompts/p/render", json={"ref": 1, "variables": {"who": "a", "x": 1}})
    assert _err(render, 400)["param"] == "variables.x"
    assert _err(admin.get("/api/prompts/p/versions/nolabel"), 404)["code"] == "label_not_found"
    assert _err(admin.get("/api/prompts/p/versions/Bad!"), 400)["param"] == "ref"
    assert _err(admin.post("/api/prompts/p/labels/staging/rollback"), 404)["code"] == "label_not_found"
    body = {"name": "other", **text_spec()}
    assert _err(admin.post("/api/prompts/p/versions", json=body), 400)["param"] == "name"


def test_project_isolation(server: RunningServer, admin: httpx.Client) -> None:
    """A key of project B gets 404 for every route of project A's prompt, and an empty list."""
    admin.post("/api/prompts", json={"name": "mine", **text_spec(), "labels": []})
    admin.put("/api/prompts/mine/labels/production", json={"version": 1})
    server.services.projects.create_project("b")
    other = server.client(server.services.projects.create_key("b", "b-admin", is_admin=True).secret)
    assert other.get("/api/prompts").json()["data"] == []
    routes = [
        ("GET", "/api/prompts/mine", None),
        ("GET", "/api/prompts/mine/versions", None),
        ("GET", "/api/prompts/mine/versions/1", None),
        ("GET", "/api/prompts/mine/versions/production", None),
        ("GET", "/api/prompts/mine/diff?a=1&b=1", None),
        ("GET", "/api/prompts/mine/labels", None),
        ("GET", "/api/prompts/mine/history", None),
        ("POST", "/api/prompts/mine/render", {"ref": 1, "variables": {"who": "x"}}),
        ("POST", "/api/prompts/mine/versions", text_spec("stolen {{ who }}")),
        ("PUT", "/api/prompts/mine/labels/production", {"version": 1}),
        ("PUT", "/api/prompts/mine/labels/production/canary", {"version": 1, "percent": 5}),
        ("POST", "/api/prompts/mine/labels/production/rollback", None),
        ("PUT", "/api/prompts/mine/protected-labels", {"labels": []}),
    ]
    for method, path, body in routes:
        resp = other.request(method, path, json=body)
        assert resp.status_code == 404, (method, path, resp.text)
    pages = [("GET", "/prompts/mine"), ("GET", "/prompts/mine/playground"), ("POST", "/prompts/mine/labels")]
    pages.append(("POST", "/prompts/mine/playground"))
    for method, path in pages:
        resp = other.request(method, path, data={"label": "production", "version": "1", "version_a": "1"})
        assert resp.status_code == 404 and "Hello {{ who }}!" not in resp.text, (method, path)
    assert 'data-prompt="mine"' not in other.get("/prompts").text
    assert admin.get("/api/prompts/mine/versions").json()["data"][0]["content"]["template"] == "Hello {{ who }}!"
