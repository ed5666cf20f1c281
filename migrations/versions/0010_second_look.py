"""Second looks at likely crowd errors: second_look (a labelled stack an admin asked to look at
again, with why), claim.second_look and review.second_look (the answer was given as that second
look: it replaces the crowd's answer as the stack's reference label).

Revision ID: 0010_second_look
Revises: 0009_project_gate
Create Date: 2026-12-07 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_second_look'
down_revision = '0009_project_gate'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('claim', 'review'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('second_look', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'second_look',
        sa.Column('vessel_id', sa.Integer(), nullable=False),
        sa.Column('model_run_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('requested_by', sa.String(length=64), nullable=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['vessel_id'], ['vessel.id'], ondelete='CASCADE',
                                name=op.f('fk_second_look_vessel_id_vessel')),
        sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], ondelete='SET NULL',
                                name=op.f('fk_second_look_model_run_id_model_run')),
        sa.PrimaryKeyConstraint('vessel_id', name=op.f('pk_second_look')),
    )


def downgrade() -> None:
    op.drop_table('second_look')
    for table in ('review', 'claim'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('second_look')
