"""app_user.session_version: signed session cookies carry it, so logout, a password change or a
deactivation ends the user's sessions in every browser.

Revision ID: 0006_user_session_version
Revises: 0005_known_answers
Create Date: 2026-11-30 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_user_session_version'
down_revision = '0005_known_answers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('app_user') as batch:
        batch.drop_column('session_version')
