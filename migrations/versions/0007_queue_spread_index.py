"""Index the queue's uncertainty order: (run, review_level, spread) for stacks that may need a human.

The "uncertainty" queue order serves the stack whose ensemble members disagree most (highest
``prediction.spread``) first; this partial index lets the claim query walk it from the top
instead of sorting every routed stack.

Revision ID: 0007_queue_spread_index
Revises: 0006_user_session_version
Create Date: 2026-11-30 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_queue_spread_index'
down_revision = '0006_user_session_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_prediction_queue_spread', 'prediction', ['model_run_id', 'review_level', 'spread', 'vessel_id'],
                    unique=False, sqlite_where=sa.text('review_level IS NOT NULL'),
                    postgresql_where=sa.text('review_level IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_prediction_queue_spread', table_name='prediction')
