"""Prompt test helpers: specs to push, and a caller stand-in for service-level tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Who:
    """A caller (``llmops.projects.Principal`` has the same shape)."""

    project_id: str = "proj_a"
    key_id: str = "key_dev"
    is_admin: bool = False


ADMIN = Who(key_id="key_admin", is_admin=True)
DEV = Who()
OTHER = Who(project_id="proj_b", key_id="key_b", is_admin=True)


def text_spec(template: str = "Hello {{ who }}!", **extra: Any) -> dict[str, Any]:
    return {"template": template, "variables": {"who": "string"}, "model": "local", **extra}


def chat_spec(system: str = "You are {{ tone }}.", user: str = "Hi, I am {{ who }}.", **extra: Any) -> dict[str, Any]:
    return {
        "type": "chat",
        "model": "local",
        "params": {"max_tokens": 8, "temperature": 0},
        "variables": {"who": "string", "tone": {"type": "string", "default": "friendly"}},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        **extra,
    }
