"""Central's role names: the officer role becomes Central's data collector (`formfill`).

Form assignments are enforced from this release on (an app user lists, downloads and submits
to only the forms assigned to it). Before, every app user filled every form of its project, so
each app user whose key is live is assigned the project's forms it could fill until now: no
phone loses a form in the upgrade. The downgrade renames the role back and leaves the form
assignments (the older code records them and does not read them).

Revision ID: 0007
Revises: 0006
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_assignment = sa.table(
    "role_assignment",
    sa.column("actor_id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("role", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _rename(old: str, new: str) -> None:
    op.execute(_assignment.update().where(_assignment.c.role == old).values(role=new))


def upgrade() -> None:
    _rename("officer", "formfill")
    bind = op.get_bind()
    held = {
        (actor, role)
        for actor, role in bind.execute(
            sa.text("SELECT actor_id, role FROM role_assignment WHERE role LIKE 'form:%'")
        )
    }
    live = bind.execute(
        sa.text(
            "SELECT app_user.actor_id, form.project_id, form.id FROM app_user "
            "JOIN actor ON actor.id = app_user.actor_id "
            "JOIN form ON form.project_id = app_user.project_id "
            "WHERE app_user.revoked_at IS NULL AND actor.deleted_at IS NULL "
            "AND form.deleted_at IS NULL ORDER BY app_user.actor_id, form.id"
        )
    ).all()
    now = datetime.now(UTC)
    rows = [
        {"actor_id": actor, "project_id": project, "role": f"form:{form}", "created_at": now}
        for actor, project, form in live
        if (actor, f"form:{form}") not in held
    ]
    if rows:
        op.bulk_insert(_assignment, rows)


def downgrade() -> None:
    _rename("formfill", "officer")
