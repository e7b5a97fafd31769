"""``llmops batch``: submit a JSONL file as a batch (optionally waiting with a progress bar), list, get, cancel,
download its output / error files. Talks to a running server over ``/v1/files`` and ``/v1/batches`` (server and key
as for ``llmops chat``: ``--base-url`` / ``--api-key`` or ``LLMOPS_BASE_URL`` / ``LLMOPS_API_KEY``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmops.cli.client import _api_key, _base_url, _fail, _options

FINAL = ("completed", "failed", "cancelled", "expired")


def _client(base_url: str | None, api_key: str | None) -> httpx.Client:
    return httpx.Client(
        base_url=_base_url(base_url), headers={"authorization": f"Bearer {_api_key(api_key)}"}, timeout=120
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        resp = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    if resp.status_code != 200:
        _fail(resp)
    return resp


def _summary(b: dict[str, Any]) -> str:
    c = b["request_counts"]
    return f"{b['id']}  {b['status']:<11} {c['completed']}/{c['total']} done, {c['failed']} failed"


def _wait(client: httpx.Client, batch_id: str, interval: float) -> dict[str, Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(batch_id, total=None)
        while True:
            b = _call(client, "GET", f"/v1/batches/{batch_id}").json()
            c = b["request_counts"]
            progress.update(
                task,
                total=c["total"] or None,
                completed=c["completed"] + c["failed"],
                description=f"{batch_id} {b['status']}",
            )
            if b["status"] in FINAL:
                return b  # type: ignore[no-any-return]
            time.sleep(interval)


@click.group("batch")
def batch() -> None:
    """Batch inference (OpenAI-compatible /v1/batches)."""


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--endpoint",
    type=click.Choice(["/v1/chat/completions", "/v1/embeddings"]),
    default="/v1/chat/completions",
    show_default=True,
)
@click.option("--metadata", "-m", multiple=True, help="key=value (repeatable).")
@click.option("--wait", "wait_", is_flag=True, help="Follow progress with a bar until the batch ends.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls with --wait.")
@_options
def submit(
    file: Path,
    endpoint: str,
    metadata: tuple[str, ...],
    wait_: bool,
    interval: float,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Upload FILE (one request per line) and create a batch; prints the batch id."""
    meta = {}
    for pair in metadata:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--metadata")
        meta[key] = value
    with _client(base_url, api_key) as client, file.open("rb") as fh:
        uploaded = _call(client, "POST", "/v1/files", files={"file": (file.name, fh)}, data={"purpose": "batch"})
        body = {"input_file_id": uploaded.json()["id"], "endpoint": endpoint, "completion_window": "24h"}
        created = _call(client, "POST", "/v1/batches", json={**body, "metadata": meta or None}).json()
        click.echo(created["id"])
        if wait_:
            done = _wait(client, created["id"], interval)
            click.echo(_summary(done))
            if done["status"] != "completed":
                raise click.ClickException(f"batch ended {done['status']}")


@batch.command("list")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@_options
def list_command(limit: int, base_url: str | None, api_key: str | None) -> None:
    """The project's batches, newest first."""
    with _client(base_url, api_key) as client:
        rows = _call(client, "GET", "/v1/batches", params={"limit": limit}).json()["data"]
    for b in rows:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(b["created_at"]))
        click.echo(f"{_summary(b)}  {b['endpoint']}  {created}")


@batch.command("get")
@click.argument("batch_id")
@_options
def get_command(batch_id: str, base_url: str | None, api_key: str | None) -> None:
    """One batch as JSON."""
    with _client(base_url, api_key) as client:
        click.echo(_call(client, "GET", f"/v1/batches/{batch_id}").text)


@batch.command("cancel")
@click.argument("batch_id")
@_options
def cancel_command(batch_id: str, base_url: str | None, api_key: str | None) -> None:
    """Cancel a batch (lines in flight finish; the files then hold what was done)."""
    with _client(base_url, api_key) as client:
        click.echo(_summary(_call(client, "POST", f"/v1/batches/{batch_id}/cancel").json()))


@batch.command("download")
@click.argument("batch_id")
@click.option("--errors", is_flag=True, help="The error file instead of the output file.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@_options
def download(batch_id: str, errors: bool, out: Path | None, base_url: str | None, api_key: str | None) -> None:
    """The batch's output (or error) file, JSON lines."""
    with _client(base_url, api_key) as client:
        b = _call(client, "GET", f"/v1/batches/{batch_id}").json()
        file_id = b["error_file_id" if errors else "output_file_id"]
        if not file_id:
            raise click.ClickException(
                f"batch {batch_id} has no {'error' if errors else 'output'} file ({b['status']})"
            )
        content = _call(client, "GET", f"/v1/files/{file_id}/content").content
    if out is None:
        click.echo(content.decode(), nl=False)
    else:
        out.write_bytes(content)
        click.echo(f"wrote {len(content)} bytes to {out}")
