"""``llmops rag``: ingest files into a collection, search it, evaluate retrieval.

Files are parsed HERE (text, Markdown, HTML, PDF; see ``llmops.rag.loaders``) and pushed to the server's
``/api/rag`` API in batches: the server owns chunking, embeddings and the index. Per-file problems are
reported with their reason and the rest of the batch goes on. Talks to the server like ``llmops prompt``
(``--base-url`` / ``--api-key``). Exit codes: 0 done, 1 the server refused / a gate failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from llmops.cli.client import _options
from llmops.cli.prompts import _Api
from llmops.cli.rag_check import check as check_command  # corpus health: `llmops rag check`
from llmops.cli.rag_check import failing  # corpus health: the gate rule shared with `llmops rag check`
from llmops.core.settings import Settings
from llmops.rag.loaders import LoadError, ParsedDocument, load_file

BATCH = 32


def _q(value: str) -> str:
    return quote(value, safe="/")


def _files(path: Path) -> tuple[Path, list[Path]]:
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise click.ClickException(f"{path}: no such file or directory")
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(path).parts)
    )
    return path, files


def _payload(doc_id: str, doc: ParsedDocument) -> dict[str, Any]:
    body: dict[str, Any] = {"id": doc_id, "source": doc_id, "title": doc.title, "metadata": {"source": doc_id}}
    if doc.format == "pdf":
        body.update(format="pdf", pages=list(doc.pages))
    else:  # HTML was converted to Markdown-like text locally
        body.update(format="markdown" if doc.format in ("markdown", "html") else "text", text=doc.text)
    return body


def _ensure_collection(api: _Api, name: str, chunk_size: int | None, chunk_overlap: int | None) -> None:
    if api.find(f"/api/rag/collections/{quote(name, safe='')}") is None:
        body: dict[str, Any] = {"name": name}
        if chunk_size:
            body["chunk_size"] = chunk_size
        if chunk_overlap is not None:
            body["chunk_overlap"] = chunk_overlap
        api.call("POST", "/api/rag/collections", json=body)


@click.group()
def rag() -> None:
    """RAG collections: ingest documents, search, evaluate retrieval."""


@rag.command("ingest")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--collection", "-c", required=True, help="Collection name (created if missing).")
@click.option("--sync", is_flag=True, help="Delete documents whose files vanished from PATH.")
@click.option("--fail-on", type=click.Choice(["contradiction"]), default=None, help="Exit 1 on new contradictions.")
@click.option("--chunk-size", type=int, default=None, help="Chunk size (characters) of a NEW collection.")
@click.option("--chunk-overlap", type=int, default=None, help="Chunk overlap (characters) of a NEW collection.")
@_options
def ingest(
    path: Path,
    collection: str,
    sync: bool,
    fail_on: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Parse PATH (a file or a directory, recursively) and push its documents to COLLECTION."""
    console = Console(stderr=True)
    api = _Api(base_url, api_key)
    _ensure_collection(api, collection, chunk_size, chunk_overlap)
    root, files = _files(path)
    max_bytes = Settings().rag.max_file_bytes
    errors: list[tuple[str, str]] = []
    totals: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": [], "removed": []}
    local_ids: set[str] = set()
    batch: list[dict[str, Any]] = []
    last_version = 0

    def flush() -> None:
        nonlocal last_version
        if batch:
            res = api.call("POST", f"/api/rag/{quote(collection, safe='')}/documents", json={"documents": batch})
            for key in ("added", "updated", "unchanged"):
                totals[key].extend(res[key])
            errors.extend((e["document_id"], e["reason"]) for e in res["errors"])
            last_version = max(last_version, res["index_version"])
            batch.clear()

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # no stdout/stderr redirection: the summary below must reach whoever holds sys.stdout (a pipe, a test runner)
    bar = Progress(
        *columns, console=console, transient=not console.is_terminal, redirect_stdout=False, redirect_stderr=False
    )
    with bar as progress:
        task = progress.add_task(f"ingest → {collection}", total=len(files))
        for f in files:
            doc_id = f.relative_to(root).as_posix()
            local_ids.add(doc_id)
            try:
                batch.append(_payload(doc_id, load_file(f, max_bytes=max_bytes, source=doc_id)))
            except LoadError as exc:
                errors.append((doc_id, exc.reason))
            if len(batch) >= BATCH:
                flush()
            progress.advance(task)
        flush()
    if sync:
        listed = api.call("GET", f"/api/rag/{quote(collection, safe='')}/documents")["data"]
        for doc in listed:
            if doc["id"] not in local_ids:
                res = api.call("DELETE", f"/api/rag/{quote(collection, safe='')}/documents/{_q(doc['id'])}")
                totals["removed"].extend(res["removed"])
                last_version = max(last_version, res["index_version"])
    _summary(totals, errors, last_version)
    if fail_on == "contradiction":
        _gate(api, collection, totals["added"] + totals["updated"])


