"""Prompt specs: the plain mapping form of a prompt (JSON body, YAML front matter) into a
:class:`PromptContent`, validated field by field. Every error names its field in ``param``.

Shape (keys other than these are refused)::

    name: support-reply            # optional here; required in files and on create
    type: chat                     # text | chat (default: chat when `messages` is given, else text)
    description: ...
    model: local                   # a model alias the gateway serves
    params: {temperature: 0.2, max_tokens: 64}
    variables:                     # name -> type, or name -> {type, default, description}
      customer: string
      tone: {type: string, default: friendly}
    tags: [support]
    template: "Hello {{ customer }}"               # text prompts
    messages: [{role: system, content: "..."}]     # chat prompts
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import orjson

from llmops.core.errors import InvalidInputError, PayloadTooLargeError
from llmops.prompts.models import (
    PROMPT_TYPES,
    ROLES,
    VAR_TYPES,
    ChatMessage,
    PromptContent,
    PromptType,
    Role,
    Variable,
    VarType,
)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
RESERVED_VARS = frozenset({"range", "dict", "loop", "self", "super", "caller", "varargs", "kwargs", "true", "false"})
ROLE_LINE = re.compile(r"^--- (" + "|".join(ROLES) + r") ---$", re.M)  # splits chat bodies in prompt files
FIELDS = frozenset({"name", "type", "description", "model", "params", "variables", "tags", "template", "messages"})
FORBIDDEN_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "llmops_prompt"})
DEFAULT_MAX_TEMPLATE_BYTES = 100_000


def validate_name(name: Any, *, param: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidInputError(
            f"prompt name {name!r} is invalid: 1-128 characters, letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
            param=param,
            code="invalid_name",
        )
    return name


def validate_label(label: Any, *, param: str = "label") -> str:
    if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
        raise InvalidInputError(
            f"label {label!r} is invalid: 1-64 characters, lower-case letters, digits, '_' or '-', "
            "starting with a letter",
            param=param,
            code="invalid_label",
        )
    return label


def parse_prompt(
    data: Any, *, max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES
) -> tuple[str | None, PromptContent]:
    """(name or None, content) of a prompt mapping."""
    if not isinstance(data, Mapping):
        raise InvalidInputError("a prompt must be a mapping of fields", param=None)
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown prompt field {unknown[0]!r}", param=unknown[0], code="unknown_field")
    name = validate_name(data["name"]) if data.get("name") is not None else None
    return name, parse_content(data, max_template_bytes=max_template_bytes)


def parse_content(data: Mapping[str, Any], *, max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES) -> PromptContent:
    kind = _prompt_type(data)
    content = PromptContent(
        type=kind,
        template=_text(data.get("template"), "template", allow_empty=True) if kind == "text" else None,
        messages=_messages(data.get("messages")) if kind == "chat" else (),
        variables=_variables(data.get("variables")),
        model=_optional_text(data.get("model"), "model", 300),
        params=_params(data.get("params")),
        tags=_tags(data.get("tags")),
        description=_optional_text(data.get("description"), "description", 2000),
    )
    try:  # every text must be storable (JSON allows lone surrogates, UTF-8 does not)
        orjson.dumps(content.to_dict())
    except TypeError as exc:
        raise InvalidInputError(f"the prompt holds text that is not valid Unicode: {exc}", param=None) from exc
    size = sum(len(src.encode()) for _, src in content.templates())
    if size > max_template_bytes:
        raise PayloadTooLargeError(
            f"the template is {size} bytes; the limit is {max_template_bytes}",
            param="template" if kind == "text" else "messages",
            code="template_too_large",
        )
    return content


def _prompt_type(data: Mapping[str, Any]) -> PromptType:
    kind = data.get("type") or ("chat" if "messages" in data else "text")
    if kind not in PROMPT_TYPES:
        raise InvalidInputError(f"type must be one of {', '.join(PROMPT_TYPES)}", param="type")
    if kind == "text" and "messages" in data:
        raise InvalidInputError("a text prompt has a `template`, not `messages`", param="messages")
    if kind == "chat" and "template" in data:
        raise InvalidInputError("a chat prompt has `messages`, not a `template`", param="template")
    if kind == "text" and "template" not in data:
        raise InvalidInputError("a text prompt needs a template", param="template", code="missing_field")
    return cast(PromptType, kind)


def _text(value: Any, param: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InvalidInputError(f"{param} must be a {'' if allow_empty else 'non-empty '}string", param=param)
    return valid_text(value, param)


def valid_text(value: str, param: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{param} is not valid Unicode text: {exc.reason}", param=param) from exc
    return value


def _optional_text(value: Any, param: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInputError(f"{param} must be a string of 1-{limit} characters", param=param)
    return value


def _messages(value: Any) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidInputError("a chat prompt needs a non-empty list of messages", param="messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or set(m) - {"role", "content"}:
            raise InvalidInputError("each message is {role, content}", param=f"messages.{i}")
        if m.get("role") not in ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(ROLES)}", param=f"messages.{i}.role")
        text = _text(m.get("content"), f"messages.{i}.content").rstrip("\n")  # as in prompt files
        if ROLE_LINE.search(text):
            raise InvalidInputError(
                "a message cannot contain a role marker line such as `--- user ---`", param=f"messages.{i}.content"
            )
        out.append(ChatMessage(cast(Role, m["role"]), text))
    return tuple(out)


def _variables(value: Any) -> tuple[Variable, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InvalidInputError("variables must map names to types or {type, default}", param="variables")
    return tuple(_variable(str(name), spec) for name, spec in value.items())


def _variable(name: str, spec: Any) -> Variable:
    param = f"variables.{name}"
    if not VAR_RE.fullmatch(name) or name in RESERVED_VARS:
        raise InvalidInputError(f"{name!r} is not a valid variable name", param=param, code="invalid_name")
    if spec is None or isinstance(spec, str):
        spec = {"type": spec or "string"}
    if not isinstance(spec, Mapping) or set(spec) - {"type", "default", "description"}:
        raise InvalidInputError(f"variable {name!r}: give a type or {{type, default, description}}", param=param)
    kind = spec.get("type", "string")
    if kind not in VAR_TYPES:
        raise InvalidInputError(f"variable {name!r}: type must be one of {', '.join(VAR_TYPES)}", param=param)
    var = Variable(
        name,
        cast(VarType, kind),
        required="default" not in spec,
        default=spec.get("default"),
        description=_optional_text(spec.get("description"), f"{param}.description", 500),
    )
    if not var.required and var.default is not None:
        check_value(var, var.default, param=f"{param}.default")
    return var


def _params(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError("params must be a mapping of request parameters", param="params")
    for key in value:
        if key in FORBIDDEN_PARAMS:
            raise InvalidInputError(f"params cannot set {key!r}", param=f"params.{key}")
    try:
        return cast(dict[str, Any], orjson.loads(orjson.dumps(dict(value))))
    except TypeError as exc:
        raise InvalidInputError(f"params must be plain JSON values: {exc}", param="params") from exc


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in value):
        raise InvalidInputError("tags must be a list of strings (1-100 characters)", param="tags")
    return tuple(dict.fromkeys(value))


_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


def check_value(var: Variable, value: Any, *, param: str | None = None) -> None:
    if not _CHECKS[var.type](value):
        raise InvalidInputError(
            f"variable {var.name!r} must be of type {var.type}, got {type(value).__name__}",
            param=param or f"variables.{var.name}",
            code="invalid_variable",
        )


def coerce_value(var: Variable, text: str) -> Any:
    """A string from a command line or form, turned into the variable's declared type."""
    try:
        if var.type == "string":
            return text
        if var.type == "integer":
            return int(text)
        if var.type == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if var.type == "boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on", "false", "0", "no", "off"):
                return lowered in ("true", "1", "yes", "on")
            raise ValueError(text)
        return orjson.loads(text) if var.type in ("list", "object") else _json_or_text(text)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"variable {var.name!r}: {text!r} is not a valid {var.type}",
            param=f"variables.{var.name}",
            code="invalid_variable",
        ) from exc


def _json_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
