"""`llmops budget set|list|delete|rate-limit` as a real subprocess against a running server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gateway_limits.conftest import priced_config
from tests.support.fake_upstream import FakeUpstream

LLMOPS = str(Path(sys.executable).parent / "llmops")


def test_budget_commands_round_trip(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """set creates the budget shown by list (and by the API); rate-limit sets a user limit shown by list; delete
    removes the budget; bad combinations are usage errors; server errors are reported with their code."""
    srv = server_factory(config=priced_config(fake_upstream))
    env = {**os.environ, "LLMOPS_BASE_URL": srv.base_url, "LLMOPS_API_KEY": srv.key}

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LLMOPS, *args], env=env, capture_output=True, text=True, timeout=60)

    made = run(["budget", "set", "team-a", "--limit", "12.5", "--period", "day", "--tag", "team-a"])
    assert made.returncode == 0, made.stdout
    budget_id = made.stdout.split()[0]
    assert srv.client().get(f"/api/budgets/{budget_id}").json()["subject"] == "team-a"
    limited = run(["budget", "rate-limit", "--user", "*", "--rpm", "30"])
    assert limited.returncode == 0 and "user:* rpm=30" in limited.stdout
    listed = run(["budget", "list"])
    assert listed.returncode == 0 and "tag:team-a" in listed.stdout and "$    12.5000" in listed.stdout
    assert "user:*" in listed.stdout
    both = run(["budget", "set", "x", "--limit", "1", "--key", "k", "--user", "u"])
    assert both.returncode == 2
    missing = run(["budget", "set", "x", "--limit", "1", "--key", "key_nope"])
    assert missing.returncode == 1 and "not_found" in missing.stderr
    gone = run(["budget", "delete", budget_id])
    assert gone.returncode == 0 and srv.client().get(f"/api/budgets/{budget_id}").status_code == 404
