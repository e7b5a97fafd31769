"""What the prompt service needs from storage. Every method is scoped by ``project_id``."""

from __future__ import annotations

from typing import Protocol

from llmops.prompts.models import Label, LabelMove, Prompt, PromptSummary, PromptVersion


class PromptStore(Protocol):
    def find_prompt(self, project_id: str, name: str) -> Prompt | None: ...

    def list_prompts(self, project_id: str) -> list[PromptSummary]: ...

    def insert_prompt(self, prompt: Prompt, first: PromptVersion, latest: Label, move: LabelMove) -> None:
        """Prompt, version 1 and its ``latest`` label in one transaction; ConflictError if the name exists."""
        ...

    def insert_version(self, project_id: str, version: PromptVersion, latest: Label, move: LabelMove) -> None:
        """A version and the ``latest`` move in one transaction; ConflictError if the number is taken."""
        ...

    def find_version(self, project_id: str, prompt_id: str, version: int) -> PromptVersion | None: ...

    def find_latest_version(self, project_id: str, prompt_id: str) -> PromptVersion | None: ...

    def list_versions(self, project_id: str, prompt_id: str) -> list[PromptVersion]:
        """Newest first."""
        ...

    def list_labels(self, project_id: str, prompt_id: str) -> list[Label]: ...

    def save_label(self, project_id: str, prompt_id: str, label: Label, move: LabelMove) -> None:
        """Point a label (insert or update) and append the move, in one transaction."""
        ...

    def list_moves(self, project_id: str, prompt_id: str, *, label: str | None = None) -> list[LabelMove]:
        """Oldest first."""
        ...

    def update_protected_labels(
        self, project_id: str, prompt_id: str, labels: tuple[str, ...], updated_ns: int
    ) -> None: ...
