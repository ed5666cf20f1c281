"""Index prediction.vessel_id: a review refreshes the queue bookkeeping of one stack's predictions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_prediction_vessel_id'), 'prediction', ['vessel_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_prediction_vessel_id'), table_name='prediction')
