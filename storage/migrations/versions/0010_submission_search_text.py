"""Free-text search over answers: `submission_version.search_text`.

The pages searched the JSON text of the answers with the database's `lower()`: field names,
`"`, `:` and `_` matched every submission, and SQLite's `lower()` folds ASCII only. The new
column holds each version's instance name and answer values, NFC-normalised and casefolded,
joined by a separator (storage.search.text_of); ingest writes it, and this migration fills it
for the rows already stored, a batch at a time.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from storage.search import text_of

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 500

_versions = sa.table(
    "submission_version",
    sa.column("id", sa.Integer()),
    sa.column("instance_name", sa.Text()),
    sa.column("values", sa.JSON()),
    sa.column("search_text", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("submission_version") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    connection = op.get_bind()
    update = (
        sa.update(_versions)
        .where(_versions.c.id == sa.bindparam("version_id"))
        .values(search_text=sa.bindparam("text"))
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(_versions.c.id, _versions.c.instance_name, _versions.c["values"])
            .where(_versions.c.id > last)
            .order_by(_versions.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            update,
            [
                {"version_id": row.id, "text": text_of(row[2] or {}, row.instance_name)}
                for row in rows
            ],
        )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("submission_version") as batch:
        batch.drop_column("search_text")
