"""Per-key rpm/tpm set when the key is created (``POST /api/keys`` body, ``llmops keys create --rpm --tpm``): stored
as the key's rate limit in the rate-limit store, enforced on the next call, shown when listing keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gateway_limits.conftest import PRICED, priced_config
from tests.support.fake_upstream import FakeUpstream

LLMOPS = str(Path(sys.executable).parent / "llmops")
BODY = {"model": PRICED, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def test_key_created_with_rpm_and_tpm_is_limited_and_listed(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """rpm=2, tpm=100000 in the creation body: the answer echoes them, GET /api/rate-limits holds the key's limit,
    GET /api/keys shows them on the key (null on keys without one), and the third call in a minute is 429."""
    srv = server_factory(config=priced_config(fake_upstream))
    api = srv.client()
    made = api.post("/api/keys", json={"name": "limited", "rpm": 2, "tpm": 100_000})
    assert made.status_code == 201, made.text
    key = made.json()
    assert key["rpm"] == 2 and key["tpm"] == 100_000 and key["secret"].startswith("sk-llmops-")
    stored = api.get("/api/rate-limits").json()["data"]
    assert [(r["scope"], r["subject"], r["rpm"], r["tpm"]) for r in stored] == [("key", key["key_id"], 2, 100_000)]
    listed = {k["key_id"]: k for k in api.get("/api/keys").json()["data"]}
    assert (listed[key["key_id"]]["rpm"], listed[key["key_id"]]["tpm"]) == (2, 100_000)
    assert all(k["rpm"] is None for kid, k in listed.items() if kid != key["key_id"])
    user = {"Authorization": f"Bearer {key['secret']}"}
    codes = [api.post("/v1/chat/completions", json=BODY, headers=user).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_bad_limits_at_creation_create_no_key(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """rpm 0 or a string is 400 invalid_value naming the field, and no key was created."""
    srv = server_factory(config=priced_config(fake_upstream))
    api = srv.client()
    before = len(api.get("/api/keys").json()["data"])
    for body in ({"name": "x", "rpm": 0}, {"name": "x", "tpm": "lots"}):
        resp = api.post("/api/keys", json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == ("rpm" if "rpm" in body else "tpm")
    assert len(api.get("/api/keys").json()["data"]) == before


def test_cli_keys_create_with_rpm_tpm(tmp_path: Path) -> None:
    """`llmops keys create --rpm 30 --tpm 5000` stores the limit in the local store; `keys list` shows it;
    `--rpm 0` is a usage error."""
    env = {**os.environ, "LLMOPS_HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LLMOPS, *args], env=env, capture_output=True, text=True, timeout=120)

    made = run("keys", "create", "--name", "svc", "--rpm", "30", "--tpm", "5000")
    assert made.returncode == 0, made.stderr
    fields = dict(line.split(": ", 1) for line in made.stdout.strip().splitlines())
    assert fields["rate limit"] == "30 requests/min, 5000 tokens/min"
    listed = run("keys", "list")
    row = next(line for line in listed.stdout.splitlines() if fields["key_id"] in line)
    assert row.split()[-3:] == ["30", "5000", "active"]
    admin_row = next(line for line in listed.stdout.splitlines() if " admin " in line)
    assert admin_row.split()[-3:] == ["-", "-", "active"]
    bad = run("keys", "create", "--name", "x", "--rpm", "0")
    assert bad.returncode == 2 and "--rpm" in bad.stderr
