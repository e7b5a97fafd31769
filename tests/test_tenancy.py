"""Tenant isolation matrix (reliability.md T8 / A2, A3) over EVERY route in ``app.routes``.

Two projects, A and B, each with keys, traces (through the gateway and through the span recorder), scores,
sessions and users. Everything of B carries ``CANARY-B-<uuid>``; everything of A carries ``CANARY-A-<uuid>``.
For each route and method (new routes are picked up automatically):

- without credentials: 401 on ``/api`` and ``/v1``, a redirect to ``/login`` on pages (A3); only the explicit
  ``ANONYMOUS`` allowlist may answer anyway, and the allowlist may not go stale;
- with A's key (Bearer on the API, cookie on pages), path ids set to B's objects: 404 for get/update/delete;
- list/search/filter/export routes with A's key, plain and with parameters that try to pull B's rows in
  (B's user, session, trace, tag, attribute, score name, full-text canary, a cursor forged from B's trace):
  no B row, and A's own rows do show (a positive control, so an empty answer cannot pass by accident);
- every response body is grepped for ``CANARY-B`` (after removing the values the request itself sent, which
  an error message may quote back);
- afterwards B's objects are all still there, unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import openai
import orjson
import pytest

from llmops.app import build_services, create_app
from llmops.core.settings import Settings
from llmops.tracing import Span
from tests.conftest import RunningServer
from tests.support.fake_upstream import serve_in_thread

ANONYMOUS = {  # (method, path) that answer without a key; nothing here returns tenant data
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/static/{name}"),
    ("GET", "/static/vendor/{name}"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/logout"),
    ("POST", "/logout"),
}
# Routes that list the caller's data: with A's key their plain answer must show A's canary.
LISTS_A = {
    "/api/traces",
    "/api/traces/export",
    "/api/scores",
    "/api/sessions",
    "/api/users",
    "/api/keys",
    "/",
    "/traces",
    "/ui/fragments/traces",
    "/sessions",
    "/users",
    "/api/rag/collections",  # RAG core
    "/rag",  # RAG core
    "/v1/files",  # batches
    "/v1/batches",  # batches
    "/batches",  # batches
    "/api/budgets",  # budgets + rate limits
    "/api/rate-limits",  # budgets + rate limits
    "/api/datasets",  # evals: datasets + experiments
    "/api/experiments",  # evals: datasets + experiments
    "/evals",  # evals: datasets + experiments
}
# Detail routes whose own-project answer must show the tenant's canary (positive control for the 404s).
OWN_DETAIL = {
    "/api/traces/{trace_id}",
    "/api/scores/{score_id}",
    "/api/sessions/{session_id:path}",
    "/api/users/{user_id:path}",
    "/api/prompts/{name}",
    "/traces/{trace_id}",
    "/sessions/{session_id:path}",
    "/users/{user_id:path}",
    "/api/rag/collections/{collection}",  # RAG core
    "/api/rag/{collection}/documents/{document_id:path}",  # RAG core
    "/rag/{collection}",  # RAG core
    "/v1/files/{file_id}",  # batches
    "/v1/batches/{batch_id}",  # batches
    "/api/budgets/{budget_id}",  # budgets + rate limits
    "/api/datasets/{dataset}",  # evals: datasets + experiments
    "/api/datasets/{dataset}/items",  # evals
    "/api/datasets/{dataset}/export",  # evals
    "/api/experiments/{run_id:path}",  # evals
    "/evals/datasets/{dataset}",  # evals
    "/evals/runs/{run_id:path}",  # evals
    "/api/rag/{collection}/findings",  # RAG corpus health
    "/api/rag/{collection}/health",  # RAG corpus health
    "/rag/{collection}/health",  # RAG corpus health
}
PARAM = re.compile(r"{(\w+)(:\w+)?}")


@dataclass
class Tenant:
    name: str
    project_id: str
    key: str
    key_id: str
    canary: str
    trace_id: str = ""
    span_id: str = ""
    gateway_trace_id: str = ""
    score_id: str = ""
    prompt: str = ""  # set when the prompt registry accepted the tenant's canary prompt
    collection: str = ""  # RAG core: set when the tenant's canary collection was ingested
    review: dict[str, str] | None = None  # review / online evals: queue_id, item_id, rule_id of the tenant
    batch: dict[str, str] | None = None  # batches: file_id, batch_id of the tenant
    finding_id: str = ""  # RAG corpus health: the tenant's (stale-document) finding
    limits: dict[str, str] | None = None  # budgets + rate limits: budget_id, limit_id of the tenant
    evals: dict[str, str] | None = None  # evals: dataset name and experiment run id of the tenant

    @property
    def user(self) -> str:
        return f"{self.canary}-user"

    @property
    def session(self) -> str:
        return f"{self.canary}-session"

    @property
    def tag(self) -> str:
        return f"{self.canary}-tag"

    @property
    def score_name(self) -> str:
        return f"{self.canary}-score"

    def ids(self) -> dict[str, str]:
        """Path parameter name -> this tenant's object."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "score_id": self.score_id,
            "session_id": self.session,
            "user_id": self.user,
            "key_id": self.key_id,
            "model_id": "local",
            **({"name": self.prompt, "ref": "1", "label": "production"} if self.prompt else {}),
            **({"collection": self.collection, "document_id": f"{self.canary}.md"} if self.collection else {}),
            **(self.review or {}),  # review / online evals
            **(self.batch or {}),  # batches
            **({"finding_id": self.finding_id} if self.finding_id else {}),  # RAG corpus health
            **(self.limits or {}),  # budgets + rate limits
            **(self.evals or {}),  # evals: datasets + experiments
        }


