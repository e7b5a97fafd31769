"""Project and key data; no framework imports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Project:
    project_id: str
    name: str
    created_ns: int


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    project_id: str
    name: str
    display_prefix: str
    is_admin: bool
    created_ns: int
    revoked_ns: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_ns is None


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is shown once and never stored."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: every query is scoped by ``project_id`` taken from here, never from the request."""

    project_id: str
    key_id: str
    key_name: str
    is_admin: bool
