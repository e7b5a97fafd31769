"""The SDK (`llmops.get_prompt`) against a real server that the tests stop: TTL cache, stale-while-revalidate,
the last good version flagged `stale` when the server is gone, an explicit fallback flagged `is_fallback`, and
`import llmops` staying light."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml

from llmops.app import build_services, create_app
from llmops.core.errors import NotFoundError, UpstreamError
from llmops.core.settings import Settings
from llmops.prompts.client import PromptClient
from tests.prompts.conftest import text_spec
from tests.support.fake_upstream import FakeUpstream, serve_in_thread


class Stoppable:
    def __init__(self, tmp_path: Path, fake: FakeUpstream) -> None:
        cfg = {
            "models": [{"name": "local", "deployments": [{"provider": "openai", "base_url": fake.base_url + "/v1"}]}]
        }
        (tmp_path / "llmops.yaml").write_text(yaml.safe_dump(cfg))
        settings = Settings(home=tmp_path, config=tmp_path / "llmops.yaml")
        services = build_services(settings)
        assert services.bootstrap_key is not None
        self.key = services.bootstrap_key.secret
        self._stack = ExitStack()
        self.base_url = self._stack.enter_context(serve_in_thread(create_app(settings, services=services)))
        self.api = httpx.Client(base_url=self.base_url, headers={"authorization": f"Bearer {self.key}"})

    def stop(self) -> None:
        self.api.close()
        self._stack.close()


@pytest.fixture
def srv(tmp_path: Path, fake: FakeUpstream) -> Iterator[Stoppable]:
    s = Stoppable(tmp_path, fake)
    s.api.post("/api/prompts", json={"name": "greet", **text_spec("Hello {{ who }}!"), "labels": ["production"]})
    s.api.post("/api/prompts/greet/versions", json=text_spec("Hi {{ who }}."))
    yield s
    s.stop()


def _client(srv: Stoppable, **kw: float) -> PromptClient:
    return PromptClient(srv.base_url, srv.key, **kw)


def test_fetch_then_serve_from_memory(srv: Stoppable) -> None:
    """Within the TTL a label move on the server is not seen (no request); invalidate() fetches again."""
    client = _client(srv, ttl_s=300)
    p = client.get_prompt("greet")
    assert (p.version, p.label, p.stale, p.is_fallback) == (1, "production", False, False)
    assert p.render(who="Ann") == "Hello Ann!" and p.messages(who="B") == [{"role": "user", "content": "Hello B!"}]
    assert client.get_prompt("greet", version=2).render(who="Ann") == "Hi Ann."
    srv.api.put("/api/prompts/greet/labels/production", json={"version": 2})
    assert client.get_prompt("greet") is p
    client.invalidate("greet")
    assert client.get_prompt("greet").version == 2


def test_stale_while_revalidate(srv: Stoppable) -> None:
    """Past the TTL the cached version is returned at once, flagged stale, while a refresh fetches the new one."""
    client = _client(srv, ttl_s=0.2)
    assert client.get_prompt("greet").version == 1
    srv.api.put("/api/prompts/greet/labels/production", json={"version": 2})
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        p = client.get_prompt("greet")
        seen.append((p.version, p.stale))
        if p.version == 2 and not p.stale:
            break
        time.sleep(0.02)
    assert (1, True) in seen and seen[-1] == (2, False)


def test_server_gone_serves_last_good_version_flagged_stale(srv: Stoppable) -> None:
    """Server stopped: the cached version keeps serving with stale=True; uncached prompts raise or use the fallback."""
    client = _client(srv, ttl_s=0)
    assert client.get_prompt("greet").stale is False
    srv.stop()
    for _ in range(3):
        p = client.get_prompt("greet")
        assert (p.version, p.stale, p.render(who="x")) == (1, True, "Hello x!")
    with pytest.raises(UpstreamError) as err:
        client.get_prompt("never-fetched")
    assert err.value.code == "prompt_server_unreachable"
    fb = client.get_prompt("never-fetched", fallback="Fallback for {{ who }}")
    assert (fb.is_fallback, fb.version, fb.render(who="y")) == (True, None, "Fallback for y")
    chat = client.get_prompt("other", fallback=[{"role": "system", "content": "Be {{ tone }}"}])
    assert chat.messages(tone="kind") == [{"role": "system", "content": "Be kind"}]


def test_missing_prompt_raises_or_falls_back(srv: Stoppable) -> None:
    """An unknown prompt or label raises NotFoundError, or returns the fallback flagged is_fallback."""
    client = _client(srv)
    with pytest.raises(NotFoundError):
        client.get_prompt("nope")
    assert client.get_prompt("nope", fallback="x").is_fallback
    with pytest.raises(NotFoundError):
        client.get_prompt("greet", label="nolabel")


def test_module_level_get_prompt_uses_the_environment(srv: Stoppable, tmp_path: Path) -> None:
    """`llmops.get_prompt` in a fresh interpreter, configured by OPENAI_BASE_URL / OPENAI_API_KEY only, and
    `import llmops` loads neither FastAPI nor SQLAlchemy."""
    code = (
        "import sys, llmops\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'jinja2', 'httpx') if m in sys.modules]\n"
        "p = llmops.get_prompt('greet', label='production')\n"
        "server = [m for m in ('fastapi', 'sqlalchemy', 'uvicorn') if m in sys.modules]\n"
        "print(heavy, server, p.version, p.render(who='env'))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "OPENAI_BASE_URL": srv.base_url + "/v1", "OPENAI_API_KEY": srv.key}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] [] 1 Hello env!"