@dataclass
class World:
    server: RunningServer
    a: Tenant
    b: Tenant
    app_routes: list[tuple[str, str]]


def _record(srv: RunningServer, spans: list[Span]) -> None:
    loop = srv.services.loop
    assert loop is not None

    async def put() -> None:
        for s in spans:
            srv.services.recorder.record(s)
        await srv.services.recorder.flush()

    asyncio.run_coroutine_threadsafe(put(), loop).result(timeout=30)


def _spans(t: Tenant) -> list[Span]:
    """A two-span trace full of the tenant's canary (attributes, tags, messages, user, session)."""
    trace_id, root_id, start = secrets.token_hex(16), secrets.token_hex(8), time.time_ns() - 10**9
    common = dict(project_id=t.project_id, trace_id=trace_id, user_id=t.user, session_id=t.session)
    root = Span(span_id=root_id, name=f"agent {t.canary}", kind="agent", start_ns=start, end_ns=start + 10**8, **common)  # type: ignore[arg-type]
    llm = Span(
        span_id=secrets.token_hex(8),
        parent_span_id=root_id,
        name="chat local",
        kind="llm",
        operation="chat",
        request_model="local",
        start_ns=start + 10**6,
        end_ns=start + 5 * 10**7,
        attributes={"canary": t.canary, "tag.tags": [t.tag], "llmops.prompt.name": t.canary},
        input=[{"role": "user", "parts": [{"type": "text", "content": f"secret {t.canary}"}]}],
        output=[{"role": "assistant", "parts": [{"type": "text", "content": f"reply {t.canary}"}]}],
        **common,
    )  # type: ignore[arg-type]
    return [root, llm]


