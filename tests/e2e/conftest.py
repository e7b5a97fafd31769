"""Browser fixtures: one real server and one headless Chromium per session, a fresh browser context per test.

- ``web`` is the running server (uvicorn in a thread, ``create_app`` on a tmp ``LLMOPS_HOME``) after
  ``traffic`` went through it: real calls with the official openai SDK plus a few spans recorded through the
  server's own :class:`SpanRecorder` (a multi-span agent trace, failed attempts, hostile content).
- ``page`` is a signed-out page; ``signed_in`` a page whose context carries the session cookie.
- ``console_errors`` lists console errors and uncaught exceptions of ``page`` (CSP violations included).
- Screenshots go to ``$LLMOPS_E2E_SCREENSHOTS`` when set, else a tmp dir.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from pydantic import SecretStr

from llmops.app import build_services, create_app
from llmops.core.settings import Settings
from llmops.tracing import Span
from tests.conftest import RunningServer
from tests.support.fake_upstream import serve_in_thread

CHROMIUM = os.environ.get("LLMOPS_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS_INPUT = "<img src=x onerror=window.__xss=1>"
XSS_OUTPUT = "<script>window.__xss=1</script>"
WAIT_MS = 8_000  # upper bound for anything the UI does on its own (polling is every 1 s)


@dataclass
class Traffic:
    """Ids of what ``traffic`` produced, for tests to find."""

    chat_trace_id: str = ""
    embed_trace_id: str = ""
    xss_trace_id: str = ""
    agent_trace_id: str = ""
    agent_span_ids: dict[str, str] = field(default_factory=dict)
    pager_user: str = "pager"
    pager_count: int = 55


@dataclass
class Web:
    server: RunningServer
    traffic: Traffic
    shots: Path

    @property
    def base(self) -> str:
        return self.server.base_url

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.v1, api_key=self.server.key, max_retries=0)

    def record(self, *spans: Span) -> None:
        """Record spans through the server's own recorder (on its loop) and wait until they are committed."""
        loop = self.server.services.loop
        assert loop is not None

        async def put() -> None:
            for s in spans:
                self.server.services.recorder.record(s)
            await self.server.services.recorder.flush()

        asyncio.run_coroutine_threadsafe(put(), loop).result(timeout=30)

    def shot(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture(scope="session")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("e2e-home")
    settings = Settings(home=home, admin_key=SecretStr("sk-llmops-e2e-" + secrets.token_urlsafe(18)))
    services = build_services(settings)
    with serve_in_thread(create_app(settings, services=services)) as base:
        assert services.bootstrap_key is not None
        yield RunningServer(base, services.bootstrap_key.secret, services, home)


def _span(project_id: str, trace_id: str, name: str, kind: str, start_ns: int, ms: float, **kw: object) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=secrets.token_hex(8),
        project_id=project_id,
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=start_ns + int(ms * 1e6),
        **kw,
    )  # type: ignore[arg-type]


def _agent_trace(project_id: str) -> list[Span]:
    """An agent run: a root span, an LLM call that needed a fallback and asked for a tool, a failing tool."""
    trace_id, t0 = secrets.token_hex(16), time.time_ns() - 5_000_000_000
    root = _span(project_id, trace_id, "agent plan-trip", "agent", t0, 900, user_id="e2e-agent")
    llm = _span(
        project_id,
        trace_id,
        "chat local",
        "llm",
        t0 + 20_000_000,
        400,
        parent_span_id=root.span_id,
        operation="chat",
        provider="llama.cpp",
        request_model="local",
        response_model="local",
        input_tokens=42,
        output_tokens=7,
        cost_usd=0.000123,
        ttft_ms=55.5,
        user_id="e2e-agent",
        attributes={
            "gen_ai.request.temperature": 0.2,
            "llmops.failed_attempts": [
                {
                    "deployment": "primary-gpt",
                    "provider": "openai",
                    "error": "upstream timed out",
                    "status_code": 504,
                    "duration_ms": 1000.0,
                    "extra": {},
                },
            ],
        },
        input=[
            {"role": "system", "parts": [{"type": "text", "content": "You plan trips."}]},
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        ],
        output=[
            {
                "role": "assistant",
                "finish_reason": "tool_calls",
                "parts": [
                    {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
                    {"type": "text", "content": XSS_OUTPUT},
                ],
            }
        ],
    )
    tool = _span(
        project_id,
        trace_id,
        "tool get_weather",
        "tool",
        t0 + 450_000_000,
        300,
        parent_span_id=llm.span_id,
        status="error",
        error="weather service unreachable",
        user_id="e2e-agent",
    )
    return [root, llm, tool]


def _produce_traffic(web: Web) -> None:
    client, project_id = web.openai(), web.server.services.bootstrap_key.key.project_id  # type: ignore[union-attr]
    emb = client.embeddings.with_raw_response.create(model="local-embed", input="hello world")
    web.traffic.embed_trace_id = emb.headers["x-llmops-trace-id"]
    chat = client.chat.completions.with_raw_response.create(
        model="local",
        messages=[{"role": "user", "content": "Say hi."}],
        max_tokens=8,
        temperature=0,
        extra_headers={"x-llmops-user": "e2e-alice", "x-llmops-session": "e2e-session-1"},
    )
    web.traffic.chat_trace_id = chat.headers["x-llmops-trace-id"]
    web.traffic.xss_trace_id = secrets.token_hex(16)
    hostile = _span(
        project_id,
        web.traffic.xss_trace_id,
        "chat local",
        "llm",
        time.time_ns() - 10**9,
        120,
        operation="chat",
        request_model="local",
        input_tokens=5,
        output_tokens=3,
        input=[{"role": "user", "parts": [{"type": "text", "content": XSS_INPUT}]}],
        output=[{"role": "assistant", "parts": [{"type": "text", "content": XSS_OUTPUT}], "finish_reason": "stop"}],
        attributes={"gen_ai.request.model": XSS_OUTPUT},
    )
    agent = _agent_trace(project_id)
    web.traffic.agent_trace_id = agent[0].trace_id
    web.traffic.agent_span_ids = {s.kind: s.span_id for s in agent}
    t0 = time.time_ns() - 3_600 * 10**9  # an hour ago: older than everything else, so it never crowds lists
    pager = [
        _span(
            project_id,
            secrets.token_hex(16),
            f"embeddings page-{i}",
            "embedding",
            t0 + i * 10**6,
            5,
            operation="embeddings",
            request_model="local-embed",
            user_id=web.traffic.pager_user,
        )
        for i in range(web.traffic.pager_count)
    ]
    web.record(hostile, *agent, *pager)
    web.server.flush()


@pytest.fixture(scope="session")
def web(running_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Web:
    shots = Path(os.environ.get("LLMOPS_E2E_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    w = Web(running_server, Traffic(), shots)
    _produce_traffic(w)
    return w


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(context: BrowserContext, console_errors: list[str]) -> Page:
    pg = context.new_page()
    pg.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: console_errors.append(str(e)))
    return pg


@pytest.fixture
def signed_in(web: Web, context: BrowserContext, page: Page) -> Page:
    context.add_cookies([{"name": "llmops_key", "value": web.server.key, "url": web.base}])
    return page
