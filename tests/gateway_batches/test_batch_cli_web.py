"""``llmops batch`` against a real server, and the Batches page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import orjson
from click.testing import CliRunner

from llmops.cli.main import cli
from tests.gateway_batches.conftest import batch_config, chat_line, jsonl, sdk, submit, wait_for
from tests.support.fake_upstream import FakeUpstream


def test_cli_submit_wait_list_get_download(server_factory, fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """submit --wait uploads, runs to completion and prints the summary; list/get show it; download writes the
    output (and --errors the error) file; cancel of a finished batch fails with the server's error."""
    srv = server_factory(config=batch_config(fake_upstream))
    conn = ["--base-url", srv.base_url, "--api-key", srv.key]
    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl(chat_line("a", "cli one"), chat_line("b", "cli two"), b"oops"))
    runner = CliRunner()
    done = runner.invoke(cli, ["batch", "submit", str(path), "--wait", "--interval", "0.1", "-m", "team=x", *conn])
    assert done.exit_code == 0, done.output
    batch_id = re.findall(r"batch_[0-9a-f]{24}\b", done.output)[0]  # the output also holds the progress bar
    assert batch_id.startswith("batch_") and "completed" in done.output and "2/3 done, 1 failed" in done.output
    listed = runner.invoke(cli, ["batch", "list", *conn])
    assert listed.exit_code == 0 and batch_id[:12] in listed.output
    got = runner.invoke(cli, ["batch", "get", batch_id, *conn])
    assert got.exit_code == 0, got.output
    assert orjson.loads(got.output)["metadata"] == {"team": "x"}
    out = tmp_path / "out.jsonl"
    dl = runner.invoke(cli, ["batch", "download", batch_id, "-o", str(out), *conn])
    assert dl.exit_code == 0, dl.output
    assert [orjson.loads(line)["custom_id"] for line in out.read_text().splitlines()] == ["a", "b"]
    errs = runner.invoke(cli, ["batch", "download", batch_id, "--errors", *conn])
    assert orjson.loads(errs.output.strip())["error"]["code"] == "invalid_json"
    cancel = runner.invoke(cli, ["batch", "cancel", batch_id, *conn])
    assert cancel.exit_code == 1 and "batch_not_active" in cancel.output


def test_batches_page_shows_progress(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """The Batches page lists the project's batch with its counts, a progress bar and its metadata; the nav links it."""
    srv = server_factory(config=batch_config(fake_upstream))
    client = sdk(srv)
    batch = submit(client, jsonl(chat_line("a", "x"), b"bad"), metadata={"owner": "page-test"})
    wait_for(client, batch.id)
    page = httpx.get(srv.base_url + "/batches", cookies={"llmops_key": srv.key}, timeout=30)
    assert page.status_code == 200
    assert batch.id in page.text and "owner=page-test" in page.text
    assert '<progress max="2" value="2"' in page.text and "1 / 1 / 2" in page.text
    assert 'href="/batches"' in page.text
