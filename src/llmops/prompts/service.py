"""Prompt use cases: push versions, move labels (canary, rollback), read, diff, render, resolve.

Writes check the caller: every query is scoped by ``caller.project_id``; a protected label moves only for
an admin key. Store calls run in a worker thread. ``resolve`` (the gateway's hot path) answers from
:class:`~llmops.prompts._cache.PromptCache` and never waits on the database once a prompt is cached.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from llmops.core.clock import Clock, SystemClock
from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from llmops.core.ids import new_id
from llmops.prompts._cache import PromptCache, prompt_not_found
from llmops.prompts.files import dump_file
from llmops.prompts.labels import pick, rollback_target
from llmops.prompts.models import (
    DEFAULT_PROTECTED,
    LATEST,
    Caller,
    Label,
    LabelMove,
    LabelState,
    MoveAction,
    Prompt,
    PromptContent,
    PromptSummary,
    PromptVersion,
    PushResult,
)
from llmops.prompts.rendering import DEFAULT_MAX_RENDER_CHARS, CompiledPrompt
from llmops.prompts.spec import (
    DEFAULT_MAX_TEMPLATE_BYTES,
    parse_prompt,
    valid_text,
    validate_label,
    validate_name,
)
from llmops.prompts.store import PromptStore

if TYPE_CHECKING:  # settings pull in pydantic-settings; the SDK client imports this package
    from llmops.core.settings import PromptSettings

PUSH_ATTEMPTS = 3
DEFAULT_CACHE_TTL_S = 5.0


@dataclass(frozen=True)
class Resolution:
    """A prompt reference resolved for one call: the compiled version that serves it and why."""

    prompt: CompiledPrompt
    label: str | None
    canary: bool | None  # None: the label has no canary split

    def attributes(self) -> dict[str, Any]:
        """Span attributes naming what served the call."""
        attrs: dict[str, Any] = {"llmops.prompt.name": self.prompt.name, "llmops.prompt.version": self.prompt.version}
        if self.label is not None:
            attrs["llmops.prompt.label"] = self.label
        if self.canary is not None:
            attrs["llmops.prompt.canary"] = self.canary
        return attrs


def _no_version(name: str, version: int, param: str = "version") -> NotFoundError:
    return NotFoundError(f"prompt {name!r} has no version {version}", param=param, code="version_not_found")


def _no_label(name: str, label: str, param: str = "label") -> NotFoundError:
    return NotFoundError(f"prompt {name!r} has no label {label!r}", param=param, code="label_not_found")


def _may_move(caller: Caller, name: str, protected: tuple[str, ...], label: str, param: str = "label") -> None:
    if label == LATEST:
        raise InvalidInputError(
            "label 'latest' moves by itself to every new version", param=param, code="label_reserved"
        )
    if label in protected and not caller.is_admin:
        raise PermissionDeniedError(
            f"label {label!r} of prompt {name!r} is protected: moving it needs an admin key",
            param=param,
            code="protected_label",
        )


def parse_ref(ref: str | int, *, param: str = "ref") -> int | str:
    """A version number (``3``, ``v3``) or a label name."""
    if isinstance(ref, int):
        return ref
    text = ref[1:] if ref[:1] == "v" and ref[1:].isdigit() else ref
    if text.isdigit():
        return int(text)
    return validate_label(ref, param=param)


class LabelGate(Protocol):
    """Checked before a label moves (evals implements it: the promotion gate). Raises ConflictError with
    the reasons when the move is not allowed; ``from_version`` is None when the label is new."""

    async def check(
        self, project_id: str, name: str, label: str, from_version: int | None, to_version: int
    ) -> None: ...


class PromptService:
    label_gate: LabelGate | None = None  # wired by app.py (promotion gate)

    def __init__(
        self, store: PromptStore, settings: PromptSettings | None = None, *, clock: Clock | None = None
    ) -> None:
        self._store = store
        self._max_template_bytes = settings.max_template_bytes if settings else DEFAULT_MAX_TEMPLATE_BYTES
        self._max_chars = settings.max_render_chars if settings else DEFAULT_MAX_RENDER_CHARS
        self._clock = clock or SystemClock()
        ttl_s = settings.cache_ttl_s if settings else DEFAULT_CACHE_TTL_S
        self._cache = PromptCache(store, ttl_s=ttl_s, max_chars=self._max_chars, clock=self._clock)

    # ---- versions -------------------------------------------------------------------------------------

    def check(self, data: Mapping[str, Any], *, name: str | None = None) -> tuple[str, PromptContent]:
        """Validate a prompt spec and compile its templates (nothing is stored)."""
        spec_name, content = parse_prompt(data, max_template_bytes=self._max_template_bytes)
        if name is not None and spec_name is not None and spec_name != name:
            raise InvalidInputError(f"the body names prompt {spec_name!r}, the URL {name!r}", param="name")
        final = validate_name(name or spec_name)
        CompiledPrompt(content, name=final, version=None, max_chars=self._max_chars)
        return final, content

    async def create_prompt(
        self,
        caller: Caller,
        data: Mapping[str, Any],
        *,
        message: str | None = None,
        labels: list[str] | None = None,
    ) -> PushResult:
        """A new prompt with version 1; ConflictError when the name is taken in the project."""
        name, content = self._checked(data, None, message, labels)
        for label in labels or []:
            _may_move(caller, name, DEFAULT_PROTECTED, label, "labels")
        if await asyncio.to_thread(self._store.find_prompt, caller.project_id, name) is not None:
            raise ConflictError(f"prompt {name!r} already exists", param="name", code="prompt_exists")
        result = await asyncio.to_thread(self._create_sync, caller, name, content, message)
        self._cache.invalidate(caller.project_id, name)
        for label in labels or []:
            await self.move_label(caller, name, label, result.version.version)
        return result

    def _checked(
        self, data: Mapping[str, Any], name: str | None, message: str | None, labels: list[str] | None
    ) -> tuple[str, PromptContent]:
        checked = self.check(data, name=name)
        if message is not None:
            valid_text(message, "message")
        for label in labels or []:
            validate_label(label, param="labels")
        return checked

    async def push(
        self,
        caller: Caller,
        data: Mapping[str, Any],
        *,
        name: str | None = None,
        message: str | None = None,
        create: bool = False,
        labels: list[str] | None = None,
    ) -> PushResult:
        """A new version unless the content equals the latest version's (then nothing changes).
        ``create`` makes the prompt when it does not exist; ``labels`` are then moved to the result."""
        name, content = self._checked(data, name, message, labels)
        if labels:  # refuse before writing anything
            existing = await asyncio.to_thread(self._store.find_prompt, caller.project_id, name)
            for label in labels:
                _may_move(caller, name, existing.protected_labels if existing else DEFAULT_PROTECTED, label, "labels")
        result = await asyncio.to_thread(self._push_sync, caller, name, content, message, create)
        self._cache.invalidate(caller.project_id, name)
        for label in labels or []:
            await self.move_label(caller, name, label, result.version.version)
        return result

    def _new_version(
        self, caller: Caller, prompt_id: str, name: str, number: int, content: PromptContent, message: str | None
    ) -> tuple[PromptVersion, Label, LabelMove]:
        now = self._clock.now_ns()
        version = PromptVersion(prompt_id, name, number, content, content.content_hash(), message, caller.key_id, now)
        state = LabelState(number)
        before = LabelState(number - 1) if number > 1 else None
        move = LabelMove(LATEST, "auto", before, state, caller.key_id, now)
        return version, Label(LATEST, state, now, caller.key_id), move

    def _create_sync(self, caller: Caller, name: str, content: PromptContent, message: str | None) -> PushResult:
        prompt = Prompt(new_id("prm"), caller.project_id, name, self._clock.now_ns())
        version, latest, move = self._new_version(caller, prompt.prompt_id, name, 1, content, message)
        self._store.insert_prompt(prompt, version, latest, move)
        return PushResult(version, True)

    def _push_sync(
        self, caller: Caller, name: str, content: PromptContent, message: str | None, create: bool
    ) -> PushResult:
        for attempt in range(PUSH_ATTEMPTS):
            prompt = self._store.find_prompt(caller.project_id, name)
            if prompt is None:
                if not create:
                    raise prompt_not_found(name)
                try:
                    return self._create_sync(caller, name, content, message)
                except ConflictError:
                    continue  # created concurrently: push onto it
            latest = self._store.find_latest_version(caller.project_id, prompt.prompt_id)
            assert latest is not None  # a prompt is created with its first version
            if latest.content_hash == content.content_hash():
                return PushResult(latest, False)
            new = self._new_version(caller, prompt.prompt_id, name, latest.version + 1, content, message)
            try:
                self._store.insert_version(caller.project_id, *new)
                return PushResult(new[0], True)
            except ConflictError:
                if attempt == PUSH_ATTEMPTS - 1:
                    raise
        raise ConflictError(f"prompt {name!r} changed concurrently; push again", param="name")

    # ---- labels ---------------------------------------------------------------------------------------

    async def move_label(self, caller: Caller, name: str, label: str, version: int) -> Label:
        prompt = await self._guarded(caller, name, label)
        if await asyncio.to_thread(self._store.find_version, caller.project_id, prompt.prompt_id, version) is None:
            raise _no_version(name, version)
        if self.label_gate is not None:
            found = await asyncio.to_thread(self._store.list_labels, caller.project_id, prompt.prompt_id)
            before = next((lb.state.version for lb in found if lb.label == label), None)
            await self.label_gate.check(caller.project_id, name, label, before, version)
        return await self._set_label(caller, prompt, label, LabelState(version), "move")

    async def set_canary(self, caller: Caller, name: str, label: str, version: int, percent: float) -> Label:
        """Send ``percent`` % of the label's calls to ``version``; the rest stay on its current version."""
        if not 0 < percent < 100:
            raise InvalidInputError("percent must be between 0 and 100 (exclusive)", param="percent")
        prompt = await self._guarded(caller, name, label)
        current = await self._current(caller.project_id, prompt, label)
        if version == current.state.version:
            raise InvalidInputError(f"label {label!r} already points at version {version}", param="version")
        if await asyncio.to_thread(self._store.find_version, caller.project_id, prompt.prompt_id, version) is None:
            raise _no_version(name, version)
        if self.label_gate is not None:  # promotion gate: a canary sends real traffic to the version too
            await self.label_gate.check(caller.project_id, name, label, current.state.version, version)
        state = LabelState(current.state.version, version, float(percent))
        return await self._set_label(caller, prompt, label, state, "canary")

    async def rollback(self, caller: Caller, name: str, label: str) -> Label:
        """Back to the label's previous version (a canary split keeps only its stable side)."""
        prompt = await self._guarded(caller, name, label)
        current = await self._current(caller.project_id, prompt, label)
        history = await asyncio.to_thread(self._store.list_moves, caller.project_id, prompt.prompt_id, label=label)
        target = rollback_target(current.state, history)
        if target is None:
            raise ConflictError(
                f"label {label!r} of prompt {name!r} has no earlier version to roll back to",
                param="label",
                code="nothing_to_roll_back",
            )
        if self.label_gate is not None and target.version != current.state.version:  # promotion gate
            await self.label_gate.check(caller.project_id, name, label, current.state.version, target.version)
        return await self._set_label(caller, prompt, label, target, "rollback")

    async def set_protected_labels(self, caller: Caller, name: str, labels: list[str]) -> Prompt:
        """Which labels only admin keys may move (admin only)."""
        if not caller.is_admin:
            raise PermissionDeniedError("changing protected labels needs an admin key", param="protected_labels")
        clean = tuple(dict.fromkeys(validate_label(lb, param="protected_labels") for lb in labels))
        prompt = await self.get_prompt(caller.project_id, name)
        now = self._clock.now_ns()
        await asyncio.to_thread(self._store.update_protected_labels, caller.project_id, prompt.prompt_id, clean, now)
        self._cache.invalidate(caller.project_id, name)
        return Prompt(prompt.prompt_id, prompt.project_id, name, prompt.created_ns, clean)

    async def _guarded(self, caller: Caller, name: str, label: str) -> Prompt:
        validate_label(label)
        prompt = await self.get_prompt(caller.project_id, name)
        _may_move(caller, name, prompt.protected_labels, label)
        return prompt

    async def _current(self, project_id: str, prompt: Prompt, label: str) -> Label:
        found = await asyncio.to_thread(self._store.list_labels, project_id, prompt.prompt_id)
        current = next((lb for lb in found if lb.label == label), None)
        if current is None:
            raise _no_label(prompt.name, label)
        return current

    async def _set_label(
        self, caller: Caller, prompt: Prompt, label: str, state: LabelState, action: MoveAction
    ) -> Label:
        found = await asyncio.to_thread(self._store.list_labels, caller.project_id, prompt.prompt_id)
        before = next((lb for lb in found if lb.label == label), None)
        if before is not None and before.state == state:
            return before
        now = self._clock.now_ns()
        new = Label(label, state, now, caller.key_id)
        move = LabelMove(label, action, before.state if before else None, state, caller.key_id, now)
        await asyncio.to_thread(self._store.save_label, caller.project_id, prompt.prompt_id, new, move)
        self._cache.invalidate(caller.project_id, prompt.name)
        return new

    # ---- reads ----------------------------------------------------------------------------------------

    async def list_prompts(self, project_id: str) -> list[PromptSummary]:
        return await asyncio.to_thread(self._store.list_prompts, project_id)

    async def get_prompt(self, project_id: str, name: str) -> Prompt:
        validate_name(name)
        prompt = await asyncio.to_thread(self._store.find_prompt, project_id, name)
        if prompt is None:
            raise prompt_not_found(name)
        return prompt

    async def list_versions(self, project_id: str, name: str) -> list[PromptVersion]:
        prompt = await self.get_prompt(project_id, name)
        return await asyncio.to_thread(self._store.list_versions, project_id, prompt.prompt_id)

    async def list_labels(self, project_id: str, name: str) -> list[Label]:
        prompt = await self.get_prompt(project_id, name)
        return await asyncio.to_thread(self._store.list_labels, project_id, prompt.prompt_id)

    async def label_history(self, project_id: str, name: str, *, label: str | None = None) -> list[LabelMove]:
        """Every move of the prompt's labels (or of one label), newest first."""
        prompt = await self.get_prompt(project_id, name)
        moves = await asyncio.to_thread(self._store.list_moves, project_id, prompt.prompt_id, label=label)
        return moves[::-1]

    async def get_version(
        self, project_id: str, name: str, ref: str | int, *, param: str = "ref"
    ) -> tuple[PromptVersion, Label | None]:
        """A version by number or by label (the label's stable version), with the label when given one."""
        prompt = await self.get_prompt(project_id, name)
        parsed = parse_ref(ref, param=param)
        label = None
        if isinstance(parsed, str):
            label = await self._current(project_id, prompt, parsed)
            number = label.state.version
        else:
            number = parsed
        version = await asyncio.to_thread(self._store.find_version, project_id, prompt.prompt_id, number)
        if version is None:
            raise _no_version(name, number, param)
        return version, label

    async def diff(self, project_id: str, name: str, a: str | int, b: str | int) -> str:
        """Unified diff of two versions' prompt files (template and configuration)."""
        va, _ = await self.get_version(project_id, name, a, param="a")
        vb, _ = await self.get_version(project_id, name, b, param="b")
        return "".join(
            difflib.unified_diff(
                dump_file(name, va.content).splitlines(keepends=True),
                dump_file(name, vb.content).splitlines(keepends=True),
                fromfile=f"{name}@v{va.version}",
                tofile=f"{name}@v{vb.version}",
            )
        )

    async def render(
        self,
        project_id: str,
        name: str,
        ref: str | int,
        variables: Mapping[str, Any],
        *,
        coerce: bool = False,
    ) -> tuple[PromptVersion, str | list[dict[str, str]]]:
        """A version rendered: its text (text prompts) or messages (chat prompts)."""
        version, _ = await self.get_version(project_id, name, ref)
        compiled = await self.compiled(project_id, name, version.version)
        values = compiled.coerce({k: str(v) for k, v in variables.items()}) if coerce else dict(variables)
        if compiled.type == "text":
            return version, compiled.render(**values)
        return version, compiled.messages(**values)

    async def compiled(self, project_id: str, name: str, version: int) -> CompiledPrompt:
        entry = await self._cache.entry(project_id, name)
        return await self._cache.compiled(project_id, entry, version)

    # ---- the gateway's hot path -----------------------------------------------------------------------

    async def resolve(
        self, project_id: str, name: str, ref: str | int, *, sticky_key: str | None = None, param: str = "model"
    ) -> Resolution:
        """Which compiled version serves a call to ``name@ref`` (label with canary split, or a number)."""
        try:
            entry = await self._cache.entry(project_id, name)
        except NotFoundError:
            raise prompt_not_found(name, param=param) from None
        if isinstance(ref, int):
            version, label, canary = ref, None, None
        else:
            state = entry.labels.get(ref)
            if state is None:
                raise _no_label(name, ref, param)
            label = ref
            version, canary = pick(state, name=name, label=ref, sticky_key=sticky_key)
        compiled = entry.compiled.get(version) or await self._cache.compiled(project_id, entry, version)
        return Resolution(compiled, label, canary)
