"""OpenAI-compatible files and batches (owned by the batches work: gateway/files.py, gateway/batches.py)

- ``files``: metadata of an uploaded or generated file (content under ``LLMOPS_HOME/files/<file_id>``), per project.
- ``batches``: one batch job: its input file, endpoint, status, per-transition timestamps (epoch seconds), request
  counts and the creator's key (jobs run as the key that created them, also after a restart); ``runner_id`` /
  ``lease_until`` name the process running it (a lease renewed while it runs, so one process runs a batch).
- ``batch_results``: one row per processed input line (``line_no`` from 0), written before the line counts, so a
  restart resumes after the last durable line. The output and error files are assembled from these rows.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_files_project", "files", ["project_id", "created_at"])
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("errors", sa.Text, nullable=True),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("completed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("output_file_id", sa.String(64), nullable=True),
        sa.Column("error_file_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("in_progress_at", sa.BigInteger, nullable=True),
        sa.Column("finalizing_at", sa.BigInteger, nullable=True),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("failed_at", sa.BigInteger, nullable=True),
        sa.Column("cancelling_at", sa.BigInteger, nullable=True),
        sa.Column("cancelled_at", sa.BigInteger, nullable=True),
        sa.Column("runner_id", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_batches_project", "batches", ["project_id", "batch_id"])
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_results",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("custom_id", sa.String(512), nullable=True),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("batch_results")
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_index("ix_batches_project", table_name="batches")
    op.drop_table("batches")
    op.drop_index("ix_files_project", table_name="files")
    op.drop_table("files")
