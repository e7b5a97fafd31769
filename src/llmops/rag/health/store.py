"""What corpus health needs from storage (``SqlFindingStore`` in ``rag/_health_sql.py``). Project-scoped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llmops.rag.health.models import Finding, FindingStatus


@dataclass(frozen=True)
class PendingCheck:
    """Documents of one collection awaiting the background check (``document_ids`` None: check everything)."""

    project_id: str
    collection: str
    document_ids: tuple[str, ...] | None
    token: int  # changes whenever documents are added: clear_pending only removes what was read
    since_ns: int


class FindingStore(Protocol):
    def list_findings(
        self, project_id: str, collection: str, *, kind: str | None = None, status: str | None = None
    ) -> list[Finding]:
        """Ordered by kind, then score (highest first)."""
        ...

    def get_finding(self, project_id: str, collection: str, finding_id: str) -> Finding:
        """NotFoundError when absent (or in another project)."""
        ...

    def sync_findings(
        self,
        project_id: str,
        collection: str,
        findings: Sequence[Finding],
        *,
        kinds: Sequence[str],
        document_ids: Sequence[str] | None,
        now_ns: int,
    ) -> list[Finding]:
        """Make ``findings`` the current findings of ``kinds`` touching ``document_ids`` (all when None).

        Findings matched by fingerprint keep their id, status and creation time; the others in that scope
        are deleted. Returns the stored versions of ``findings``.
        """
        ...

    def set_status(
        self, project_id: str, collection: str, finding_id: str, status: FindingStatus, now_ns: int
    ) -> Finding: ...

    def add_pending(
        self, project_id: str, collection: str, document_ids: Sequence[str] | None, *, max_documents: int, now_ns: int
    ) -> PendingCheck:
        """Queue documents (None: the whole collection) for the background check, merged with what waits."""
        ...

    def list_pending(self, project_id: str | None = None, collection: str | None = None) -> list[PendingCheck]: ...

    def clear_pending(self, project_id: str, collection: str, token: int) -> bool: ...