def _seed(srv: RunningServer, t: Tenant) -> None:
    spans = _spans(t)
    _record(srv, spans)
    t.trace_id, t.span_id = spans[0].trace_id, spans[1].span_id
    client = openai.OpenAI(base_url=srv.v1, api_key=t.key, max_retries=0)
    headers = {"x-llmops-user": t.user, "x-llmops-session": t.session}
    chat = client.chat.completions.with_raw_response.create(
        model="local", messages=[{"role": "user", "content": f"say {t.canary}"}], max_tokens=2, extra_headers=headers
    )
    t.gateway_trace_id = chat.headers["x-llmops-trace-id"]
    client.embeddings.create(model="local-embed", input=t.canary, extra_headers=headers)
    srv.flush()
    body = {
        "trace_id": t.trace_id,
        "span_id": t.span_id,
        "name": t.score_name,
        "value": f"label {t.canary}",
        "comment": t.canary,
        "idempotency_key": "same-key-in-both-projects",
    }
    resp = httpx.post(srv.base_url + "/api/scores", json=body, headers={"Authorization": f"Bearer {t.key}"})
    assert resp.status_code == 201, resp.text
    t.score_id = resp.json()["score_id"]
    prompt = {"name": f"{t.canary}-prompt", "type": "text", "template": f"Hi {t.canary}", "labels": ["production"]}
    resp = httpx.post(srv.base_url + "/api/prompts", json=prompt, headers={"Authorization": f"Bearer {t.key}"})
    t.prompt = prompt["name"] if resp.status_code == 201 else ""  # best effort: the registry is another team's
    rag = httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {t.key}"}, timeout=60)  # RAG core
    if rag.post("/api/rag/collections", json={"name": f"{t.canary}-kb"}).status_code == 201:
        doc = {"id": f"{t.canary}.md", "text": f"# {t.canary}\n\nsecret {t.canary}", "format": "markdown"}
        resp = rag.post(f"/api/rag/{t.canary}-kb/documents", json={"documents": [doc]})
        t.collection = f"{t.canary}-kb" if resp.status_code == 200 else ""
    if t.collection:  # RAG corpus health: an old document gives the tenant a (stale) finding
        old = {"id": f"{t.canary}-old.md", "text": f"# Old\n\nold {t.canary}", "format": "markdown",
               "effective_date": "2001-01-01"}  # fmt: skip
        rag.post(f"/api/rag/{t.collection}/documents", json={"documents": [old]})
        found = rag.post(f"/api/rag/{t.collection}/check", json={}).json().get("findings", [])
        t.finding_id = next((f["finding_id"] for f in found if f["kind"] == "stale"), "")
        assert t.finding_id, found
    _seed_review(rag, t)  # review / online evals
    _seed_limits(rag, t)  # budgets + rate limits
    _seed_evals(rag, t)  # evals: datasets + experiments
    _seed_batch(client, t)  # batches


def _seed_batch(client: openai.OpenAI, t: Tenant) -> None:
    """An input file named after the canary and an embeddings batch whose metadata holds it (batches)."""
    body = {"model": "local-embed", "input": "x"}
    line = {"custom_id": t.canary, "method": "POST", "url": "/v1/embeddings", "body": body}
    file = client.files.create(file=(f"{t.canary}.jsonl", orjson.dumps(line) + b"\n"), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h", metadata={"canary": t.canary}
    )
    t.batch = {"file_id": file.id, "batch_id": batch.id}


