"""1C sync: links, conflicts, proposals, runs and their log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "onec_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum("running", "done", "failed", name="runstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column(
            "counts", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onec_runs")),
    )
    op.create_index("ix_onec_runs_connection_id", "onec_runs", ["connection", "id"], unique=False)
    op.create_index(
        "uq_onec_runs_running",
        "onec_runs",
        ["connection"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "onec_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("ref_key", sa.String(length=36), nullable=True),
        sa.Column(
            "fields", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["onec_runs.id"], name=op.f("fk_onec_log_run_id_onec_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onec_log")),
    )
    op.create_index(op.f("ix_onec_log_client_id"), "onec_log", ["client_id"], unique=False)
    op.create_index("ix_onec_log_run_id", "onec_log", ["run_id", "id"], unique=False)
    op.create_table(
        "onec_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("ref_key", sa.String(length=36), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum("linked", "creating", "ignored", "refused", "gone", name="linkstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("onec_version", sa.String(length=64), nullable=True),
        sa.Column("hub_version", sa.Integer(), nullable=True),
        sa.Column(
            "base", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_onec_links_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onec_links")),
        sa.UniqueConstraint("connection", "client_id", name=op.f("uq_onec_links_connection_client_id")),
        sa.UniqueConstraint("connection", "ref_key", name=op.f("uq_onec_links_connection_ref_key")),
    )
    op.create_table(
        "onec_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("ref_key", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("onec_name", sa.String(length=1000), nullable=False),
        sa.Column("onec_inn", sa.String(length=12), nullable=True),
        sa.Column(
            "status",
            sa.Enum("open", "accepted", "rejected", name="proposalstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("decided_by", sa.String(length=150), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_onec_proposals_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onec_proposals")),
        sa.UniqueConstraint(
            "connection", "ref_key", "client_id", name=op.f("uq_onec_proposals_connection_ref_key_client_id")
        ),
    )
    op.create_index(op.f("ix_onec_proposals_client_id"), "onec_proposals", ["client_id"], unique=False)
    op.create_index(op.f("ix_onec_proposals_ref_key"), "onec_proposals", ["ref_key"], unique=False)
    op.create_index(op.f("ix_onec_proposals_status"), "onec_proposals", ["status"], unique=False)
    op.create_table(
        "onec_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column(
            "base_value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "hub_value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "onec_value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", "applied", name="conflictstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "chosen_value", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("resolved_by", sa.String(length=150), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_onec_conflicts_client_id_clients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["onec_links.id"], name=op.f("fk_onec_conflicts_link_id_onec_links"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onec_conflicts")),
    )
    op.create_index(op.f("ix_onec_conflicts_client_id"), "onec_conflicts", ["client_id"], unique=False)
    op.create_index("ix_onec_conflicts_link_status", "onec_conflicts", ["link_id", "status"], unique=False)
    op.create_index(op.f("ix_onec_conflicts_status"), "onec_conflicts", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_onec_conflicts_status"), table_name="onec_conflicts")
    op.drop_index("ix_onec_conflicts_link_status", table_name="onec_conflicts")
    op.drop_index(op.f("ix_onec_conflicts_client_id"), table_name="onec_conflicts")
    op.drop_table("onec_conflicts")
    op.drop_index(op.f("ix_onec_proposals_status"), table_name="onec_proposals")
    op.drop_index(op.f("ix_onec_proposals_ref_key"), table_name="onec_proposals")
    op.drop_index(op.f("ix_onec_proposals_client_id"), table_name="onec_proposals")
    op.drop_table("onec_proposals")
    op.drop_table("onec_links")
    op.drop_index("ix_onec_log_run_id", table_name="onec_log")
    op.drop_index(op.f("ix_onec_log_client_id"), table_name="onec_log")
    op.drop_table("onec_log")
    op.drop_index(
        "uq_onec_runs_running",
        table_name="onec_runs",
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.drop_index("ix_onec_runs_connection_id", table_name="onec_runs")
    op.drop_table("onec_runs")
