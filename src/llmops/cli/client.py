"""CLI commands that talk to a running server over HTTP: ``llmops models list``, ``llmops chat``.

Server and key come from ``--base-url`` / ``--api-key``, else ``LLMOPS_BASE_URL`` / ``LLMOPS_API_KEY``,
else ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``, else http://127.0.0.1:4100 and the admin key saved by the
first ``llmops serve`` in LLMOPS_HOME.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from llmops.core.settings import Settings


def _base_url(value: str | None) -> str:
    url = value or os.environ.get("LLMOPS_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:4100"
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def _api_key(value: str | None) -> str:
    key = value or os.environ.get("LLMOPS_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    saved = Path(Settings().home) / "admin_key"
    if saved.exists():
        return saved.read_text().strip()
    raise click.ClickException("no API key: pass --api-key or set LLMOPS_API_KEY")


def _options(f: Any) -> Any:
    f = click.option("--base-url", default=None, help="Server URL (env LLMOPS_BASE_URL).")(f)
    return click.option("--api-key", default=None, help="API key (env LLMOPS_API_KEY).")(f)


def _fail(resp: httpx.Response) -> None:
    try:
        err = resp.json()["error"]
        msg = f"{err.get('message')} ({err.get('code')})"
    except (ValueError, KeyError, TypeError):
        msg = resp.text[:300]
    raise click.ClickException(f"HTTP {resp.status_code}: {msg}")


@click.group()
def models() -> None:
    """Models (aliases) served by the gateway."""


@models.command("list")
@_options
def models_list(base_url: str | None, api_key: str | None) -> None:
    """List the models a running server serves."""
    try:
        resp = httpx.get(f"{_base_url(base_url)}/v1/models", headers={"authorization": f"Bearer {_api_key(api_key)}"})
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    if resp.status_code != 200:
        _fail(resp)
    for m in resp.json()["data"]:
        click.echo(f"{m['id']:<24} {m.get('description') or ''}")


@click.command()
@click.argument("prompt")
@click.option("--model", "-m", default="local", show_default=True)
@click.option("--system", default=None, help="System message.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=None)
@_options
def chat(
    prompt: str,
    model: str,
    system: str | None,
    max_tokens: int,
    temperature: float | None,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Send PROMPT to a running server and stream the answer to the terminal."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True, "max_tokens": max_tokens}
    if temperature is not None:
        body["temperature"] = temperature
    headers = {"authorization": f"Bearer {_api_key(api_key)}"}
    try:
        with httpx.stream(
            "POST",
            f"{_base_url(base_url)}/v1/chat/completions",
            json=body,
            headers=headers,
            timeout=httpx.Timeout(120.0),
        ) as resp:
            if resp.status_code != 200:
                resp.read()
                _fail(resp)
            _print_stream(resp)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc


def _print_stream(resp: httpx.Response) -> None:
    for line in resp.iter_lines():
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            sys.stdout.write("\n")
            return
        event = orjson.loads(line[6:])
        if "error" in event:
            sys.stdout.write("\n")
            raise click.ClickException(f"stream failed: {event['error'].get('message')}")
        for choice in event.get("choices") or []:
            sys.stdout.write((choice.get("delta") or {}).get("content") or "")
            sys.stdout.flush()
    raise click.ClickException("stream ended without [DONE]")
