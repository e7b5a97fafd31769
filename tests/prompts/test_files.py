"""The ``*.prompt`` file format: front matter + body (role sections for chat), a canonical form that is a fixed
point, and errors that name the file and the field."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmops.core.errors import InvalidInputError
from llmops.prompts import ChatMessage, PromptContent, Variable, dump_file, parse_file
from llmops.prompts.files import canonical

CHAT = """---
name: support-reply
type: chat
description: Replies to a customer
model: local
params:
  max_tokens: 8
  temperature: 0
variables:
  customer: string
  tone:
    type: string
    default: friendly
tags:
- support
---
--- system ---
You are a {{ tone }} support agent.

--- user ---
My name is {{ customer }}.
{% if customer == "Bob" %}I am Bob.{% endif %}
"""


def test_chat_file_parses_into_messages_and_is_canonical() -> None:
    """A chat file splits into messages at role lines; dumping it gives the same text back."""
    name, content = parse_file(CHAT)
    assert name == "support-reply" and content.type == "chat"
    assert content.messages == (
        ChatMessage("system", "You are a {{ tone }} support agent."),
        ChatMessage("user", 'My name is {{ customer }}.\n{% if customer == "Bob" %}I am Bob.{% endif %}'),
    )
    assert content.variables == (Variable("customer"), Variable("tone", required=False, default="friendly"))
    assert content.params == {"max_tokens": 8, "temperature": 0} and content.tags == ("support",)
    assert dump_file(name, content) == CHAT


def test_hand_written_files_become_canonical() -> None:
    """Flow style, other key order and a missing `type` are read; `canonical` writes the one stable form."""
    text = "---\nvariables: {who: string}\nname: hi\nmodel: local\n---\nHello {{ who }}\n"
    once = canonical(text)
    assert once == "---\nname: hi\ntype: text\nmodel: local\nvariables:\n  who: string\n---\nHello {{ who }}\n"
    assert canonical(once) == once


@pytest.mark.parametrize(
    ("text", "param", "fragment"),
    [
        ("no front matter", None, "starts with a `---` line"),
        ("---\nname: x\n", None, "no closing"),
        ("---\nname: [\n---\nbody", None, "not valid YAML"),
        ("---\ntype: text\n---\nbody", "name", "needs a `name`"),
        ("---\nname: x\ntype: chat\n---\nstray text\n--- user ---\nhi", "messages", "role line"),
        ("---\nname: x\ntemplate: hi\n---\n", "template", "in the body"),
        ("---\nname: bad name\n---\nhi", "name", "invalid"),
        ("---\nname: x\nmodle: local\n---\nhi", "modle", "unknown prompt field"),
        ("---\nname: x\nvariables: {n: {type: integer, default: two}}\n---\n{{ n }}", "variables.n.default", "integer"),
    ],
)
def test_errors_name_the_file_and_field(text: str, param: str | None, fragment: str) -> None:
    """Malformed files are InvalidInputError with the file name in the message and the field in `param`."""
    with pytest.raises(InvalidInputError) as err:
        parse_file(text, source="prompts/x.prompt")
    assert err.value.message.startswith("prompts/x.prompt: ") and fragment in err.value.message
    assert err.value.param == param


_line = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\r"), max_size=30)
_body = st.lists(_line, min_size=1, max_size=5).map("\n".join)
_var = st.builds(
    Variable,
    name=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in ("range", "dict", "loop")),
    type=st.sampled_from(["string", "any"]),
    required=st.booleans(),
    default=st.one_of(st.none(), _line),
    description=st.one_of(st.none(), _line.filter(str.strip)),
).map(lambda v: v if not v.required else Variable(v.name, v.type, description=v.description))


@st.composite
def contents(draw: st.DrawFn) -> PromptContent:
    kind = draw(st.sampled_from(["text", "chat"]))
    common = dict(
        variables=tuple({v.name: v for v in draw(st.lists(_var, max_size=3))}.values()),
        model=draw(st.one_of(st.none(), st.sampled_from(["local", "gpt-4o-mini"]))),
        params=draw(st.dictionaries(st.sampled_from(["temperature", "max_tokens", "top_p"]), st.integers(0, 9))),
        tags=tuple(dict.fromkeys(draw(st.lists(_line.filter(str.strip), max_size=3)))),
        description=draw(st.one_of(st.none(), _body.filter(str.strip))),
    )
    if kind == "text":
        return PromptContent("text", template=draw(_body), **common)  # type: ignore[arg-type]
    roles = st.sampled_from(["system", "user", "assistant", "developer"])
    text = _body.filter(lambda b: b.strip() and not b.startswith("--- ")).map(lambda b: b.rstrip("\n"))
    messages = draw(st.lists(st.builds(ChatMessage, role=roles, content=text), min_size=1, max_size=3))
    return PromptContent("chat", messages=tuple(messages), **common)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(content=contents())
@example(content=PromptContent("text", template="", description="0\n"))  # a trailing newline in the last field
def test_file_round_trip(content: PromptContent) -> None:
    """Property: parse(dump(x)) == x, and dump is a fixed point (so a pull after a push changes no file)."""
    text = dump_file("p", content)
    try:
        name, parsed = parse_file(text)
    except InvalidInputError as exc:  # a generated message line that is a role marker cannot be stored
        assert "role marker" in exc.message
        return
    assert (name, parsed) == ("p", content)
    assert dump_file(name, parsed) == text
