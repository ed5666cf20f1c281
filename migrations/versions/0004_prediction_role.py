"""Prediction role and fold instead of the out_of_fold flag; a policy side may be NULL (decides nothing).

``prediction.role`` is derived from the old flag: out-of-fold rows become ``out_of_fold``, the
others ``new`` (the old flag cannot tell a held-out stack from one the run never knew). Stored
"decide nothing" sides of policies (t_low = 0, t_high = 1, the closest the old schema came to an
infinite threshold) become NULL. The downgrade maps back: NULL sides to 0 and 1, ``out_of_fold``
to the flag (held-out and new rows lose their distinction, and the fold is dropped).

Revision ID: 0004_prediction_role
Revises: 0003
Create Date: 2026-11-30 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_prediction_role'
down_revision = '0003'
branch_labels = None
depends_on = None

ROLES = "role IN ('out_of_fold', 'held_out', 'new')"
NULLABLE_THRESHOLDS = ("(t_low IS NULL OR t_low >= 0) AND (t_high IS NULL OR t_high <= 1) "
                       "AND (t_low IS NULL OR t_high IS NULL OR t_low <= t_high)")
OLD_THRESHOLDS = 't_low >= 0 AND t_low <= t_high AND t_high <= 1'


def upgrade() -> None:
    with op.batch_alter_table('prediction') as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), server_default='new', nullable=False))
        batch_op.add_column(sa.Column('fold', sa.Integer(), nullable=True))
    op.execute("UPDATE prediction SET role = 'out_of_fold' WHERE out_of_fold")
    with op.batch_alter_table('prediction') as batch_op:
        batch_op.drop_column('out_of_fold')
        batch_op.create_check_constraint(op.f('ck_prediction_role'), sa.text(ROLES))
    with op.batch_alter_table('triage_policy') as batch_op:
        batch_op.drop_constraint(op.f('ck_triage_policy_thresholds'), type_='check')
        batch_op.alter_column('t_low', existing_type=sa.Float(), nullable=True)
        batch_op.alter_column('t_high', existing_type=sa.Float(), nullable=True)
    op.execute("UPDATE triage_policy SET t_low = NULL WHERE t_low <= 0")
    op.execute("UPDATE triage_policy SET t_high = NULL WHERE t_high >= 1")
    with op.batch_alter_table('triage_policy') as batch_op:
        batch_op.create_check_constraint(op.f('ck_triage_policy_thresholds'), sa.text(NULLABLE_THRESHOLDS))


def downgrade() -> None:
    with op.batch_alter_table('triage_policy') as batch_op:
        batch_op.drop_constraint(op.f('ck_triage_policy_thresholds'), type_='check')
    op.execute("UPDATE triage_policy SET t_low = 0 WHERE t_low IS NULL")
    op.execute("UPDATE triage_policy SET t_high = 1 WHERE t_high IS NULL")
    with op.batch_alter_table('triage_policy') as batch_op:
        batch_op.alter_column('t_low', existing_type=sa.Float(), nullable=False)
        batch_op.alter_column('t_high', existing_type=sa.Float(), nullable=False)
        batch_op.create_check_constraint(op.f('ck_triage_policy_thresholds'), sa.text(OLD_THRESHOLDS))
    with op.batch_alter_table('prediction') as batch_op:
        batch_op.add_column(sa.Column('out_of_fold', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE prediction SET out_of_fold = (role = 'out_of_fold')")
    with op.batch_alter_table('prediction') as batch_op:
        batch_op.drop_constraint(op.f('ck_prediction_role'), type_='check')
        batch_op.drop_column('fold')
        batch_op.drop_column('role')
        batch_op.alter_column('out_of_fold', existing_type=sa.Boolean(), server_default=None)