def _seed_evals(api: httpx.Client, t: Tenant) -> None:
    """A dataset full of the canary (version 2 adds an item from the tenant's trace) and a finished experiment on
    version 1, whose item input has no canary: the experiment's own gateway trace must not change what
    ``test_b_sees_its_own_data`` finds by full-text search (the run's name carries the canary instead)."""
    items = [{"id": "canary", "input": "say hello", "expected": t.canary, "metadata": {"c": t.canary}}]
    resp = api.post("/api/datasets", json={"name": f"{t.canary}-ds", "description": t.canary, "items": items})
    assert resp.status_code == 201, resp.text
    resp = api.post(f"/api/datasets/{t.canary}-ds/items/from-traces", json={"trace_id": t.trace_id})
    assert resp.status_code == 201, resp.text
    run_id = f"run-{uuid.uuid4().hex[:12]}"  # no canary: it is a span attribute of the experiment's trace
    run = {
        "dataset": f"{t.canary}-ds",
        "version": 1,
        "target": {"model": "local", "params": {"max_tokens": 2}},
        "scorers": [{"name": "contains", "value": t.canary}],
        "name": t.canary,
        "run_id": run_id,
    }
    resp = api.post("/api/experiments", json=run)
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while api.get(f"/api/experiments/{run_id}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "tenant experiment did not finish"
        time.sleep(0.05)
    t.evals = {"dataset": f"{t.canary}-ds", "run_id": run_id}


def _seed_limits(api: httpx.Client, t: Tenant) -> None:
    """A user budget and a user rate limit named after the tenant's canary (generous: they never refuse)."""
    budget = {"name": f"{t.canary}-budget", "scope": "user", "subject": t.user, "limit_usd": 1000}
    resp = api.post("/api/budgets", json=budget)
    assert resp.status_code == 201, resp.text
    limit = api.put("/api/rate-limits", json={"scope": "user", "subject": t.user, "rpm": 100000})
    assert limit.status_code == 200, limit.text
    t.limits = {"budget_id": resp.json()["budget_id"], "limit_id": limit.json()["limit_id"]}


def _seed_review(api: httpx.Client, t: Tenant) -> None:
    """A score config, a queue holding the tenant's trace and a (disabled) online rule, all full of the canary
    (review / online evals; no labels, so the tenant's scores stay as ``_assert_b_intact`` expects)."""
    api.post("/api/score-configs", json={"name": "tone", "data_type": "categorical", "categories": ["ok", t.canary]})
    queue = {"name": f"{t.canary}-queue", "configs": ["tone"], "trace_ids": [t.trace_id], "description": t.canary}
    resp = api.post("/api/review-queues", json=queue)
    assert resp.status_code == 201, resp.text
    queue_id = resp.json()["queue_id"]
    item_id = api.get(f"/api/review-queues/{queue_id}/items").json()["data"][0]["item_id"]
    rule = {"name": f"{t.canary}-rule", "scorers": [{"name": "contains", "value": t.canary}], "enabled": False}
    resp = api.post("/api/online-rules", json=rule)
    assert resp.status_code == 201, resp.text
    t.review = {"queue_id": queue_id, "item_id": item_id, "rule_id": resp.json()["rule_id"]}


def _routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI resolves them lazily)."""

    def walk(routes: list[Any]) -> Iterator[Any]:
        for r in routes:
            if hasattr(r, "effective_candidates"):
                yield from walk(r.effective_candidates())
                yield from r.effective_low_priority_routes()
            else:
                yield r

    return sorted(
        {(m, r.path) for r in walk(app.routes) for m in (getattr(r, "methods", None) or {"GET"}) if m != "HEAD"}
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings(home=tmp_path_factory.mktemp("tenancy"))
    services = build_services(settings)
    app = create_app(settings, services=services)
    with serve_in_thread(app) as base:
        assert services.bootstrap_key is not None
        srv = RunningServer(base, services.bootstrap_key.secret, services, settings.home)
        tenants = []
        for name in ("A", "B"):
            canary = f"CANARY-{name}-{uuid.uuid4()}"
            project = services.projects.create_project(f"tenant-{name}-{uuid.uuid4().hex[:8]}")
            created = services.projects.create_key_in(project.project_id, f"key {canary}", is_admin=True)
            tenants.append(Tenant(name, project.project_id, created.secret, created.key.key_id, canary))
        for t in tenants:
            _seed(srv, t)
        yield World(srv, tenants[0], tenants[1], _routes(app))


def _path(path: str, ids: dict[str, str]) -> str:
    return PARAM.sub(lambda m: ids.get(m.group(1), f"no-such-{m.group(1)}"), path)


def _is_api(path: str) -> bool:
    return path.startswith(("/api", "/v1"))


def _request(
    w: World, method: str, route: str, ids: dict[str, str], *, key: str | None, params: dict[str, str] | None = None
) -> httpx.Response:
    """Call ``route`` with its path ids from ``ids``: Bearer key on the API, cookie on pages (forms as forms)."""
    path = _path(route, ids)
    headers, cookies = {}, {}
    if key is not None and _is_api(path):
        headers["Authorization"] = f"Bearer {key}"
    elif key is not None:
        cookies["llmops_key"] = key
    body = _body(w, method, route)
    payload: dict[str, Any] = {"json": body} if _is_api(path) else {"data": body}
    with httpx.Client(base_url=w.server.base_url, cookies=cookies, timeout=60) as c:
        return c.request(method, path, headers=headers, params=params, follow_redirects=False, **payload)


def _body(w: World, method: str, path: str) -> dict[str, Any] | None:
    """A valid write body (aimed at B's objects where the route takes one, naming B's project, which must be
    ignored); ``{}`` for routes not in ``BODIES`` yet."""
    if method not in ("POST", "PUT", "PATCH"):
        return None
    bodies = {
        "/api/scores": {"trace_id": w.b.trace_id, "name": "x", "value": 1, "project_id": w.b.project_id},
        "/api/keys": {"name": "tenancy-probe", "project_id": w.b.project_id},
        "/traces/{trace_id}/scores": {"name": "probe", "value": "up"},
        "/api/rag/{collection}/findings/{finding_id}": {"action": "ignore"},  # RAG corpus health
        "/rag/{collection}/health/findings/{finding_id}": {"action": "ignore"},  # RAG corpus health
    }
    return bodies.get(path, {})


BODIES = {"/api/scores", "/api/keys", "/traces/{trace_id}/scores"}  # write routes _body() knows a valid body for
BODIES |= {"/api/rag/{collection}/findings/{finding_id}", "/rag/{collection}/health/findings/{finding_id}"}  # health


def _assert_no_canary(resp: httpx.Response, sent: list[str], where: str) -> None:
    """No ``CANARY-B`` in the body once the strings the request itself sent (path ids, query names and values)
    are removed in every form a page may echo them (as is, URL-quoted, HTML-escaped)."""
    text = resp.text
    echoes = {form for s in sent for form in (s, quote(s, safe=""), quote_plus(s), html.escape(s))}
    for echo in sorted(echoes, key=len, reverse=True):
        text = text.replace(html.escape(echo), "").replace(echo, "")
    assert "CANARY-B" not in text, f"{where}: B's canary leaked: {resp.status_code} {resp.text[:500]}"


def _validation_error(resp: httpx.Response) -> bool:
    return resp.status_code in (400, 422) and resp.headers.get("content-type", "").startswith("application/json")


def _pull_params(w: World) -> list[dict[str, str]]:
    """Query parameters that try to pull B's rows into A's answers."""
    b = w.b
    forged = base64.urlsafe_b64encode(f"{time.time_ns() + 10**12}:{b.trace_id}".encode()).decode()
    return [
        {},
        {"user": b.user, "session": b.session},
        {"trace_id": b.trace_id, "name": b.score_name},
        {"q": b.canary, "format": "otlp-json"},
        {"tag": b.tag, "format": "jsonl"},
        {"attr.canary": b.canary},
        {f"score.{b.score_name}": f"eq:label {b.canary}"},
        {"cursor": forged},
        {"group_by": "prompt"},
        {"group_by": "user"},
    ]


def test_route_table_has_no_unauthenticated_route(world: World) -> None:
    """A3: every route except the allowlist refuses a request without credentials (401 on the API, a redirect
    to /login on pages), even when it names B's objects; the allowlist names only routes that exist."""
    routes = world.app_routes
    assert set(ANONYMOUS) <= set(routes), f"stale allowlist entries: {set(ANONYMOUS) - set(routes)}"
    open_routes = []
    for method, path in routes:
        if (method, path) in ANONYMOUS:
            continue
        resp = _request(world, method, path, world.b.ids(), key=None)
        refused = resp.status_code == 401 or (resp.status_code == 303 and resp.headers["location"].startswith("/login"))
        if not path.startswith(("/api/", "/v1/")) and path not in BODIES and _validation_error(resp):
            refused = True  # a page's missing parameter failed validation before auth ran: nothing leaked
        # (/api and /v1 authenticate before any validation: AuthenticateFirst in app.py)
        if not refused:
            open_routes.append((method, path, resp.status_code))
        _assert_no_canary(resp, list(world.b.ids().values()), f"anonymous {method} {path}")
    assert open_routes == [], "routes answering without credentials (add auth, or allowlist with a reason)"


