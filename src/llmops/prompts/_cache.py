"""In-process cache of compiled prompt versions and label states, for resolving ``prompt:NAME@LABEL``.

Entries are keyed by (project, prompt name). A write through the service invalidates its prompt's entry at
once; writes by other processes are picked up within ``ttl_s``: an expired entry is still served while one
background task re-reads it (stale-while-revalidate), so the gateway's hot path never waits on the database
after the first call. Versions are immutable, so a compiled version is never re-read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from llmops.core.clock import Clock
from llmops.core.errors import NotFoundError
from llmops.prompts.models import LabelState, Prompt, PromptContent
from llmops.prompts.rendering import CompiledPrompt
from llmops.prompts.store import PromptStore

log = logging.getLogger("llmops.prompts")
MAX_ENTRIES = 10_000


def prompt_not_found(name: str, *, param: str | None = "name") -> NotFoundError:
    return NotFoundError(f"prompt {name!r} not found", param=param, code="prompt_not_found")


@dataclass
class CacheEntry:
    prompt: Prompt
    labels: dict[str, LabelState]
    compiled: dict[int, CompiledPrompt] = field(default_factory=dict)
    expires_at: float = 0.0


class PromptCache:
    def __init__(self, store: PromptStore, *, ttl_s: float, max_chars: int, clock: Clock) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_chars = max_chars
        self._clock = clock
        self._entries: dict[tuple[str, str], CacheEntry] = {}
        self._generation = 0  # bumped by every invalidation: a load that started before one is not kept
        self._refreshing: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def invalidate(self, project_id: str, name: str) -> None:
        self._generation += 1
        self._entries.pop((project_id, name), None)

    async def entry(self, project_id: str, name: str) -> CacheEntry:
        key = (project_id, name)
        entry = self._entries.get(key)
        if entry is None:
            return await self._load(key)
        if entry.expires_at <= self._clock.monotonic() and key not in self._refreshing:
            self._refreshing.add(key)
            task = asyncio.get_running_loop().create_task(self._refresh(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return entry

    async def compiled(self, project_id: str, entry: CacheEntry, version: int) -> CompiledPrompt:
        found = entry.compiled.get(version)
        if found is not None:
            return found
        stored = await asyncio.to_thread(self._store.find_version, project_id, entry.prompt.prompt_id, version)
        if stored is None:
            raise NotFoundError(
                f"prompt {entry.prompt.name!r} has no version {version}", param="version", code="version_not_found"
            )
        compiled = self.compile(stored.name, stored.version, stored.content)
        entry.compiled[version] = compiled
        return compiled

    def compile(self, name: str, version: int, content: PromptContent) -> CompiledPrompt:
        return CompiledPrompt(content, name=name, version=version, max_chars=self._max_chars)

    async def _load(self, key: tuple[str, str]) -> CacheEntry:
        generation = self._generation
        entry = await asyncio.to_thread(self._read, key)
        if generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = entry
        return entry

    def _read(self, key: tuple[str, str]) -> CacheEntry:
        project_id, name = key
        prompt = self._store.find_prompt(project_id, name)
        if prompt is None:
            raise prompt_not_found(name)
        labels = {lb.label: lb.state for lb in self._store.list_labels(project_id, prompt.prompt_id)}
        entry = CacheEntry(prompt, labels, expires_at=self._clock.monotonic() + self._ttl_s)
        wanted = {s.version for s in labels.values()} | {s.canary_version for s in labels.values() if s.canary_version}
        for version in sorted(wanted):
            stored = self._store.find_version(project_id, prompt.prompt_id, version)
            if stored is not None:
                entry.compiled[version] = self.compile(name, version, stored.content)
        return entry

    async def _refresh(self, key: tuple[str, str]) -> None:
        try:
            await self._load(key)
        except NotFoundError:
            self._entries.pop(key, None)
        except Exception:  # task boundary: keep serving the stale entry, try again after the TTL
            log.exception("refreshing prompt %r failed", key[1])
            stale = self._entries.get(key)
            if stale is not None:
                stale.expires_at = self._clock.monotonic() + self._ttl_s
        finally:
            self._refreshing.discard(key)
