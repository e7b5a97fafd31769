"""Prompt files (``*.prompt``): YAML front matter, then the template body.

A text prompt's body is its template. A chat prompt's body is split into messages by role marker lines,
``--- system ---``, ``--- developer ---``, ``--- user ---`` or ``--- assistant ---`` (the whole line,
nothing else on it)::

    ---
    name: support-reply
    type: chat
    model: local
    params:
      max_tokens: 64
    variables:
      customer: string
      tone:
        type: string
        default: friendly
    ---
    --- system ---
    You are a {{ tone }} support agent.
    --- user ---
    My name is {{ customer }}.

A text prompt's template is the body without its last newline. A chat message is its section without
trailing newlines (so sections may be separated by blank lines; chat messages never end with a newline).
:func:`dump_file` writes the canonical form (fixed key order, block style); ``parse_file(dump_file(x)) == x`` and
``dump_file(parse_file(text)) == text`` for any canonical ``text``, so a pull right after a push changes no file.
"""

from __future__ import annotations

from typing import Any

import yaml

from llmops.core.errors import InvalidInputError
from llmops.prompts.models import PromptContent
from llmops.prompts.spec import DEFAULT_MAX_TEMPLATE_BYTES, ROLE_LINE, parse_prompt

SUFFIX = ".prompt"
FENCE = "---"
ROLE_MARKER = ROLE_LINE


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str_presenter)


def parse_file(
    text: str, *, source: str = "<prompt>", max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES
) -> tuple[str, PromptContent]:
    """(name, content) of a prompt file's text. Errors name the file and the field."""
    front, body = _split(text, source)
    if "template" in front or "messages" in front:
        raise InvalidInputError(f"{source}: the template goes in the body, not the front matter", param="template")
    kind = front.get("type") or "text"
    data = {**front, **({"messages": _messages(body, source)} if kind == "chat" else {"template": body})}
    try:
        name, content = parse_prompt(data, max_template_bytes=max_template_bytes)
    except InvalidInputError as exc:
        raise type(exc)(f"{source}: {exc.message}", param=exc.param, code=exc.code) from exc
    if name is None:
        raise InvalidInputError(f"{source}: the front matter needs a `name`", param="name", code="missing_field")
    return name, content


def _split(text: str, source: str) -> tuple[dict[str, Any], str]:
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != FENCE:
        raise InvalidInputError(f"{source}: a prompt file starts with a `---` line (YAML front matter)", param=None)
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].rstrip() == FENCE)
    except StopIteration:
        raise InvalidInputError(f"{source}: the front matter has no closing `---` line", param=None) from None
    try:
        front = yaml.safe_load("\n".join(lines[1:end]) + "\n") or {}  # the last line ends: `|` keeps its newline
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{source}: front matter is not valid YAML: {exc}", param=None) from exc
    if not isinstance(front, dict):
        raise InvalidInputError(f"{source}: the front matter must be a YAML mapping", param=None)
    body = "\n".join(lines[end + 1 :])
    return front, body[:-1] if body.endswith("\n") else body


def _messages(body: str, source: str) -> list[dict[str, str]]:
    sections: list[tuple[str, list[str]]] = []
    for line in body.split("\n"):
        marker = ROLE_MARKER.match(line)
        if marker:
            sections.append((marker.group(1), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            raise InvalidInputError(
                f"{source}: a chat prompt's body starts with a role line such as `--- system ---`", param="messages"
            )
    return [{"role": role, "content": "\n".join(lines).rstrip("\n")} for role, lines in sections]


def dump_file(name: str, content: PromptContent) -> str:
    """The canonical file text of a prompt."""
    data = content.to_dict()
    template, messages = data.pop("template", None), data.pop("messages", None)
    front: dict[str, Any] = {"name": name, **data}
    if "variables" in front:  # `name: type` for a required variable without a description
        front["variables"] = {k: v["type"] if set(v) == {"type"} else v for k, v in front["variables"].items()}
    text = FENCE + "\n" + yaml.dump(front, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100) + FENCE
    if messages is None:
        return f"{text}\n{template}\n"
    return text + "\n" + "\n".join(f"--- {m['role']} ---\n{m['content']}\n" for m in messages)


def canonical(text: str, *, source: str = "<prompt>") -> str:
    """The canonical form of a prompt file's text (what ``llmops prompt fmt`` writes)."""
    return dump_file(*parse_file(text, source=source))


__all__ = ["SUFFIX", "canonical", "dump_file", "parse_file"]
