"""Trace ids: W3C-valid, time first (so store indexes grow at one edge), random after."""

from __future__ import annotations

import time

from llmops.core.ids import new_trace_id, parse_traceparent


def test_trace_ids_start_with_the_time_in_milliseconds_and_stay_valid_and_distinct() -> None:
    before = int(time.time() * 1000)
    ids = [new_trace_id() for _ in range(2_000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    for trace_id in ids:
        assert len(trace_id) == 32 and trace_id == trace_id.lower() and int(trace_id, 16) != 0
        assert before <= int(trace_id[:12], 16) <= after
        assert parse_traceparent(f"00-{trace_id}-{'1' * 16}-01") == (trace_id, "1" * 16)
    assert len({trace_id[12:] for trace_id in ids}) == len(ids)  # the random part alone is unique
    later = new_trace_id()
    time.sleep(0.002)
    assert new_trace_id()[:12] > later[:12]  # ids sort by creation time at millisecond resolution
