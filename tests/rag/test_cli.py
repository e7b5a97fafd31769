"""`llmops rag` against a real server: ingest a directory (text, Markdown, HTML, PDF and bad files), re-ingest
incrementally, sync deletions, search, evaluate; results asserted through the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from llmops.cli.main import cli
from tests.conftest import RunningServer
from tests.rag.conftest import CORPUS
from tests.rag.pdf import make_pdf


@pytest.fixture
def srv(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory()


def _run(srv: RunningServer, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--base-url", srv.base_url, "--api-key", srv.key], catch_exceptions=False)


def test_ingest_directory_incrementally_with_sync(srv: RunningServer, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "policies").mkdir(parents=True)
    for name, text in CORPUS.items():
        (docs / "policies" / f"{name}.md").write_text(text)
    (docs / "faq.html").write_text("<h1>FAQ</h1><p>Our office opens at 9am.</p><script>x()</script>")
    (docs / "manual.pdf").write_bytes(make_pdf(["Pump maintenance every 6 months", "Valve torque 40 Nm"]))
    (docs / "notes.txt").write_text("Plain notes about the warehouse.")
    (docs / "empty.txt").write_text("")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n")
    first = _run(srv, "rag", "ingest", str(docs), "--collection", "kb")
    assert first.exit_code == 0, first.output
    assert "6 added" in first.output and "2 failed" in first.output
    assert "skipped empty.txt: empty file" in first.output and "logo.png: unsupported file type" in first.output
    api = srv.client()
    ids = [d["id"] for d in api.get("/api/rag/kb/documents").json()["data"]]
    assert ids == [
        "faq.html",
        "manual.pdf",
        "notes.txt",
        "policies/refunds.md",
        "policies/security.md",
        "policies/shipping.md",
    ]
    pdf = api.get("/api/rag/kb/documents/manual.pdf").json()
    assert [c["page"] for c in pdf["chunks"]] == [1, 2]
    again = _run(srv, "rag", "ingest", str(docs), "--collection", "kb")
    assert "0 added, 0 updated, 6 unchanged" in again.output
    (docs / "notes.txt").write_text("Plain notes about the warehouse, updated.")
    (docs / "faq.html").unlink()
    synced = _run(srv, "rag", "ingest", str(docs), "--collection", "kb", "--sync")
    assert "1 updated" in synced.output and "1 removed" in synced.output and "index version 3" in synced.output
    found = _run(srv, "rag", "search", "valve torque", "--collection", "kb", "-k", "1")
    assert found.exit_code == 0 and "manual.pdf p.2" in found.output
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"query": "valve torque", "relevant": ["manual.pdf"]}\n'
        '{"query": "2FA for admins", "relevant": ["policies/security.md"]}\n'
    )
    ev = _run(srv, "rag", "eval", str(queries), "--collection", "kb", "-k", "3", "--variant", "100:10", "--json")
    assert ev.exit_code == 0, ev.output
    reports = json.loads(ev.output)["reports"]
    assert [r["name"] for r in reports] == ["index v3 hybrid", "chunk 100/10 hybrid"]
    assert reports[0]["metrics"]["hit_rate"] == 1.0
    table = _run(srv, "rag", "eval", str(queries), "--collection", "kb")
    assert table.exit_code == 0 and "hit_rate" in table.output


def test_fail_on_contradiction_gate(srv: RunningServer, tmp_path: Path) -> None:
    """`--fail-on contradiction` asks the corpus-health check about the changed documents: a consistent corpus
    passes (exit 0); a new document contradicting an existing one fails the ingest (exit 1) naming both."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nCustomers can return items within 30 days of delivery.\n")
    (docs / "security.md").write_text("# Security\n\nPasswords are rotated every 90 days.\n")
    ok = _run(srv, "rag", "ingest", str(docs), "--collection", "kb", "--fail-on", "contradiction")
    assert ok.exit_code == 0, ok.output
    (docs / "faq.md").write_text("# FAQ\n\nCustomers can return items within 14 days of delivery.\n")
    gate = _run(srv, "rag", "ingest", str(docs), "--collection", "kb", "--fail-on", "contradiction")
    assert gate.exit_code == 1, gate.output
    assert "contradiction" in gate.output and "faq.md" in gate.output and "refunds.md" in gate.output
