"""``llmops eval``: the CI gate (``eval run eval.yaml``) and datasets, in-process on a local SQLite database.

``--db`` (env ``LLMOPS_EVAL_DB``, default ``./.llmops-eval.db``) holds datasets and run results, so
``--baseline RUN_ID`` can compare with an earlier run. Exit codes: 0 pass, 1 fail, 2 error (bad spec).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from llmops.cli.client import _api_key, _base_url, _fail, _options
from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import LlmopsError

_db_option = click.option(
    "--db", envvar="LLMOPS_EVAL_DB", default=".llmops-eval.db", show_default=True, help="SQLite file for results."
)
_project_option = click.option("--project", default="default", show_default=True)


def _engine(db: str) -> Any:
    eng = create_db_engine(f"sqlite:///{Path(db).resolve()}")
    upgrade(eng)
    return eng


@click.group("eval")
def eval_group() -> None:
    """Evaluation: CI gate runs and datasets."""


@eval_group.command("run")
@click.argument("spec_path", type=click.Path(path_type=Path))
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="Write a JUnit XML report.")
@click.option("--baseline", help="Fail on a significant regression against this run id.")
@click.option("--run-id", help="Resume (or name) this run.")
@click.option(
    "--base-url",
    envvar="OPENAI_BASE_URL",
    help="A running llmops server's /v1 URL, for prompt and model targets (env OPENAI_BASE_URL).",
)
@click.option("--api-key", envvar="OPENAI_API_KEY", help="Its API key (env OPENAI_API_KEY).")
@_db_option
@_project_option
def run_cmd(
    spec_path: Path,
    junit_path: Path | None,
    baseline: str | None,
    run_id: str | None,
    base_url: str | None,
    api_key: str | None,
    db: str,
    project: str,
) -> None:
    """Run eval.yaml; exit 0 pass, 1 fail, 2 error."""
    from llmops.evals.gate import junit_xml, load_spec, run_gate

    console = Console()
    try:
        spec = load_spec(spec_path)
        engine = _engine(db)
        with Progress(
            console=Console(stderr=True), transient=True, redirect_stdout=False, redirect_stderr=False
        ) as progress:
            task = progress.add_task("evaluating", total=None)
            report = asyncio.run(
                run_gate(
                    spec,
                    engine,
                    project_id=project,
                    run_id=run_id,
                    baseline=baseline,
                    on_item=lambda: progress.advance(task),
                    base_url=base_url,
                    api_key=api_key,
                )
            )
    except LlmopsError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(2)
    table = Table(title=f"eval run {report.run_id}")
    for col in ("scorer", "mean", "threshold", "items", "vs baseline", "result"):
        table.add_column(col)
    for v in report.verdicts:
        cmp = ""
        if v.comparison is not None:
            c = v.comparison
            cmp = f"{c.delta:+.3f} [{c.ci_low:+.3f},{c.ci_high:+.3f}] p={c.p_value:.3f}"
        table.add_row(
            v.name,
            "-" if v.mean is None else f"{v.mean:.3f}",
            "-" if v.threshold is None else f"{v.threshold:.2f}",
            str(v.scored),
            cmp,
            "PASS" if v.passed else "FAIL",
        )
    console.print(table)
    console.print(f"run_id: {report.run_id}  items: {report.summary.done} errors: {report.summary.errors}")
    if junit_path:
        junit_path.write_text(junit_xml(report))
    sys.exit(0 if report.passed else 1)


@eval_group.group("dataset")
def dataset_group() -> None:
    """Versioned datasets."""


def _svc(db: str) -> Any:
    from llmops.evals.datasets import DatasetService

    return DatasetService(_engine(db))


@dataset_group.command("create")
@click.argument("name")
@_db_option
@_project_option
def ds_create(name: str, db: str, project: str) -> None:
    v = asyncio.run(_svc(db).create(project, name))
    click.echo(f"{v.name} v{v.version}")


@dataset_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@_db_option
@_project_option
def ds_import(name: str, file: Path, db: str, project: str) -> None:
    fmt = "csv" if file.suffix == ".csv" else "jsonl"
    try:
        v = asyncio.run(_svc(db).import_text(project, name, file.read_text(), fmt=fmt))
    except LlmopsError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(2)
    click.echo(f"{v.name} v{v.version}: {len(v.items)} items")


@dataset_group.command("export")
@click.argument("name")
@click.option("--version", type=int)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@_db_option
@_project_option
def ds_export(name: str, version: int | None, fmt: str, db: str, project: str) -> None:
    try:
        click.echo(asyncio.run(_svc(db).export_text(project, name, version, fmt)), nl=False)
    except LlmopsError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(2)


@dataset_group.command("list")
@_db_option
@_project_option
def ds_list(db: str, project: str) -> None:
    for d in asyncio.run(_svc(db).list_datasets(project)):
        click.echo(f"{d['name']}\tv{d['version']}")


@dataset_group.command("from-traces")
@click.argument("name")
@click.option("--trace-id", help="Add this one trace (its LLM spans).")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Trace filter, as on GET /api/traces (e.g. tag=prod, model=gpt-4o); repeatable.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Also write the new version as JSONL here.")
@_options
def ds_from_traces(
    name: str,
    trace_id: str | None,
    filters: tuple[str, ...],
    limit: int,
    out: Path | None,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Build (or extend) dataset NAME on a running server from its traces; prints the new version."""
    if (trace_id is None) == (not filters):
        raise click.UsageError("give --trace-id or at least one --filter")
    flt: dict[str, list[str]] = {}
    for pair in filters:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--filter {pair!r} is not KEY=VALUE")
        flt.setdefault(key, []).append(value)
    body: dict[str, Any] = {"trace_id": trace_id} if trace_id else {"filter": flt, "limit": limit}
    headers = {"authorization": f"Bearer {_api_key(api_key)}"}
    try:
        with httpx.Client(base_url=_base_url(base_url), headers=headers, timeout=120) as api:
            _from_traces(api, name, body, out)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc


def _from_traces(api: httpx.Client, name: str, body: dict[str, Any], out: Path | None) -> None:
    created = api.post("/api/datasets", json={"name": name})
    if created.status_code not in (201, 409):
        _fail(created)
    resp = api.post(f"/api/datasets/{quote(name, safe='')}/items/from-traces", json=body)
    if resp.status_code != 201:
        _fail(resp)
    info = resp.json()
    click.echo(f"dataset {name!r} version {info['version']}: {info['added']} added, {info['item_count']} items")
    if out is not None:
        exported = api.get(f"/api/datasets/{quote(name, safe='')}/export", params={"format": "jsonl"})
        if exported.status_code != 200:
            _fail(exported)
        out.write_bytes(exported.content)
