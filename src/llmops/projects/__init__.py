"""Projects (tenants) and virtual API keys.

Owns: projects, keys (stored as SHA-256 hashes only), authentication of a raw key into a
:class:`Principal`. Imports only ``llmops.core``. Tested through its SQL store on SQLite and Postgres.
"""

from llmops.projects.models import ApiKey, CreatedKey, Principal, Project
from llmops.projects.service import ProjectService
from llmops.projects.store import ProjectStore

__all__ = ["ApiKey", "CreatedKey", "Principal", "Project", "ProjectService", "ProjectStore"]
