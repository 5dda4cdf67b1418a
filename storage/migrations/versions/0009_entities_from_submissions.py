"""Entities from submissions: each version's submission and offline branch, conflicts, the
links between submissions and the entities they are about, and the audit lookup by subject.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("entity_version") as batch:
        batch.add_column(
            sa.Column(
                "submission_version_id",
                sa.Integer(),
                sa.ForeignKey("submission_version.id", name="fk_entity_version_submission_version"),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("branch_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("trunk_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("branch_base_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("conflicting_properties", _JSON, nullable=True))
        batch.add_column(
            sa.Column("resolved", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_entity_version_submission_version_id", "entity_version", ["submission_version_id"]
    )
    op.create_table(
        "entity_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submission.id"), nullable=False),
        sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entity.id"), nullable=False),
        sa.Column("how", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("actor.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("submission_id", "entity_id"),
    )
    op.create_index("ix_entity_link_submission_id", "entity_link", ["submission_id"])
    op.create_index("ix_entity_link_entity_id", "entity_link", ["entity_id"])
    op.create_table(
        "entity_backlog",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "submission_version_id",
            sa.Integer(),
            sa.ForeignKey("submission_version.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("entity_uuid", sa.String(length=36), nullable=False),
        sa.Column("branch_id", sa.String(length=36), nullable=True),
        sa.Column("branch_base_version", sa.Integer(), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_entity_backlog_entity_uuid", "entity_backlog", ["entity_uuid"])
    op.create_index("audit_subject_idx", "audit", ["subject_type", "subject_id", "logged_at"])


def downgrade() -> None:
    op.drop_index("audit_subject_idx", "audit")
    op.drop_table("entity_backlog")
    op.drop_table("entity_link")
    op.drop_index("ix_entity_version_submission_version_id", "entity_version")
    with op.batch_alter_table("entity_version") as batch:
        for name in (
            "resolved",
            "conflicting_properties",
            "branch_base_version",
            "trunk_version",
            "branch_id",
        ):
            batch.drop_column(name)
        batch.drop_constraint("fk_entity_version_submission_version", type_="foreignkey")
        batch.drop_column("submission_version_id")
