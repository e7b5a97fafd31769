"""What corpus health needs from storage (``SqlFindingStore`` in ``rag/_health_sql.py``). Project-scoped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from llmops.rag.health.models import Finding, FindingStatus


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
