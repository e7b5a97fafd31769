"""prompt registry: prompts, immutable versions, labels and every label move (owned by the prompts work)

- ``prompts``: one row per prompt; ``(project_id, name)`` is unique. ``protected_labels`` is a JSON list.
- ``prompt_versions``: immutable; ``(prompt_id, version)`` is the key (numbers are per prompt, from 1).
  ``content`` is the canonical JSON of the version (template(s), variables, model config, tags).
- ``prompt_labels``: where each label points now (a version, or a canary split between two).
- ``prompt_label_moves``: append-only history of label changes (who, when, from -> to); rollback reads it.
Every table carries ``project_id`` so that every query filters by the caller's project.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _state(prefix: str, *, nullable: bool) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(f"{prefix}version", sa.Integer, nullable=nullable),
        sa.Column(f"{prefix}canary_version", sa.Integer, nullable=True),
        sa.Column(f"{prefix}canary_percent", sa.Float, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("prompt_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("protected_labels", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_prompts_project_name", "prompts", ["project_id", "name"], unique=True)
    op.create_table(
        "prompt_versions",
        sa.Column("prompt_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "prompt_labels",
        sa.Column("prompt_id", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        *_state("", nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "prompt_label_moves",
        sa.Column("move_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prompt_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        *_state("from_", nullable=True),
        *_state("to_", nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("moved_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_prompt_label_moves_prompt", "prompt_label_moves", ["prompt_id", "label", "move_id"])


def downgrade() -> None:
    op.drop_table("prompt_label_moves")
    op.drop_table("prompt_labels")
    op.drop_table("prompt_versions")
    op.drop_index("ux_prompts_project_name", "prompts")
    op.drop_table("prompts")
