"""``llmops rag check COLLECTION``: run the corpus-health check on the server and gate on its findings.

Calls ``POST /api/rag/{collection}/check`` (the whole collection) like the other ``rag`` commands call the
server. Only OPEN findings count (resolved and ignored ones were judged by a person). ``--fail-on`` takes a
severity: ``contradiction`` fails on contradictions, ``duplicate`` on duplicates or contradictions, ``stale``
on stale documents, duplicates or contradictions. ``llmops rag ingest --fail-on contradiction`` uses the same
rule (:func:`failing`) on the documents it changed.

Exit codes: 0 no finding at or above ``--fail-on`` (or no ``--fail-on``), 1 such findings, 2 an error (server
unreachable, unknown collection, refused request).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmops.cli.client import _options
from llmops.cli.prompts import _Api

SEVERITY = ("contradiction", "duplicate", "stale")  # most severe first; --fail-on X fails on X and above
KINDS = ("contradiction", "duplicate", "stale", "never_retrieved", "negative_feedback")


def failing(findings: list[dict[str, Any]], fail_on: str) -> list[dict[str, Any]]:
    """Open findings at or above the ``fail_on`` severity."""
    levels = set(SEVERITY[: SEVERITY.index(fail_on) + 1])
    return [f for f in findings if f.get("kind") in levels and f.get("status", "open") == "open"]


def sources(f: dict[str, Any]) -> str:
    return " vs ".join(str(d.get("source") or d.get("document_id")) for d in f.get("documents", []))


def describe(f: dict[str, Any], *, width: int = 300) -> list[str]:
    """A finding as text lines: kind, subtype, documents, score, then the quoted passages."""
    lines = [f"- {f.get('kind')} [{f.get('subtype')}] {sources(f)} (score {f.get('score')}, {f.get('status')})"]
    lines += [f"    > {' '.join(str(p).split())[:width]}" for p in f.get("passages", []) if str(p).strip()]
    return lines


def junit(collection: str, findings: list[dict[str, Any]], fail_on: str | None) -> bytes:
    """One test case per open finding (a failure when at or above ``fail_on``) plus one for the check."""
    bad = {id(f) for f in failing(findings, fail_on)} if fail_on else set()
    open_ = [f for f in findings if f.get("status", "open") == "open"]
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root, "testsuite", name=f"corpus-health.{collection}", tests=str(len(open_) + 1), failures=str(len(bad))
    )
    ET.SubElement(suite, "testcase", classname=f"corpus-health.{collection}", name="check")
    for f in open_:
        case = ET.SubElement(
            suite, "testcase", classname=f"corpus-health.{collection}.{f.get('kind')}", name=sources(f)
        )
        text = "\n".join(describe(f, width=2000))
        if id(f) in bad:
            failure = ET.SubElement(case, "failure", message=f"{f.get('kind')} ({f.get('subtype')})")
            failure.text = text
        else:
            ET.SubElement(case, "system-out").text = text
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _table(collection: str, findings: list[dict[str, Any]], stats: dict[str, Any]) -> Table:
    table = Table(
        title=f"{collection}: {stats.get('documents', '?')} documents, {stats.get('claims', '?')} claims, "
        f"{stats.get('candidate_pairs', '?')} candidate pairs, {stats.get('seconds', '?')} s"
    )
    for col in ("kind", "open", "resolved", "ignored"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    counts = Counter((f.get("kind"), f.get("status")) for f in findings)
    for kind in KINDS:
        table.add_row(kind, *(str(counts[kind, s]) for s in ("open", "resolved", "ignored")))
    return table


@click.command("check")
@click.argument("collection")
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITY),
    default=None,
    help="Exit 1 when an open finding of this severity or above exists (contradiction > duplicate > stale).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a JUnit XML.")
@_options
def check(
    collection: str,
    fail_on: str | None,
    as_json: bool,
    junit_path: Path | None,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Check COLLECTION for contradictions, duplicates, stale and unused documents (exit 0 ok, 1 findings, 2 error)."""
    console = Console(stderr=True)
    api = _Api(base_url, api_key)
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["res"] = api.call("POST", f"/api/rag/{quote(collection, safe='')}/check", json={})
        except click.ClickException as exc:
            outcome["error"] = exc.message

    worker = threading.Thread(target=call, name="llmops-rag-check", daemon=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    bar = Progress(*columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
    with bar as progress:  # indeterminate: the server answers when the whole check is done
        progress.add_task(f"checking {collection}", total=None)
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
    if "error" in outcome:  # errors exit 2: 1 means "findings"
        click.echo(f"Error: {outcome['error']}", err=True)
        sys.exit(2)
    res: dict[str, Any] = outcome["res"]
    findings: list[dict[str, Any]] = res.get("findings", [])
    if junit_path is not None:
        junit_path.write_bytes(junit(collection, findings, fail_on))
    if as_json:
        click.echo(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
    else:
        Console(width=120).print(_table(collection, findings, res.get("stats", {})))
        for f in findings:
            if f.get("status") == "open":
                click.echo("\n".join(describe(f)))
        for note in res.get("notes", []):
            click.echo(f"note: {note}")
    bad = failing(findings, fail_on) if fail_on else []
    if bad:
        click.echo(f"{len(bad)} open finding(s) at or above {fail_on!r}", err=True)
        sys.exit(1)
