"""Helpers of the batch tests: aliases on the fake upstream, JSONL builders, polling a batch to its end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import orjson
import yaml

from llmops.app import build_services, create_app
from llmops.core.settings import Settings
from tests.conftest import RunningServer, fake_config, openai_dep
from tests.support.fake_upstream import FakeUpstream, serve_in_thread

FINAL = ("completed", "failed", "cancelled", "expired")


def batch_config(fake: FakeUpstream, *, slow_ms: int = 200) -> dict[str, Any]:
    """``fast`` (the fake echoes), ``slow`` (each call waits ``slow_ms``) and ``embed`` (fake embeddings)."""
    return fake_config(
        fake,
        {"name": "fast", "deployments": [openai_dep(fake, "fake-model", retries=0)]},
        {"name": "slow", "deployments": [openai_dep(fake, f"fault:latency:ms={slow_ms}", retries=0)]},
        {"name": "embed", "deployments": [openai_dep(fake, "fake-embed", retries=0)]},
        retries=0,
    )


def chat_line(custom_id: str, text: str, model: str = "fast") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def jsonl(*lines: dict[str, Any] | bytes) -> bytes:
    return b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines)


def sdk(srv: RunningServer, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.v1, api_key=key or srv.key, max_retries=0)


def submit(client: openai.OpenAI, data: bytes, endpoint: str = "/v1/chat/completions", **extra: Any) -> Any:
    file = client.files.create(file=("input.jsonl", data), purpose="batch")
    return client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        **extra,
    )


def wait_for(client: openai.OpenAI, batch_id: str, statuses: tuple[str, ...] = FINAL, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [orjson.loads(line) for line in client.files.content(file_id).text.splitlines() if line.strip()]


@contextmanager
def serve_home(home: Path, config: dict[str, Any], **overrides: Any) -> Iterator[RunningServer]:
    """A server on ``home`` that can be stopped and started again on the same state (restart tests)."""
    config_path = home / "llmops.yaml"
    config_path.write_text(yaml.safe_dump(config))
    settings = Settings(home=home, config=config_path, **overrides)
    services = build_services(settings)
    app = create_app(settings, services=services)
    with serve_in_thread(app) as base:
        saved = home / "test_admin_key"
        if services.bootstrap_key is not None:
            saved.write_text(services.bootstrap_key.secret)
        yield RunningServer(base, saved.read_text(), services, home)
