"""Text a phone or client sends as unbounded `text`, so both databases keep the same values.

PostgreSQL enforced these VARCHAR(n) limits and SQLite did not: the same submission (a long
instanceName, a deviceID over 255 characters) was a 400 on one and a 201 on the other. None of
these columns is indexed, so nothing needs a limit; the indexed ones (instanceIDs, attachment
and media names, form ids and versions) keep theirs, checked before any statement is sent
(forms.instance, storage.models) so both databases refuse the same values in the same way.

On PostgreSQL VARCHAR(n) -> text is a catalogue change (binary-coercible: no table rewrite).
SQLite stores both with TEXT affinity, so only the declared type in its schema changes. SQLite
cannot alter a column's type; its usual remedy (copy the table, drop the old one) would break
the foreign keys pointing at these tables, which stay enforced inside the migration's
transaction (`PRAGMA foreign_keys` cannot change there). So the declaration is rewritten in
`sqlite_master`, SQLite's documented procedure for changes that leave the stored data as it is
(https://www.sqlite.org/lang_altertable.html#otheralter), in the same transaction, and checked.

Revision ID: 0005
Revises: 0004
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> [(column, its old length, nullable)]
CHANGES = {
    "actor": [("display_name", 255, False)],
    "project": [("name", 255, False)],
    "blob": [("content_type", 255, False)],
    "form_version": [("title", 1024, False), ("xlsform_name", 255, True)],
    "submission": [("device_id", 255, True), ("user_agent", 512, True)],
    "submission_version": [
        ("instance_name", 1024, True),
        ("device_id", 255, True),
        ("user_agent", 512, True),
    ],
    "submission_attachment": [("content_type", 255, True)],
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_declare(
            {
                table: [(column, f"VARCHAR({length})", "TEXT") for column, length, _ in columns]
                for table, columns in CHANGES.items()
            }
        )
        return
    for table, columns in CHANGES.items():
        for column, length, nullable in columns:
            op.alter_column(
                table,
                column,
                type_=sa.Text(),
                existing_type=sa.String(length),
                existing_nullable=nullable,
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_declare(
            {
                table: [(column, "TEXT", f"VARCHAR({length})") for column, length, _ in columns]
                for table, columns in CHANGES.items()
            }
        )
        return
    for table, columns in CHANGES.items():
        for column, length, nullable in columns:
            # Fails (and changes nothing) if a longer value has been stored since.
            op.alter_column(
                table,
                column,
                type_=sa.String(length),
                existing_type=sa.Text(),
                existing_nullable=nullable,
            )


def _sqlite_declare(changes: dict[str, list[tuple[str, str, str]]]) -> None:
    """Change columns' declared types in SQLite's schema text: (column, old type, new type).

    Only for types of the same affinity (VARCHAR(n) and TEXT are both TEXT), whose stored
    values do not change. Each declaration must be found exactly once, else nothing is
    changed (the migration's transaction rolls back)."""
    bind = op.get_bind()
    schema = dict(
        bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
    )
    rewritten = {}
    for table, columns in changes.items():
        sql = schema[table]
        for column, old, new in columns:
            old_type = re.escape(old).replace(r"\(", r"\s*\(\s*")  # VARCHAR ( 255 ) too
            declared = re.compile(
                rf'([(,]\s*"?{re.escape(column)}"?\s+){old_type}(?=[\s,)])', re.IGNORECASE
            )
            sql, found = declared.subn(rf"\g<1>{new}", sql)
            if found != 1:
                raise RuntimeError(
                    f"{table}.{column}: expected one declaration {old}, found {found}"
                )
        rewritten[table] = sql
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for table, sql in rewritten.items():
            bind.exec_driver_sql(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql, table)
            )
        # A new schema version makes every connection read the schema again.
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    for table, columns in changes.items():
        types = {row[1]: row[2] for row in bind.exec_driver_sql(f'PRAGMA table_info("{table}")')}
        for column, _, new in columns:
            if types.get(column, "").upper() != new.upper():
                raise RuntimeError(f"{table}.{column} is declared {types.get(column)!r}, not {new}")
