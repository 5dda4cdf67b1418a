"""Indexes for keyset pages over a form's submissions.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("submission_form_created_idx", "submission", ["form_id", "created_at", "id"])
    op.create_index("submission_form_id_idx", "submission", ["form_id", "id"])


def downgrade() -> None:
    op.drop_index("submission_form_id_idx", table_name="submission")
    op.drop_index("submission_form_created_idx", table_name="submission")
