"""Files and batches through the official openai SDK against a real server and the fake upstream."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway_batches.conftest import (
    batch_config,
    chat_line,
    jsonl,
    lines_of,
    sdk,
    serve_home,
    submit,
    wait_for,
)
from tests.support.fake_upstream import FakeUpstream
from tests.support.postgres import create_database


def test_batch_runs_every_line_and_a_malformed_line_fails_alone(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Good lines complete with the upstream's reply (output file, OpenAI line shape); each malformed line (not
    JSON, wrong url, no custom_id, duplicate custom_id, unknown model) fails alone with its own error in the error
    file; counts add up; every call is a span tagged llmops.batch_id."""
    srv = server_factory(config=batch_config(fake_upstream))
    client = sdk(srv)
    good = [chat_line(f"ok-{i}", f"hello number {i}") for i in range(3)]
    data = jsonl(
        good[0],
        b"{not json",
        {**chat_line("wrong-url", "x"), "url": "/v1/completions"},
        {"method": "POST", "url": "/v1/chat/completions", "body": {"model": "fast", "messages": []}},
        good[1],
        chat_line("ok-0", "a duplicate custom_id"),
        chat_line("unknown-model", "x", model="no-such-alias"),
        good[2],
    )
    batch = submit(client, data, metadata={"job": "nightly"})
    assert batch.object == "batch" and batch.id.startswith("batch_") and batch.metadata == {"job": "nightly"}
    done = wait_for(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (8, 3, 5)
    assert done.completed_at and done.in_progress_at and done.finalizing_at
    out = lines_of(client, done.output_file_id)
    assert [o["custom_id"] for o in out] == ["ok-0", "ok-1", "ok-2"]
    for o, i in zip(out, range(3), strict=True):
        assert o["id"].startswith("batch_req_") and o["error"] is None
        assert o["response"]["status_code"] == 200 and o["response"]["request_id"].startswith("req_")
        assert o["response"]["body"]["choices"][0]["message"]["content"] == f"echo: hello number {i}"
    errors = {(e["custom_id"], (e["error"] or {}).get("code")): e for e in lines_of(client, done.error_file_id)}
    assert set(errors) == {
        (None, "invalid_json"),
        ("wrong-url", "mismatched_url"),
        (None, "missing_custom_id"),
        ("ok-0", "duplicate_custom_id"),
        ("unknown-model", None),
    }
    upstream_fail = errors[("unknown-model", None)]["response"]
    assert upstream_fail["status_code"] == 404 and upstream_fail["body"]["error"]["code"]
    srv.flush()
    traces = srv.client().get("/api/traces", params={"attr.llmops.batch_id": batch.id, "limit": 50}).json()["data"]
    assert len(traces) == 4  # 3 served + the unknown model (refused at routing, recorded)


def test_embeddings_batch(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """An /v1/embeddings batch returns the embedding list body per line."""
    srv = server_factory(config=batch_config(fake_upstream))
    client = sdk(srv)
    line = {"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "embed", "input": "hi"}}
    done = wait_for(client, submit(client, jsonl(line), endpoint="/v1/embeddings").id)
    assert done.status == "completed" and done.request_counts.completed == 1
    (out,) = lines_of(client, done.output_file_id)
    assert out["response"]["body"]["object"] == "list" and len(out["response"]["body"]["data"][0]["embedding"]) > 0


def test_files_api_and_validation(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """files.create/list/retrieve/content/delete; bad purpose, empty file, bad endpoint/window, unknown file,
    foreign ids and deleting a running batch's input answer precise OpenAI-envelope errors."""
    srv = server_factory(config=batch_config(fake_upstream, slow_ms=300))
    client = sdk(srv)
    data = jsonl(chat_line("a", "x"))
    f = client.files.create(file=("in.jsonl", data), purpose="batch")
    assert (f.object, f.purpose, f.bytes, f.filename, f.status) == ("file", "batch", len(data), "in.jsonl", "processed")
    assert client.files.retrieve(f.id).id == f.id
    assert client.files.content(f.id).content == data
    assert f.id in [x.id for x in client.files.list()]
    with pytest.raises(openai.BadRequestError) as bad:
        client.files.create(file=("in.jsonl", data), purpose="fine-tune")
    assert bad.value.body["code"] == "invalid_purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("in.jsonl", b""), purpose="batch")
    with pytest.raises(openai.BadRequestError) as bad:
        client.batches.create(input_file_id=f.id, endpoint="/v1/completions", completion_window="24h")
    assert bad.value.body["param"] == "endpoint"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]
    assert bad.value.body["param"] == "completion_window"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-nope")
    slow = client.files.create(
        file=("slow.jsonl", jsonl(*(chat_line(f"s{i}", "x", "slow") for i in range(20)))), purpose="batch"
    )
    running = client.batches.create(input_file_id=slow.id, endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.ConflictError):
        client.files.delete(slow.id)
    client.batches.cancel(running.id)
    assert client.files.delete(f.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)
    resp = httpx.post(srv.v1 + "/files", headers=srv.headers(), json={}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(srv.v1 + "/batches", timeout=30).status_code == 401


def test_list_batches_paginates(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """batches.list is newest first and the SDK's auto-pagination (after/limit) walks every batch exactly once."""
    srv = server_factory(config=batch_config(fake_upstream))
    client = sdk(srv)
    ids = [submit(client, jsonl(chat_line("a", "x"))).id for _ in range(5)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # iterating follows `after`
    for i in ids:
        wait_for(client, i)


def test_cancel_stops_a_running_batch(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Cancel: status cancelling then cancelled; lines not started never run; the output holds exactly the lines
    counted as completed."""
    srv = server_factory(config=batch_config(fake_upstream, slow_ms=150), batch={"concurrency": 1})
    client = sdk(srv)
    batch = submit(client, jsonl(*(chat_line(f"c{i}", f"line {i}", "slow") for i in range(30))))
    wait_until = time.monotonic() + 30
    while client.batches.retrieve(batch.id).request_counts.completed < 2 and time.monotonic() < wait_until:  # type: ignore[union-attr]
        time.sleep(0.02)
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled") and cancelled.cancelling_at
    done = wait_for(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    counts = done.request_counts
    assert 2 <= counts.completed < 30 and counts.failed == 0
    out = lines_of(client, done.output_file_id)
    assert len(out) == counts.completed and len({o["custom_id"] for o in out}) == counts.completed
    chat_calls = [r for r in fake_upstream.requests if r.path.endswith("/chat/completions")]
    assert len(chat_calls) <= counts.completed + 1  # at most the one line in flight when cancelled
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(submit_and_finish(client))


def submit_and_finish(client: openai.OpenAI) -> str:
    batch = submit(client, jsonl(chat_line("f", "x")))
    assert wait_for(client, batch.id).status == "completed"
    return str(batch.id)


def test_restart_mid_batch_loses_nothing(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    """Stop the server while a batch runs, start a new one on the same LLMOPS_HOME: the batch resumes after its last
    durable line and completes with every line exactly once; lines done before the stop are not called again."""
    config = batch_config(fake_upstream, slow_ms=150)
    n = 24
    with serve_home(tmp_path, config, batch={"concurrency": 2}) as first:
        client = sdk(first)
        batch = submit(client, jsonl(*(chat_line(f"r{i}", f"restart {i}", "slow") for i in range(n))))
        deadline = time.monotonic() + 30
        while client.batches.retrieve(batch.id).request_counts.completed < 6 and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.02)
    before = client.batches  # the first server is gone now
    del before
    calls_before = len([r for r in fake_upstream.requests if r.path.endswith("/chat/completions")])
    assert calls_before < n  # stopped mid-batch
    with serve_home(tmp_path, config, batch={"concurrency": 2}) as second:
        client = sdk(second)
        done = wait_for(client, batch.id, timeout=60)
        assert done.status == "completed", done
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (n, n, 0)
        out = lines_of(client, done.output_file_id)
        assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(n))
        for o in out:
            i = o["custom_id"][1:]
            assert o["response"]["body"]["choices"][0]["message"]["content"] == f"echo: restart {i}"
    calls = len([r for r in fake_upstream.requests if r.path.endswith("/chat/completions")])
    assert n <= calls <= n + 2  # at most the lines in flight at the stop ran twice (concurrency 2)


def test_tenants_never_see_each_others_files_or_batches(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Project B's key gets 404 on A's file, content and batch, cannot cancel it or build a batch on A's file, and
    its lists are empty."""
    srv = server_factory(config=batch_config(fake_upstream))
    other = srv.services.projects.create_project("other-" + uuid.uuid4().hex[:6])
    b_key = srv.services.projects.create_key_in(other.project_id, "b", is_admin=True).secret
    a, b = sdk(srv), sdk(srv, b_key)
    batch = submit(a, jsonl(chat_line("a", "x")))
    for call in (
        lambda: b.files.retrieve(batch.input_file_id),
        lambda: b.files.content(batch.input_file_id),
        lambda: b.files.delete(batch.input_file_id),
        lambda: b.batches.retrieve(batch.id),
        lambda: b.batches.cancel(batch.id),
        lambda: b.batches.create(
            input_file_id=batch.input_file_id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert list(b.batches.list()) == [] and list(b.files.list()) == []
    assert wait_for(a, batch.id).status == "completed"


@pytest.mark.slow
def test_batches_on_postgres(server_factory, fake_upstream: FakeUpstream, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    """The same flow with the metadata store on PostgreSQL: results, counts, malformed line and output file."""
    url = create_database(pg_server, "bat_" + uuid.uuid4().hex[:12])
    srv = server_factory(config=batch_config(fake_upstream), database_url=url)
    client = sdk(srv)
    done = wait_for(client, submit(client, jsonl(chat_line("p1", "pg one"), b"[1]", chat_line("p2", "pg two"))).id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    assert [o["custom_id"] for o in lines_of(client, done.output_file_id)] == ["p1", "p2"]
    assert [e["error"]["code"] for e in lines_of(client, done.error_file_id)] == ["invalid_request"]


def test_batch_lines_go_through_budgets(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """A hard project budget of $0 refuses every priced batch line with 429 budget_exceeded (error file), as it would
    a live call; the free alias in the same batch still completes, and the upstream never sees a refused line."""
    from tests.gateway_limits.conftest import FREE, PRICED, create_budget, priced_config

    srv = server_factory(config=priced_config(fake_upstream))
    create_budget(srv, limit_usd=0, period="total", mode="hard")
    client = sdk(srv)
    done = wait_for(client, submit(client, jsonl(chat_line("p", "x", PRICED), chat_line("f", "y", FREE))).id)
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    (err,) = lines_of(client, done.error_file_id)
    assert err["custom_id"] == "p" and err["response"]["status_code"] == 429
    assert err["response"]["body"]["error"]["code"] == "budget_exceeded"
    assert [o["custom_id"] for o in lines_of(client, done.output_file_id)] == ["f"]
    assert [r.json["model"] for r in fake_upstream.requests if r.json] == ["fake-free"]


def test_two_servers_on_one_database_run_a_batch_once(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    """Two gateways share LLMOPS_HOME: the batch is run by the process holding its lease only (the other does not
    call the upstream for it); when that process stops, the other adopts the batch and finishes it; every line is
    called about once (at most the lines in flight at the stop twice) and written exactly once."""
    config = batch_config(fake_upstream, slow_ms=100)
    n = 20
    settings = {"batch": {"concurrency": 2, "lease_s": 2}}
    with serve_home(tmp_path, config, **settings) as second:
        with serve_home(tmp_path, config, **settings) as first:
            batch = submit(sdk(first), jsonl(*(chat_line(f"m{i}", f"multi {i}", "slow") for i in range(n))))
            deadline = time.monotonic() + 30
            while sdk(first).batches.retrieve(batch.id).request_counts.completed < 5 and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.02)
            assert second.services.batches is not None and batch.id not in second.services.batches._tasks
        done = wait_for(sdk(second), batch.id, timeout=60)
        assert done.status == "completed", done
        assert (done.request_counts.completed, done.request_counts.failed) == (n, 0)
        out = lines_of(sdk(second), done.output_file_id)
        assert sorted(o["custom_id"] for o in out) == sorted(f"m{i}" for i in range(n))
    calls = len([r for r in fake_upstream.requests if r.path.endswith("/chat/completions")])
    assert n <= calls <= n + 2
