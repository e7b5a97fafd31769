"""Bounding captured content: byte limits, character boundaries, and message JSON that stays valid."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from llmops.sdk._content import TRUNCATED, clip, to_json
from llmops.sdk._genai import messages_json


@given(st.text(), st.integers(min_value=64, max_value=4096))
def test_clip_bounds_bytes_and_keeps_a_prefix(text: str, limit: int) -> None:
    """Whatever the text (any Unicode), the result fits ``limit`` UTF-8 bytes; a text that fits is unchanged,
    a longer one is a prefix of it followed by the marker."""
    out = clip(text, limit)
    assert len(out.encode("utf-8", "surrogatepass")) <= limit
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        assert out == text
    else:
        assert out.endswith(TRUNCATED) and text.startswith(out.removesuffix(TRUNCATED))


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(), st.lists, max_leaves=20))
def test_to_json_always_gives_json(value: object) -> None:
    """Any nesting of JSON-like values (NaN and huge integers included) serialises to parseable JSON."""
    json.loads(to_json(value))


def test_long_messages_are_shortened_part_by_part_and_stay_valid_json() -> None:
    """Messages over the limit keep their structure: every text part is shortened, the JSON still parses,
    and short parts survive whole."""
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "x" * 50_000}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "y" * 50_000}], "finish_reason": "stop"},
    ]
    text = messages_json(messages, 2048)
    assert len(text.encode()) <= 2048
    parsed = json.loads(text)
    assert [m["role"] for m in parsed] == ["system", "user", "assistant"]
    assert parsed[0]["parts"][0]["content"] == "be brief"
    assert parsed[1]["parts"][0]["content"].endswith(TRUNCATED)
    assert parsed[2]["finish_reason"] == "stop"
