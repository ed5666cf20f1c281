"""triage_policy.promise and stall_share: which promise a policy keeps (relative to the human
standard, or absolute against the truth) and the reference's stall share it was tuned at;
review.reviews_required: the k in force when the answer was given, so a later policy with
another k does not relabel stacks reviewed under the old one.

Policies saved before this revision were tuned against the truth with the human-error prior:
they are marked ``absolute``.

Revision ID: 0008_policy_promise_review_k
Revises: 0007_queue_spread_index
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_policy_promise_review_k'
down_revision = '0007_queue_spread_index'
branch_labels = None
depends_on = None

PROMISES = "promise IN ('relative', 'absolute')"


def upgrade() -> None:
    with op.batch_alter_table('triage_policy') as batch:
        batch.add_column(sa.Column('promise', sa.String(length=16), server_default='absolute', nullable=False))
        batch.add_column(sa.Column('stall_share', sa.Float(), nullable=True))
        batch.create_check_constraint(op.f('ck_triage_policy_promise'), sa.text(PROMISES))
    with op.batch_alter_table('review') as batch:
        batch.add_column(sa.Column('reviews_required', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('review') as batch:
        batch.drop_column('reviews_required')
    with op.batch_alter_table('triage_policy') as batch:
        batch.drop_constraint(op.f('ck_triage_policy_promise'), type_='check')
        batch.drop_column('stall_share')
        batch.drop_column('promise')