def test_b_ids_are_404_for_a_on_every_route(world: World) -> None:
    """A2: with A's credentials, every route whose path names B's trace/span/score/session/user/key answers
    404 (never 403: no enumeration) and shows no B canary; the same route with A's own ids answers 2xx
    (so the 404 comes from the project scope, not from a broken route)."""
    failures = []
    for method, path in world.app_routes:
        params = {m.group(1) for m in PARAM.finditer(path)}
        if (method, path) in ANONYMOUS or not params or params <= {"model_id"}:
            continue
        resp = _request(world, method, path, world.b.ids(), key=world.a.key)
        _assert_no_canary(resp, list(world.b.ids().values()), f"A {method} {path}")
        unchecked = path not in BODIES and _validation_error(resp)  # a body/query we cannot build: never reached
        if params & set(world.b.ids()) and resp.status_code != 404 and not unchecked:
            failures.append((method, path, resp.status_code))
        if method == "GET" and path in OWN_DETAIL and params <= set(world.a.ids()):
            own = _request(world, method, path, world.a.ids(), key=world.a.key)
            assert own.status_code == 200 and world.a.canary in own.text, (path, own.status_code)
    assert failures == []


def test_lists_filters_and_exports_show_no_b_rows(world: World) -> None:
    """A2: every parameterless route (lists, search, filters, metrics, exports, pages), plain and with parameters
    that name B's user/session/trace/tag/attribute/score/canary or a cursor forged from B's trace, returns no
    B row; the plain answer of a listing route shows A's rows (positive control)."""
    for method, path in world.app_routes:
        if PARAM.search(path) or (method, path) in ANONYMOUS or method != "GET":
            continue
        for params in _pull_params(world):
            resp = _request(world, method, path, {}, key=world.a.key, params=params)
            assert resp.status_code < 500, (path, params, resp.text[:300])
            _assert_no_canary(resp, [*params, *params.values()], f"A GET {path} {params}")
            if not params and path in LISTS_A:
                assert resp.status_code == 200 and world.a.canary in resp.text, (path, resp.status_code)


