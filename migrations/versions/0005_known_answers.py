"""Known-answer stacks in the review queue: app settings (the mixing rate) and review.known_answer.

Revision ID: 0005_known_answers
Revises: 0004_prediction_role
Create Date: 2026-11-30 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_known_answers'
down_revision = '0004_prediction_role'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'app_setting',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_app_setting')),
    )
    with op.batch_alter_table('review') as batch_op:
        batch_op.add_column(sa.Column('known_answer', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('review') as batch_op:
        batch_op.drop_column('known_answer')
    op.drop_table('app_setting')
