"""mail: messages, their copies on IMAP servers, threads, links to clients, attachments,
checkpoints and quarantine

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_checkpoints",
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", "folder", name=op.f("pk_mail_checkpoints")),
    )
    op.create_table(
        "mail_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_quarantine")),
        sa.UniqueConstraint(
            "mailbox", "folder", "uidvalidity", "uid", name=op.f("uq_mail_quarantine_mailbox_folder_uidvalidity_uid")
        ),
    )
    with op.batch_alter_table("mail_quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_quarantine_created_at"), ["created_at"], unique=False)

    op.create_table(
        "mail_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("subject_key", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_threads")),
    )
    with op.batch_alter_table("mail_threads", schema=None) as batch_op:
        batch_op.create_index("ix_mail_threads_subject_key_last_at", ["subject_key", "last_at"], unique=False)

    op.create_table(
        "mail_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=500), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("in_reply_to", sa.String(length=500), nullable=True),
        sa.Column(
            "refs", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("sender_address", sa.String(length=320), nullable=True),
        sa.Column("sender_name", sa.String(length=300), nullable=False),
        sa.Column(
            "recipients", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("remote_images", sa.Boolean(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column(
            "defects", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("awaiting_triage", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["mail_threads.id"], name=op.f("fk_mail_messages_thread_id_mail_threads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_mail_messages_dedup_key")),
    )
    with op.batch_alter_table("mail_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_messages_awaiting_triage"), ["awaiting_triage"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_messages_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_messages_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_messages_sender_address"), ["sender_address"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_messages_thread_id"), ["thread_id"], unique=False)

    op.create_table(
        "mail_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content_id", sa.String(length=500), nullable=True),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["mail_messages.id"],
            name=op.f("fk_mail_attachments_message_id_mail_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_attachments")),
    )
    with op.batch_alter_table("mail_attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_attachments_message_id"), ["message_id"], unique=False)

    op.create_table(
        "mail_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["mail_messages.id"],
            name=op.f("fk_mail_copies_message_id_mail_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_copies")),
        sa.UniqueConstraint(
            "mailbox", "folder", "uidvalidity", "uid", name=op.f("uq_mail_copies_mailbox_folder_uidvalidity_uid")
        ),
    )
    with op.batch_alter_table("mail_copies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_copies_message_id"), ["message_id"], unique=False)

    op.create_table(
        "mail_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("linked_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_mail_links_client_id_clients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_mail_links_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["linked_by"], ["users.id"], name=op.f("fk_mail_links_linked_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["mail_messages.id"],
            name=op.f("fk_mail_links_message_id_mail_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_links")),
    )
    with op.batch_alter_table("mail_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_links_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mail_links_message_id"), ["message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_links_message_id"))
        batch_op.drop_index(batch_op.f("ix_mail_links_client_id"))

    op.drop_table("mail_links")
    with op.batch_alter_table("mail_copies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_copies_message_id"))

    op.drop_table("mail_copies")
    with op.batch_alter_table("mail_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_attachments_message_id"))

    op.drop_table("mail_attachments")
    with op.batch_alter_table("mail_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_messages_thread_id"))
        batch_op.drop_index(batch_op.f("ix_mail_messages_sender_address"))
        batch_op.drop_index(batch_op.f("ix_mail_messages_received_at"))
        batch_op.drop_index(batch_op.f("ix_mail_messages_message_id"))
        batch_op.drop_index(batch_op.f("ix_mail_messages_awaiting_triage"))

    op.drop_table("mail_messages")
    with op.batch_alter_table("mail_threads", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_threads_subject_key_last_at")

    op.drop_table("mail_threads")
    with op.batch_alter_table("mail_quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_quarantine_created_at"))

    op.drop_table("mail_quarantine")
    op.drop_table("mail_checkpoints")