def test_writes_with_a_key_never_touch_b(world: World) -> None:
    """A2 write paths: every write route run with A's key against B's ids (and bodies naming B's trace and
    project) changes nothing of B; the tenant in a body is ignored; an idempotency key equal to B's creates A's
    own score instead of returning B's."""
    for method, path in world.app_routes:
        if method in ("GET", "HEAD") or (method, path) in ANONYMOUS:
            continue
        if path.startswith("/v1/"):  # gateway writes are covered by the gateway tests; {} is refused anyway
            resp = _request(world, method, path, {}, key=world.a.key)
            assert resp.status_code < 500 and "CANARY-B" not in resp.text
            continue
        resp = _request(world, method, path, world.b.ids(), key=world.a.key)
        _assert_no_canary(resp, list(world.b.ids().values()), f"A {method} {path}")
        if path == "/api/scores":
            assert resp.status_code == 404, resp.text
    a_headers = {"Authorization": f"Bearer {world.a.key}"}
    mine = httpx.post(
        world.server.base_url + "/api/scores",
        json={"trace_id": world.a.trace_id, "name": "n", "value": 1, "idempotency_key": "same-key-in-both-projects"},
        headers=a_headers,
    )
    assert mine.status_code in (200, 201) and mine.json()["score_id"] != world.b.score_id
    assert "CANARY-B" not in mine.text
    _assert_b_intact(world)


def test_a_cannot_write_into_b_trace_ids(world: World) -> None:
    """Trace ids are chosen by clients (traceparent, OTLP): A sending B's trace id through the gateway adds
    nothing to B's trace (its span count, cost and status stay), and B never sees A's span."""
    b_headers = {"Authorization": f"Bearer {world.b.key}"}
    before = httpx.get(f"{world.server.base_url}/api/traces/{world.b.trace_id}", headers=b_headers).json()
    client = openai.OpenAI(base_url=world.server.v1, api_key=world.a.key, max_retries=0)
    parent = f"00-{world.b.trace_id}-{secrets.token_hex(8)}-01"
    client.embeddings.create(model="local-embed", input="squat", extra_headers={"traceparent": parent})
    world.server.flush()
    after = httpx.get(f"{world.server.base_url}/api/traces/{world.b.trace_id}", headers=b_headers).json()
    keys = ("span_count", "input_tokens", "cost_usd", "status", "end_ns", "user_id")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}
    assert "squat" not in str(after)


