"""Secrets the nodes of one journal share (the generated JWT secret).

Revision ID: 0002_secrets
Revises: 0001_events
Create Date: 2026-12-06

Nodes on one PostgreSQL journal must sign and verify tokens with the same secret. Where none
is configured, the first node generates one and keeps it here; the others read it
(chat_core/journal/postgres.py `kept_secret`). A SQLite server keeps its generated secret in
its data directory as before: the table exists on both dialects so that one schema serves
both, and stays empty there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_secrets"
down_revision = "0001_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("secrets")