def _summary(totals: dict[str, list[str]], errors: list[tuple[str, str]], version: int) -> None:
    counts = ", ".join(f"{len(v)} {k}" for k, v in totals.items())
    click.echo(f"{counts}, {len(errors)} failed" + (f"; index version {version}" if version else ""))
    for doc_id, reason in errors:
        click.echo(f"  skipped {doc_id}: {reason}", err=True)


def _gate(api: _Api, collection: str, changed: list[str]) -> None:
    if not changed:
        click.echo("no changed document to check")
        return
    res = api.call("POST", f"/api/rag/{quote(collection, safe='')}/check", json={"document_ids": changed})
    bad = failing(res.get("findings", []), "contradiction")  # open ones only, as `llmops rag check --fail-on`
    if not bad:
        click.echo("no contradiction found")
        return
    click.echo(f"{len(bad)} contradiction(s):", err=True)
    for f in bad:
        sources = " vs ".join(str(d.get("source") or d.get("document_id")) for d in f.get("documents", []))
        click.echo(f"- [{f.get('subtype')}] {sources} (score {f.get('score')})", err=True)
        for passage in f.get("passages", []):
            text = passage.get("text", passage) if isinstance(passage, dict) else passage
            click.echo(f"    > {str(text)[:300]}", err=True)
    sys.exit(1)


@rag.command("search")
@click.argument("query")
@click.option("--collection", "-c", required=True)
@click.option("-k", type=int, default=5, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "vector", "keyword"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON answer.")
@_options
def search(
    query: str, collection: str, k: int, mode: str, as_json: bool, base_url: str | None, api_key: str | None
) -> None:
    """Search COLLECTION for QUERY."""
    res = _Api(base_url, api_key).call(
        "POST", f"/api/rag/{quote(collection, safe='')}/search", json={"query": query, "k": k, "mode": mode}
    )
    if as_json:
        click.echo(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
        return
    for hit in res["data"]:
        c = hit["chunk"]
        where = (
            f"{hit['source']}"
            + (f" p.{c['page']}" if c["page"] else "")
            + (f" § {c['heading']}" if c["heading"] else "")
        )
        click.echo(f"{hit['rank']}. [{hit['score']:.4f}] {where}")
        click.echo("   " + c["text"][:240].replace("\n", " "))


@rag.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collection", "-c", required=True)
@click.option("-k", type=int, default=5, show_default=True)
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "vector", "keyword"]))
@click.option("--variant", "variants", multiple=True, help="SIZE:OVERLAP[:MODE] chunking to compare (in memory).")
@click.option("--json", "as_json", is_flag=True)
@_options
def evaluate(
    queries: Path,
    collection: str,
    k: int,
    modes: tuple[str, ...],
    variants: tuple[str, ...],
    as_json: bool,
    base_url: str | None,
    api_key: str | None,
) -> None:
    """Retrieval metrics of COLLECTION for labelled QUERIES (JSONL: {"query", "relevant": [ids or sources]})."""
    rows = [orjson.loads(line) for line in queries.read_text().splitlines() if line.strip()]
    specs = []
    for v in variants:
        size, _, rest = v.partition(":")
        overlap, _, mode = rest.partition(":")
        if not size.isdigit() or (overlap and not overlap.isdigit()):
            raise click.BadParameter(f"{v!r}: expected SIZE:OVERLAP[:MODE]", param_hint="--variant")
        specs.append({"chunk_size": int(size), "chunk_overlap": int(overlap or 0), "mode": mode or "hybrid"})
    body = {"queries": rows, "k": k, "modes": list(modes) or ["hybrid"], "variants": specs}
    res = _Api(base_url, api_key).call("POST", f"/api/rag/{quote(collection, safe='')}/evaluate", json=body)
    if as_json:
        click.echo(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{collection}: {len(rows)} queries, k={k}")
    names = ["hit_rate", "mrr", "ndcg", "context_precision", "context_recall"]
    for col in ["index", *names]:
        table.add_column(col)
    for r in res["reports"]:
        table.add_row(r["name"], *(f"{r['metrics'][n]:.3f}" for n in names))
    Console().print(table)


@rag.command("collections")
@_options
def collections(base_url: str | None, api_key: str | None) -> None:
    """List the project's collections."""
    for c in _Api(base_url, api_key).call("GET", "/api/rag/collections")["data"]:
        click.echo(f"{c['name']}\t{c['documents']} documents\t{c['chunks']} chunks\tindex v{c['index_version']}")


rag.add_command(check_command)  # corpus health: `llmops rag check COLLECTION` (cli/rag_check.py)