def _assert_b_intact(w: World) -> None:
    b_headers = {"Authorization": f"Bearer {w.b.key}"}
    with httpx.Client(base_url=w.server.base_url, headers=b_headers, timeout=30) as c:
        score = c.get(f"/api/scores/{w.b.score_id}")
        assert score.status_code == 200 and score.json()["comment"] == w.b.canary
        assert c.get(f"/api/traces/{w.b.trace_id}").status_code == 200
        assert c.get(f"/api/sessions/{w.b.session}").json()["traces"] == 3  # recorded, chat, embeddings
        assert c.get(f"/api/users/{w.b.user}").json()["requests"] == 3
        keys = c.get("/api/keys").json()["data"]
        assert [k["active"] for k in keys if k["key_id"] == w.b.key_id] == [True]
        assert all(w.a.canary not in k["name"] for k in keys)
        scores = c.get("/api/scores").json()["data"]
        assert [s["score_id"] for s in scores] == [w.b.score_id]


def test_b_sees_its_own_data(world: World) -> None:
    """The reverse control: B's key does see B's trace, score, session and user (so A's 404s are scoping)."""
    _assert_b_intact(world)
    with httpx.Client(base_url=world.server.base_url, headers={"Authorization": f"Bearer {world.b.key}"}) as c:
        found = c.get("/api/traces", params={"q": world.b.canary}).json()["data"]
        assert {t["trace_id"] for t in found} == {world.b.trace_id, world.b.gateway_trace_id}
        assert "CANARY-A" not in c.get("/api/traces/export").text


def test_cost_reports_show_only_the_callers_project(world: World) -> None:  # cost reports
    """Positive control for /api/costs, /api/costs/what-if and the Costs page (the route walk above checks
    they leak nothing): grouped by user, tag and prompt each tenant sees its own canary groups, never the other's."""
    base = world.server.base_url
    for me, other in ((world.a, world.b), (world.b, world.a)):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {me.key}"}, timeout=30) as c:
            for by in ("user", "tag", "prompt"):
                body = c.get("/api/costs", params={"group_by": by}).text
                assert me.canary in body and other.canary not in body, (me.name, by, body[:300])
            what_if = c.get("/api/costs/what-if", params={"model": "local", "group_by": "user"})
            assert me.user in what_if.text and other.canary not in what_if.text
        page = httpx.get(base + "/costs", params={"by": "user"}, cookies={"llmops_key": me.key}, timeout=30).text
        assert me.user in page and other.canary not in page


def test_response_cache_is_partitioned_by_project(world: World) -> None:  # response caches
    """Positive control for /api/cache/stats and DELETE /api/cache (the route walk above checks they leak nothing):
    the same cacheable request from A and B is a miss for each (never B's entry for A), a repeat inside a project
    is a hit, stats count only the caller's calls, and A's purge leaves B's entry."""
    base = world.server.base_url
    body = {"model": "local", "messages": [{"role": "user", "content": "Cache tenancy?"}], "temperature": 0}
    body["max_tokens"] = 4
    use = {"x-llmops-cache": "use"}
    clients = {
        t.name: httpx.Client(base_url=base, headers={"Authorization": f"Bearer {t.key}"}, timeout=60)
        for t in (world.a, world.b)
    }
    try:
        a, b = clients["A"], clients["B"]
        a.delete("/api/cache"), b.delete("/api/cache")
        assert a.post("/v1/chat/completions", json=body, headers=use).headers["x-llmops-cache"] == "miss"
        assert b.post("/v1/chat/completions", json=body, headers=use).headers["x-llmops-cache"] == "miss"
        assert a.post("/v1/chat/completions", json=body, headers=use).headers["x-llmops-cache"] == "hit"
        stats_a = next(r for r in a.get("/api/cache/stats").json()["data"] if r["model"] == "local")
        stats_b = next(r for r in b.get("/api/cache/stats").json()["data"] if r["model"] == "local")
        assert (stats_a["hits"], stats_a["misses"], stats_a["entries"]) == (1, 1, 1)
        assert (stats_b["hits"], stats_b["misses"], stats_b["entries"]) == (0, 1, 1)
        assert a.delete("/api/cache").json()["deleted"] == 1
        assert b.post("/v1/chat/completions", json=body, headers=use).headers["x-llmops-cache"] == "hit"
    finally:
        for c in clients.values():
            c.close()
