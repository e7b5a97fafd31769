"""Prompt registry data: prompts, immutable versions, labels and their history. No framework imports.

A version's *content* (:class:`PromptContent`) is everything a prompt file holds except the name; its
``content_hash`` is the SHA-256 of the canonical JSON of :meth:`PromptContent.to_dict`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

PromptType = Literal["text", "chat"]
VarType = Literal["string", "number", "integer", "boolean", "list", "object", "any"]
Role = Literal["system", "developer", "user", "assistant"]
MoveAction = Literal["create", "move", "auto", "canary", "rollback"]

PROMPT_TYPES: tuple[PromptType, ...] = ("text", "chat")
VAR_TYPES: tuple[VarType, ...] = ("string", "number", "integer", "boolean", "list", "object", "any")
ROLES: tuple[Role, ...] = ("system", "developer", "user", "assistant")
LATEST = "latest"
DEFAULT_PROTECTED = ("production",)


class Caller(Protocol):
    """Who acts (``llmops.projects.Principal`` fits): the project scopes every query, ``is_admin`` gates
    protected labels."""

    @property
    def project_id(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True)
class Variable:
    name: str
    type: VarType = "string"
    required: bool = True
    default: Any = None  # used when not ``required``
    description: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str  # a template


@dataclass(frozen=True)
class PromptContent:
    """The versioned part of a prompt: template(s), variables, model configuration, tags."""

    type: PromptType
    template: str | None = None  # text prompts
    messages: tuple[ChatMessage, ...] = ()  # chat prompts
    variables: tuple[Variable, ...] = ()
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str | None = None

    def templates(self) -> list[tuple[str, str]]:
        """(param name, template source) of every template, for validation and compilation."""
        if self.type == "text":
            return [("template", self.template or "")]
        return [(f"messages.{i}.content", m.content) for i, m in enumerate(self.messages)]

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain form (the JSON API shape and the prompt file's front matter + body)."""
        out: dict[str, Any] = {"type": self.type}
        if self.description:
            out["description"] = self.description
        if self.model:
            out["model"] = self.model
        if self.params:
            out["params"] = dict(self.params)
        if self.variables:
            out["variables"] = {v.name: variable_dict(v) for v in self.variables}
        if self.tags:
            out["tags"] = list(self.tags)
        if self.type == "text":
            out["template"] = self.template or ""
        else:
            out["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        return out

    def content_hash(self) -> str:
        return hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def variable_dict(v: Variable) -> dict[str, Any]:
    d: dict[str, Any] = {"type": v.type}
    if not v.required:
        d["default"] = v.default
    if v.description:
        d["description"] = v.description
    return d


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    project_id: str
    name: str
    created_ns: int
    protected_labels: tuple[str, ...] = DEFAULT_PROTECTED


@dataclass(frozen=True)
class PromptVersion:
    prompt_id: str
    name: str
    version: int
    content: PromptContent
    content_hash: str
    message: str | None
    author: str  # key id
    created_ns: int


@dataclass(frozen=True)
class LabelState:
    """Where a label points: one version, or a canary split sending ``canary_percent`` % to another."""

    version: int
    canary_version: int | None = None
    canary_percent: float | None = None

    @property
    def has_canary(self) -> bool:
        return self.canary_version is not None

    def describe(self) -> str:
        if self.canary_version is None:
            return f"v{self.version}"
        return (
            f"v{self.version} {100 - (self.canary_percent or 0):g}% / v{self.canary_version} {self.canary_percent:g}%"
        )


@dataclass(frozen=True)
class Label:
    label: str
    state: LabelState
    updated_ns: int
    updated_by: str


@dataclass(frozen=True)
class LabelMove:
    """One recorded change of a label: who, when, from which state to which."""

    label: str
    action: MoveAction
    before: LabelState | None
    after: LabelState
    actor: str
    moved_ns: int


@dataclass(frozen=True)
class PromptSummary:
    name: str
    type: PromptType
    latest_version: int
    labels: dict[str, LabelState]
    tags: tuple[str, ...]
    description: str | None
    updated_ns: int


@dataclass(frozen=True)
class PushResult:
    version: PromptVersion
    created: bool  # False: identical to the latest version, nothing was written
