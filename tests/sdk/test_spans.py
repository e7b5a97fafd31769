"""``llmops.span`` (sync and async), user / session / tags on spans, current ids and trace headers."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import StatusCode

import llmops
from llmops.core.ids import parse_traceparent
from tests.sdk.conftest import Recorded, parent_id, span_id


def test_span_block_nests_and_records_input_output(sdk: Recorded) -> None:
    """``with span(...)`` opens a child of the current span; ``input=`` and ``set_output`` are recorded; the
    handle's ids are those of the exported span."""
    with llmops.span("request", kind="agent", input={"q": "hi"}) as outer:
        with llmops.span("lookup", kind="tool") as inner:
            inner.set_output(["doc"])
            inner.set_attribute("tool.name", "lookup")
    root, child = sdk.one("request"), sdk.one("lookup")
    assert parent_id(child) == span_id(root)
    assert outer.span_id == format(span_id(root), "016x")
    assert outer.trace_id == format(root.context.trace_id, "032x")  # type: ignore[union-attr]
    assert json.loads(sdk.attrs("request")["input.value"]) == {"q": "hi"}
    assert sdk.attrs("request")["llmops.span.kind"] == "agent"
    assert sdk.attrs("lookup")["output.value"] == '["doc"]'
    assert sdk.attrs("lookup")["tool.name"] == "lookup"


def test_span_block_records_the_error_and_lets_it_propagate(sdk: Recorded) -> None:
    """An exception leaving the block marks the span ERROR and reaches the caller as is."""
    err = TimeoutError("slow tool")
    with pytest.raises(TimeoutError) as info:
        with llmops.span("tool"):
            raise err
    assert info.value is err
    span = sdk.one("tool")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "TimeoutError"


async def test_async_with_span(sdk: Recorded) -> None:
    """``async with span(...)`` works the same, and observed coroutines inside nest under it."""

    @llmops.observe
    async def fetch() -> int:
        return 1

    async with llmops.span("batch", kind="chain") as s:
        await fetch()
        s.set_output("done")
    assert parent_id(sdk.one("fetch")) == span_id(sdk.one("batch"))
    assert sdk.attrs("batch")["output.value"] == "done"


def test_user_and_session_are_inherited_by_later_children(sdk: Recorded) -> None:
    """``set_user`` / ``set_session`` mark the current span and every span started under it afterwards
    (``session.id`` and ``gen_ai.conversation.id``); a span started before the call is left alone."""
    with llmops.span("turn"):
        with llmops.span("before"):
            pass
        llmops.set_user("user-7")
        llmops.set_session("chat-1")
        with llmops.span("after"):
            with llmops.span("grandchild"):
                pass
    for name in ("turn", "after", "grandchild"):
        attrs = sdk.attrs(name)
        assert attrs["user.id"] == "user-7", name
        assert attrs["session.id"] == attrs["gen_ai.conversation.id"] == "chat-1", name
    assert "user.id" not in sdk.attrs("before")


def test_a_childs_own_user_wins_over_the_inherited_one(sdk: Recorded) -> None:
    """A span that sets its own user (``span(user_id=...)``) keeps it."""
    with llmops.span("parent", user_id="a"):
        with llmops.span("child", user_id="b"):
            pass
    assert sdk.attrs("parent")["user.id"] == "a"
    assert sdk.attrs("child")["user.id"] == "b"


def test_tags_merge_without_duplicates(sdk: Recorded) -> None:
    """``tags=`` at start, ``add_tags`` on the handle and on the current span all add to ``tag.tags``."""
    with llmops.span("t", tags=["a"]) as s:
        s.add_tags("b", "a")
        llmops.add_tags("c")
    assert list(sdk.attrs("t")["tag.tags"]) == ["a", "b", "c"]


def test_current_ids_and_trace_headers(sdk: Recorded) -> None:
    """Inside a span: ``current_trace_id``/``current_span_id`` name it, and ``trace_headers()`` carries it as a
    W3C traceparent (which the gateway parses) plus the user and session; outside: None and no headers."""
    assert llmops.current_trace_id() is None and llmops.trace_headers() == {}
    with llmops.span("app", user_id="u1", session_id="s1") as s:
        headers = llmops.trace_headers()
        assert llmops.current_trace_id() == s.trace_id
        assert llmops.current_span_id() == s.span_id
    assert parse_traceparent(headers["traceparent"]) == (s.trace_id, s.span_id)
    assert int(headers["traceparent"].rsplit("-", 1)[1], 16) & 1  # sampled
    assert headers["x-llmops-user"] == "u1" and headers["x-llmops-session"] == "s1"


def test_span_and_helpers_before_init_are_harmless(clean_env: None) -> None:
    """Without ``init`` a span block still runs (handle with no ids) and the helpers do nothing."""
    with llmops.span("x") as s:
        s.set_output("y")
        llmops.set_user("u")
        llmops.add_tags("t")
        assert s.trace_id is None and llmops.current_trace_id() is None
