"""Fixtures for the scorer tests: a fake upstream that can answer scripted judge replies, and shared local deps.

``ScriptedUpstream`` is the real fake upstream (tests/support/fake_upstream.py) with one addition: queued reply
texts (``script``) replace the echo content of the next non-streaming chat completions, so a judge can be made
to answer a verdict, garbage, or (with the inherited fault queue) an HTTP error.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmops.evals.evaluators import EvaluatorDeps
from llmops.projects import Principal
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream, _TransportInScopeH11, serve_in_thread

T = TypeVar("T")


class ScriptedUpstream(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.scripted: deque[str] = deque()

    def script(self, *texts: str) -> None:
        self.scripted.extend(texts)

    async def _chat(self, request: Request) -> Response:
        response = await super()._chat(request)
        if not self.scripted or not isinstance(response, JSONResponse) or response.status_code != 200:
            return response
        body = json.loads(bytes(response.body))
        text = self.scripted.popleft()
        body["choices"][0]["message"]["content"] = text
        body["usage"]["completion_tokens"] = len(text.split())
        body["usage"]["total_tokens"] = body["usage"]["prompt_tokens"] + len(text.split())
        return JSONResponse(body)


@pytest.fixture(scope="session")
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    with serve_in_thread(upstream, http=_TransportInScopeH11, loop="asyncio", timeout_graceful_shutdown=1) as base:
        upstream.base_url = base
        yield upstream


@pytest.fixture
def judge_server(scripted: ScriptedUpstream, server_factory: Callable[..., RunningServer]) -> RunningServer:
    """A running llmops server whose alias ``judge`` is the scripted upstream, priced at $1 per M tokens."""
    scripted.reset()
    scripted.scripted.clear()
    cfg = fake_config(scripted, {"name": "judge", "deployments": [openai_dep(scripted, "judge-model")]}, retries=0)  # type: ignore[arg-type]
    cfg["prices"] = {"judge-model": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}
    return server_factory(cfg)


def judge_deps(srv: RunningServer) -> EvaluatorDeps:
    assert srv.services.bootstrap_key is not None
    project_id = srv.services.bootstrap_key.key.project_id
    who = Principal(project_id, srv.services.bootstrap_key.key.key_id, "scorer-tests", is_admin=True)
    return EvaluatorDeps(gateway=srv.services.gateway, principal=who, judge_model="judge")


def on_server(srv: RunningServer, coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the server's own loop (where the gateway's clients and recorder live)."""
    assert srv.services.loop is not None
    return asyncio.run_coroutine_threadsafe(coro, srv.services.loop).result(timeout=60)


@pytest.fixture(scope="session")
def local_deps() -> EvaluatorDeps:
    """Deps with the real local models (embedder, NLI, toxicity), created once per session."""
    return EvaluatorDeps()
