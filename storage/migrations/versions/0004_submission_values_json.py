"""Submission values as `json`, not `jsonb`, on PostgreSQL.

Every export and OData page reads the values of many submissions as text. PostgreSQL hands
out a `json` value as the text it stored, but must serialise a `jsonb` value again: for the
100k-visit benchmark, reading every submission's values took 3 s of the database's time as
`jsonb` and 1.3 s as `json`. Nothing here needs what `jsonb` adds (containment operators and
their GIN indexes); path lookups (`->`, `->>`) and `json_typeof`/`json_array_length` exist for
both. SQLite is unchanged (JSON is text there).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "submission_version",
            "values",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(),
            postgresql_using='"values"::json',
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "submission_version",
            "values",
            type_=postgresql.JSONB(),
            existing_type=sa.JSON(),
            postgresql_using='"values"::jsonb',
        )
