"""call log

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("caller_name", sa.String(length=200), nullable=True),
        sa.Column("did", sa.String(length=32), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("answered_by", sa.String(length=32), nullable=True),
        sa.Column("transferred_to", sa.String(length=32), nullable=True),
        sa.Column("final_operator", sa.String(length=32), nullable=True),
        sa.Column("operator", sa.String(length=32), nullable=True),
        sa.Column("callee", sa.String(length=32), nullable=True),
        sa.Column("originate_id", sa.String(length=64), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hangup_cause", sa.String(length=64), nullable=True),
        sa.Column("recording_file", sa.String(length=500), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("called_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("called_back_by", sa.Integer(), nullable=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["called_back_by"], ["calls.id"], name=op.f("fk_calls_called_back_by_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_calls_client_id_clients"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_calls_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("pbx", "linkedid", name=op.f("uq_calls_pbx_linkedid")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_final_operator"), ["final_operator"], unique=False)
        batch_op.create_index("ix_calls_number_status", ["number", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_originate_id"), ["originate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_queue"), ["queue"], unique=False)
        batch_op.create_index("ix_calls_started_at", ["started_at"], unique=False)

    op.create_table(
        "call_rings",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_rings_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", "extension", name=op.f("pk_call_rings")),
    )
    with op.batch_alter_table("call_rings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_rings_extension"), ["extension"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_rings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_rings_extension"))

    op.drop_table("call_rings")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_started_at")
        batch_op.drop_index(batch_op.f("ix_calls_queue"))
        batch_op.drop_index(batch_op.f("ix_calls_originate_id"))
        batch_op.drop_index("ix_calls_number_status")
        batch_op.drop_index(batch_op.f("ix_calls_final_operator"))
        batch_op.drop_index(batch_op.f("ix_calls_client_id"))

    op.drop_table("calls")
