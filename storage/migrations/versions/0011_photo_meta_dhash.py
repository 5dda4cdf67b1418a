"""photo meta: a 256-bit dHash beside the pHash, so near-duplicates of printed pages are told
apart (forms/photos.py); rows from before are analysed again when a page next shows them

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photo_meta") as batch:
        batch.add_column(sa.Column("dhash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photo_meta") as batch:
        batch.drop_column("dhash")
