"""`llmops rag check` against a real server: exit codes (0 ok, 1 findings at or above --fail-on, 2 error),
severities, --json, --junit, and agreement with the `llmops rag ingest --fail-on contradiction` gate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx

from tests.conftest import RunningServer
from tests.rag_health.conftest import CORPUS
from tests.rag_health.test_api import _docs

CONFLICT = ["pet-policy.md", "office-guide-berlin.md"]
DUPLICATE = ["webhooks.md", "webhooks-partner.md"]
STALE = ["vpn-setup-2022.md"]


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _run(srv: RunningServer, *args: str, base_url: str | None = None, api_key: str | None = None) -> Run:
    """The real `llmops` executable in a subprocess: real exit codes and streams."""
    argv = [sys.executable, "-c", "from llmops.cli.main import main; main()", *args]
    argv += ["--base-url", base_url or srv.base_url, "--api-key", api_key or srv.key]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})
    return Run(done.returncode, done.stdout, done.stderr)


def _ignore(c: httpx.Client, collection: str, kind: str) -> None:
    for f in c.get(f"/api/rag/{collection}/findings", params={"kind": kind}).json()["findings"]:
        assert c.post(f"/api/rag/{collection}/findings/{f['finding_id']}", json={"action": "ignore"}).status_code == 200


def test_exit_codes_follow_severity_of_open_findings(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    srv = server_factory(rag_health={"background": False})
    with srv.client() as c:
        c.post("/api/rag/collections", json={"name": "kb"})
        assert c.post("/api/rag/kb/documents", json={"documents": _docs(CONFLICT + DUPLICATE + STALE)}).is_success

        res = _run(srv, "rag", "check", "kb", "--fail-on", "contradiction")
        assert res.exit_code == 1, res.output
        assert "pet-policy.md" in res.stdout and "office-guide-berlin.md" in res.stdout  # names its documents
        assert "Dogs are not allowed" in res.stdout  # and quotes the passages
        assert "contradiction" in res.stdout and "duplicate" in res.stdout  # the summary table
        assert "at or above 'contradiction'" in res.stderr

        res = _run(srv, "rag", "check", "kb", "--json", "--junit", str(tmp_path / "out.xml"), "--fail-on", "stale")
        assert res.exit_code == 1
        body = json.loads(res.stdout)
        kinds = [f["kind"] for f in body["findings"] if f["status"] == "open"]
        assert {"contradiction", "duplicate", "stale"} <= set(kinds)
        suite = ET.parse(tmp_path / "out.xml").getroot().find("testsuite")
        assert suite is not None
        failing = [k for k in kinds if k in ("contradiction", "duplicate", "stale")]
        assert int(suite.get("failures", "-1")) == len(failing) == len(suite.findall("testcase/failure"))

        assert _run(srv, "rag", "check", "kb").exit_code == 0  # no --fail-on: report only

        _ignore(c, "kb", "contradiction")  # a person judged it: it no longer fails the gate
        assert _run(srv, "rag", "check", "kb", "--fail-on", "contradiction").exit_code == 0
        assert _run(srv, "rag", "check", "kb", "--fail-on", "duplicate").exit_code == 1  # duplicates are open
        _ignore(c, "kb", "duplicate")
        assert _run(srv, "rag", "check", "kb", "--fail-on", "duplicate").exit_code == 0
        assert _run(srv, "rag", "check", "kb", "--fail-on", "stale").exit_code == 1  # the stale VPN guide
        _ignore(c, "kb", "stale")
        assert _run(srv, "rag", "check", "kb", "--fail-on", "stale").exit_code == 0


def test_errors_exit_2(server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory()
    res = _run(srv, "rag", "check", "no-such-collection", "--fail-on", "contradiction")
    assert res.exit_code == 2 and "404" in res.output
    res = _run(srv, "rag", "check", "kb", base_url="http://127.0.0.1:9")
    assert res.exit_code == 2 and "cannot reach the server" in res.output
    res = _run(srv, "rag", "check", "kb", api_key="sk-wrong")
    assert res.exit_code == 2 and "401" in res.output
    res = _run(srv, "rag", "check", "kb", "--fail-on", "typo")
    assert res.exit_code == 2  # click's usage error


def test_ingest_gate_and_check_agree(server_factory: Callable[..., RunningServer], tmp_path: Path) -> None:
    """Both fail on the same open contradiction and both pass once it is ignored."""
    srv = server_factory()
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in CONFLICT:
        shutil.copy(CORPUS / "docs" / name, docs / name)
    res = _run(srv, "rag", "ingest", str(docs), "--collection", "gate", "--fail-on", "contradiction")
    assert res.exit_code == 1, res.output
    assert {"pet-policy.md vs office-guide-berlin.md", "office-guide-berlin.md vs pet-policy.md"} & {
        line.split("] ", 1)[-1].split(" (score")[0] for line in res.stderr.splitlines()
    }
    assert _run(srv, "rag", "check", "gate", "--fail-on", "contradiction").exit_code == 1
    with srv.client() as c:
        _ignore(c, "gate", "contradiction")
    (docs / "pet-policy.md").write_text((docs / "pet-policy.md").read_text() + "\n\nQuestions go to the office team.\n")
    res = _run(srv, "rag", "ingest", str(docs), "--collection", "gate", "--fail-on", "contradiction")
    assert res.exit_code == 0, res.output
    assert "no contradiction found" in res.stdout
    assert _run(srv, "rag", "check", "gate", "--fail-on", "contradiction").exit_code == 0
