"""Notes written on a call in progress, kept until the call's log row is written

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_call_notes",
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pbx", "linkedid", name=op.f("pk_live_call_notes")),
    )
    op.create_index(op.f("ix_live_call_notes_updated_at"), "live_call_notes", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_live_call_notes_updated_at"), table_name="live_call_notes")
    op.drop_table("live_call_notes")
