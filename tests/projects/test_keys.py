"""Virtual keys: stored hashed only, scoped to a project, revocable; the CLI manages them."""

from __future__ import annotations

from llmops.cli.main import cli
from tests.conftest import RunningServer


def test_database_holds_no_key_material(server: RunningServer) -> None:
    """Neither the admin key nor a created key appears anywhere in the SQLite files."""
    created = server.services.projects.create_key("default", "ci")
    server.services.engine.dispose()
    blob = b"".join(p.read_bytes() for p in server.home.glob("llmops.db*"))
    assert server.key.encode() not in blob
    assert created.secret.encode() not in blob
    assert created.secret[10:30].encode() not in blob


class _SubprocessRunner:
    """Runs `llmops` in a child process: llama.cpp warm-ups in this process swap sys.stdout briefly,
    which would blank CliRunner's captured output."""

    def invoke(self, _cli, args):  # type: ignore[no-untyped-def]
        import os
        import subprocess
        import sys
        from pathlib import Path
        from types import SimpleNamespace

        exe = str(Path(sys.executable).parent / "llmops")
        done = subprocess.run([exe, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120)
        return SimpleNamespace(exit_code=done.returncode, output=done.stdout, stderr=done.stderr)


def _said(result) -> str:  # type: ignore[no-untyped-def]
    """Everything a CLI run told the user (stdout and stderr, however this click version splits them)."""
    return str(result.output) + str(getattr(result, "stderr", ""))


def test_cli_keys_create_list_revoke(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`llmops keys create/list/revoke` against a fresh LLMOPS_HOME (bootstraps project `default`)."""
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path))
    runner = _SubprocessRunner()
    out = runner.invoke(cli, ["keys", "create", "--project", "team-a", "--name", "svc", "--create-project"])
    assert out.exit_code == 0, out.output
    lines = dict(line.split(": ", 1) for line in out.output.strip().splitlines())
    assert lines["secret"].startswith("sk-llmops-")
    assert (tmp_path / "admin_key").exists()
    listed = runner.invoke(cli, ["keys", "list", "--project", "team-a"])
    assert lines["key_id"] in listed.output and "active" in listed.output
    assert lines["secret"] not in listed.output
    assert runner.invoke(cli, ["keys", "revoke", lines["key_id"]]).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["keys", "list"]).output
    again = runner.invoke(cli, ["keys", "revoke", lines["key_id"]])
    assert again.exit_code == 1 and "no active key" in _said(again)
    missing = runner.invoke(cli, ["keys", "create", "--project", "ghost", "--name", "x"])
    assert missing.exit_code == 1 and "'ghost' does not exist" in _said(missing)


def test_keys_api_is_admin_only_and_project_scoped(server: RunningServer) -> None:
    with server.client() as admin:
        created = admin.post("/api/keys", json={"name": "worker"}).json()
        assert created["secret"].startswith("sk-llmops-")
        ids = [k["key_id"] for k in admin.get("/api/keys").json()["data"]]
        assert created["key_id"] in ids
    with server.client(created["secret"]) as worker:
        assert worker.get("/api/keys").status_code == 403
        assert worker.get("/api/me").json()["key_name"] == "worker"
    server.services.projects.create_project("other")
    other = server.services.projects.create_key("other", "admin-b", is_admin=True)
    with server.client(other.secret) as b:
        assert created["key_id"] not in [k["key_id"] for k in b.get("/api/keys").json()["data"]]
        assert b.delete(f"/api/keys/{created['key_id']}").status_code == 404
