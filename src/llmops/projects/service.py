"""Use cases for projects and keys: bootstrap, create/list/revoke keys, authenticate."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from typing import Protocol

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import AuthenticationError, InvalidInputError, NotFoundError
from llmops.core.ids import new_id
from llmops.projects.models import ApiKey, CreatedKey, Principal, Project
from llmops.projects.store import ProjectStore

KEY_PREFIX = "sk-llmops-"
DEFAULT_PROJECT = "default"
_AUTH_CACHE_TTL_S = 5.0  # a revoked key stops working everywhere within this bound


def hash_key(secret: str) -> str:
    """Keys carry 190 bits of entropy, so one SHA-256 is enough (and allows lookup by hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyLimits(Protocol):
    """Per-key rate limits, kept by the gateway's rate-limit store (``RateLimitService``, passed in by app.py:
    projects imports no gateway)."""

    async def set_key_limit(self, project_id: str, key_id: str, *, rpm: int | None, tpm: int | None) -> None: ...

    async def key_limits(self, project_id: str) -> dict[str, tuple[int | None, int | None]]: ...


class ProjectService:
    def __init__(self, store: ProjectStore, *, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self._auth_cache: dict[str, tuple[float, Principal | None]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def bootstrap(self, *, admin_secret: str | None = None) -> CreatedKey | None:
        """On first start create project ``default`` and an admin key; returns it (once) or None."""
        if self._store.count_projects() > 0:
            return None
        project = self.create_project(DEFAULT_PROJECT)
        return self.create_key(project.name, "admin", is_admin=True, secret=admin_secret)

    def create_project(self, name: str) -> Project:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInputError("project name must be 1-100 characters", param="name")
        project = Project(project_id=new_id("proj"), name=name, created_ns=self._clock.now_ns())
        self._store.insert_project(project)
        return project

    def get_project(self, name: str) -> Project:
        project = self._store.find_project_by_name(name)
        if project is None:
            raise NotFoundError(f"project {name!r} does not exist", param="project")
        return project

    def list_projects(self) -> list[Project]:
        return self._store.list_projects()

    def create_key(
        self, project_name: str, name: str, *, is_admin: bool = False, secret: str | None = None
    ) -> CreatedKey:
        return self.create_key_in(self.get_project(project_name).project_id, name, is_admin=is_admin, secret=secret)

    def create_key_in(
        self, project_id: str, name: str, *, is_admin: bool = False, secret: str | None = None
    ) -> CreatedKey:
        if not name.strip() or len(name) > 200:
            raise InvalidInputError("key name must be 1-200 characters", param="name")
        secret = secret or KEY_PREFIX + secrets.token_urlsafe(24)
        key = ApiKey(
            key_id=new_id("key"),
            project_id=project_id,
            name=name.strip(),
            display_prefix=secret[:14] + "…",
            is_admin=is_admin,
            created_ns=self._clock.now_ns(),
        )
        self._store.insert_key(key, hash_key(secret))
        return CreatedKey(key=key, secret=secret)

    async def create_limited_key(
        self,
        project_id: str,
        name: str,
        limits: KeyLimits | None,
        *,
        is_admin: bool = False,
        rpm: int | None = None,
        tpm: int | None = None,
    ) -> CreatedKey:
        """A key and its requests/tokens-per-minute limit, or neither: a key whose limit could not be stored is
        revoked before the error goes out (never a usable key without the limit its creator asked for)."""
        if (rpm is not None or tpm is not None) and limits is None:
            raise InvalidInputError("rate limits are disabled on this server (LLMOPS_LIMITS_ENABLED)", param="rpm")
        created = await asyncio.to_thread(self.create_key_in, project_id, name, is_admin=is_admin)
        if limits is not None and (rpm is not None or tpm is not None):
            try:
                await limits.set_key_limit(project_id, created.key.key_id, rpm=rpm, tpm=tpm)
            except BaseException:
                await asyncio.to_thread(self.revoke_key, created.key.key_id, project_id=project_id)
                raise
        return created

    def list_keys(self, project_name: str | None = None) -> list[ApiKey]:
        project_id = self.get_project(project_name).project_id if project_name else None
        return self._store.list_keys(project_id)

    def revoke_key(self, key_id: str, *, project_id: str | None = None) -> None:
        if not self._store.revoke_key(key_id, self._clock.now_ns(), project_id=project_id):
            raise NotFoundError(f"no active key {key_id!r}", param="key_id")
        self._auth_cache.clear()

    def authenticate_sync(self, secret: str) -> Principal:
        digest = hash_key(secret)
        key = self._store.find_key_by_hash(digest)
        principal = None
        if key is not None and key.active:
            principal = Principal(key.project_id, key.key_id, key.name, key.is_admin)
        self._auth_cache[digest] = (time.monotonic() + _AUTH_CACHE_TTL_S, principal)
        if principal is None:
            raise AuthenticationError("Incorrect API key provided.")
        return principal

    async def authenticate(self, secret: str | None) -> Principal:
        """Resolve a raw key. Answers from memory: an entry older than the TTL is still used while one
        background refresh re-reads it (so revocation reaches every process within ~TTL, and a burst of
        requests never queues on the database)."""
        if not secret:
            raise AuthenticationError(
                "You didn't provide an API key. Use 'Authorization: Bearer <key>'.", code="missing_api_key"
            )
        if len(secret) > 256:
            raise AuthenticationError("Incorrect API key provided.")
        digest = hash_key(secret)
        cached = self._auth_cache.get(digest)
        if cached is None:
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            return await asyncio.to_thread(self.authenticate_sync, secret)
        if cached[0] <= time.monotonic() and digest not in self._refreshing:
            self._refreshing.add(digest)
            task = asyncio.get_running_loop().create_task(self._refresh(secret, digest))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if cached[1] is None:
            raise AuthenticationError("Incorrect API key provided.")
        return cached[1]

    async def _refresh(self, secret: str, digest: str) -> None:
        try:
            await asyncio.to_thread(self.authenticate_sync, secret)
        except AuthenticationError:
            pass
        finally:
            self._refreshing.discard(digest)
