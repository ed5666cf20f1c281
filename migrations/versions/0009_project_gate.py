"""The per-project validation gate and drift alarm: project_status (each project's standing under a
policy), triage_policy.project_gate (the policy decides a project only on the sides its status
opens), claim.gate and review.gate (the stack was served, at random, to validate its project).

Policies saved before this revision keep deciding every project alike (``project_gate`` false).

Revision ID: 0009_project_gate
Revises: 0008_policy_promise_review_k
Create Date: 2026-12-06 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_project_gate'
down_revision = '0008_policy_promise_review_k'
branch_labels = None
depends_on = None

STATUSES = "status IN ('validated', 'gated', 'drifted')"


def upgrade() -> None:
    with op.batch_alter_table('triage_policy') as batch:
        batch.add_column(sa.Column('project_gate', sa.Boolean(), server_default=sa.false(), nullable=False))
    for table in ('claim', 'review'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('gate', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'project_status',
        sa.Column('policy_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('low_open', sa.Boolean(), nullable=False),
        sa.Column('high_open', sa.Boolean(), nullable=False),
        sa.Column('answered', sa.Integer(), nullable=False),
        sa.Column('stalled', sa.Integer(), nullable=False),
        sa.Column('stacks_needed', sa.Integer(), nullable=False),
        sa.Column('gate_reviews', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.CheckConstraint(STATUSES, name=op.f('ck_project_status_status')),
        sa.ForeignKeyConstraint(['policy_id'], ['triage_policy.id'], ondelete='CASCADE',
                                name=op.f('fk_project_status_policy_id_triage_policy')),
        sa.PrimaryKeyConstraint('policy_id', 'project_id', name=op.f('pk_project_status')),
    )


def downgrade() -> None:
    op.drop_table('project_status')
    for table in ('review', 'claim'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('gate')
    with op.batch_alter_table('triage_policy') as batch:
        batch.drop_column('project_gate')
