"""Queue bookkeeping: prediction.review_level and the partial index the claim query walks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

LEVEL = """
UPDATE prediction SET review_level = CASE
    WHEN EXISTS (SELECT 1 FROM crowd_answer
                 WHERE crowd_answer.vessel_id = prediction.vessel_id AND crowd_answer.label IS NOT NULL) THEN NULL
    ELSE (SELECT count(*) FROM review WHERE review.vessel_id = prediction.vessel_id AND review.answer != 'unsure')
END
"""


def upgrade() -> None:
    with op.batch_alter_table('prediction') as batch_op:
        batch_op.add_column(sa.Column('review_level', sa.SmallInteger(), nullable=True))
        batch_op.drop_index('ix_prediction_run_probability')
    op.execute(LEVEL)
    op.create_index('ix_prediction_queue', 'prediction', ['model_run_id', 'review_level', 'probability', 'vessel_id'],
                    unique=False, sqlite_where=sa.text('review_level IS NOT NULL'),
                    postgresql_where=sa.text('review_level IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_prediction_queue', table_name='prediction')
    with op.batch_alter_table('prediction') as batch_op:
        batch_op.drop_column('review_level')
        batch_op.create_index('ix_prediction_run_probability', ['model_run_id', 'probability', 'vessel_id'],
                              unique=False)
