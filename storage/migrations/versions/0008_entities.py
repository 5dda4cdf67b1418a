"""Entities of entity lists and their versions (REST-created; from submissions later).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "entity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id"), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("creator_id", sa.Integer(), sa.ForeignKey("actor.id"), nullable=True),
        sa.Column("conflict", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("dataset_id", "uuid"),
    )
    op.create_index("ix_entity_dataset_id", "entity", ["dataset_id"])
    op.create_table(
        "entity_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entity_id", sa.Integer(), sa.ForeignKey("entity.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("data_received", _JSON, nullable=False),
        sa.Column("source", _JSON, nullable=True),
        sa.Column("creator_id", sa.Integer(), sa.ForeignKey("actor.id"), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("entity_id", "version"),
    )
    op.create_index("ix_entity_version_entity_id", "entity_version", ["entity_id"])
    op.create_index(
        "entity_version_current_uq",
        "entity_version",
        ["entity_id"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )


def downgrade() -> None:
    op.drop_table("entity_version")
    op.drop_table("entity")
