"""Runner rules that need no upstream: a batch with no request fails with its reason; line validation; batch
lines wait for live traffic to drain (bounded)."""

from __future__ import annotations

import asyncio
import time

import pytest

from llmops.gateway.batches import LineError, LiveTraffic, parse_line
from tests.gateway_batches.conftest import batch_config, sdk, submit, wait_for
from tests.support.fake_upstream import FakeUpstream


def test_a_file_of_blank_lines_fails_the_batch_with_its_reason(server_factory, fake_upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Upload accepts the file (lines are checked at run time), the batch ends ``failed`` with errors.data naming
    empty_file, no output file and failed_at set."""
    srv = server_factory(config=batch_config(fake_upstream))
    client = sdk(srv)
    done = wait_for(client, submit(client, b"\n   \n\n").id)
    assert done.status == "failed" and done.failed_at and done.output_file_id is None
    assert done.errors is not None and [e.code for e in done.errors.data or []] == ["empty_file"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", "invalid_json"),
        (b"[]", "invalid_request"),
        (b'{"method": "POST", "url": "/v1/embeddings", "body": {}}', "missing_custom_id"),
        (b'{"custom_id": "a", "method": "GET", "url": "/v1/embeddings", "body": {}}', "invalid_method"),
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}', "mismatched_url"),
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": "x"}', "invalid_body"),
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"stream": true}}', "invalid_body"),
    ],
)
def test_parse_line_names_what_is_wrong(raw: bytes, code: str) -> None:
    with pytest.raises(LineError) as err:
        parse_line(raw, "/v1/embeddings")
    assert err.value.code == code


def test_parse_line_accepts_a_valid_line() -> None:
    raw = b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "x"}}'
    assert parse_line(raw, "/v1/embeddings") == ("a", {"model": "m", "input": "x"})


def test_live_traffic_holds_batch_lines_until_idle_or_the_bound() -> None:
    """wait_idle returns as soon as the last live request leaves, and after max_s at the latest."""

    async def scenario() -> tuple[float, float, float]:
        live = LiveTraffic()
        t = time.perf_counter()
        await live.wait_idle(1.0)
        idle = time.perf_counter() - t
        live.enter()
        asyncio.get_running_loop().call_later(0.1, live.leave)
        t = time.perf_counter()
        await live.wait_idle(5.0)
        drained = time.perf_counter() - t
        live.enter()
        t = time.perf_counter()
        await live.wait_idle(0.2)
        bounded = time.perf_counter() - t
        return idle, drained, bounded

    idle, drained, bounded = asyncio.run(scenario())
    assert idle < 0.05 and 0.08 <= drained < 2.0 and 0.18 <= bounded < 2.0
