"""tracked mailings: segments, campaigns, recipients, links, tracking hits, bounces, suppressions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "rules", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_campaign_segments_name")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "scheduled",
                "sending",
                "paused",
                "finished",
                "cancelled",
                name="campaignstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("mailbox", sa.String(length=100), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("tracking", sa.Boolean(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_campaigns_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["campaign_segments.id"],
            name=op.f("fk_campaigns_segment_id_campaign_segments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_status"), ["status"], unique=False)

    op.create_table(
        "campaign_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_links_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_links")),
        sa.UniqueConstraint("campaign_id", "number", name=op.f("uq_campaign_links_campaign_id_number")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(
                "unsubscribed",
                "hard_bounce",
                "complaint",
                "soft_bounces",
                "manual",
                name="suppressionreason",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_suppressions_campaign_id_campaigns"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("address_key", name=op.f("uq_suppressions_address_key")),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "failed",
                "review",
                "cancelled",
                name="recipientstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_campaign_recipients_client_id_clients"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_campaign_recipients_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint("campaign_id", "address_key", name=op.f("uq_campaign_recipients_campaign_id_address_key")),
    )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_recipients_address_key"), ["address_key"], unique=False)
        batch_op.create_index(
            "ix_campaign_recipients_campaign_id_status_id", ["campaign_id", "status", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_campaign_recipients_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_recipients_message_id"), ["message_id"], unique=False)

    op.create_table(
        "campaign_bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["campaign_recipients.id"],
            name=op.f("fk_campaign_bounces_recipient_id_campaign_recipients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_bounces")),
    )
    with op.batch_alter_table("campaign_bounces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_bounces_address_key"), ["address_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_bounces_recipient_id"), ["recipient_id"], unique=False)

    op.create_table(
        "tracking_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("link_number", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("human", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_tracking_hits_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["campaign_recipients.id"],
            name=op.f("fk_tracking_hits_recipient_id_campaign_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_hits")),
    )
    with op.batch_alter_table("tracking_hits", schema=None) as batch_op:
        batch_op.create_index("ix_tracking_hits_campaign_id_kind_at", ["campaign_id", "kind", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tracking_hits_recipient_id"), ["recipient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tracking_hits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_hits_recipient_id"))
        batch_op.drop_index("ix_tracking_hits_campaign_id_kind_at")

    op.drop_table("tracking_hits")
    with op.batch_alter_table("campaign_bounces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_bounces_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_bounces_address_key"))

    op.drop_table("campaign_bounces")
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_message_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_client_id"))
        batch_op.drop_index("ix_campaign_recipients_campaign_id_status_id")
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_address_key"))

    op.drop_table("campaign_recipients")
    op.drop_table("suppressions")
    op.drop_table("campaign_links")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_status"))

    op.drop_table("campaigns")
    op.drop_table("campaign_segments")
