"""Initial schema: vessels, crowd answers, model runs, predictions, policies, users, reviews, claims, audit.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 12:51:27.646259
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('reviewer', 'admin')", name=op.f('ck_app_user_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('name', name=op.f('uq_app_user_name'))
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    op.create_index(op.f('ix_audit_event_at'), 'audit_event', ['at'], unique=False)
    op.create_table('model_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('arch', sa.String(length=64), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('checkpoint_path', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_run')),
    sa.UniqueConstraint('name', name=op.f('uq_model_run_name'))
    )
    op.create_table('vessel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('num_frames', sa.Integer(), nullable=True),
    sa.Column('metadata_file', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=True),
    sa.Column('roi_x', sa.Integer(), nullable=True),
    sa.Column('roi_y', sa.Integer(), nullable=True),
    sa.Column('roi_width', sa.Integer(), nullable=True),
    sa.Column('roi_height', sa.Integer(), nullable=True),
    sa.Column('frame_width', sa.Integer(), nullable=True),
    sa.Column('frame_height', sa.Integer(), nullable=True),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("split IN ('train', 'test')", name=op.f('ck_vessel_split')),
    sa.CheckConstraint("status IN ('pending', 'ok', 'failed')", name=op.f('ck_vessel_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vessel')),
    sa.UniqueConstraint('filename', name=op.f('uq_vessel_filename'))
    )
    op.create_table('claim',
    sa.Column('vessel_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_claim_user_id_app_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vessel_id'], ['vessel.id'], name=op.f('fk_claim_vessel_id_vessel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('vessel_id', name=op.f('pk_claim'))
    )
    op.create_index(op.f('ix_claim_user_id'), 'claim', ['user_id'], unique=False)
    op.create_table('crowd_answer',
    sa.Column('vessel_id', sa.Integer(), nullable=False),
    sa.Column('crowd_score', sa.Float(), nullable=True),
    sa.Column('tier1', sa.Boolean(), nullable=True),
    sa.Column('micro', sa.Boolean(), nullable=True),
    sa.Column('nano', sa.Boolean(), nullable=True),
    sa.Column('label', sa.SmallInteger(), nullable=True),
    sa.Column('metadata_file', sa.String(length=255), nullable=True),
    sa.Column('labels_file', sa.String(length=255), nullable=True),
    sa.CheckConstraint('crowd_score >= 0 AND crowd_score <= 1', name=op.f('ck_crowd_answer_crowd_score_range')),
    sa.CheckConstraint('label IN (0, 1)', name=op.f('ck_crowd_answer_label')),
    sa.ForeignKeyConstraint(['vessel_id'], ['vessel.id'], name=op.f('fk_crowd_answer_vessel_id_vessel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('vessel_id', name=op.f('pk_crowd_answer'))
    )
    op.create_table('prediction',
    sa.Column('model_run_id', sa.Integer(), nullable=False),
    sa.Column('vessel_id', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('spread', sa.Float(), nullable=True),
    sa.Column('out_of_fold', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('probability >= 0 AND probability <= 1', name=op.f('ck_prediction_probability_range')),
    sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], name=op.f('fk_prediction_model_run_id_model_run'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vessel_id'], ['vessel.id'], name=op.f('fk_prediction_vessel_id_vessel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_run_id', 'vessel_id', name=op.f('pk_prediction'))
    )
    op.create_index('ix_prediction_run_probability', 'prediction', ['model_run_id', 'probability', 'vessel_id'], unique=False)
    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vessel_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('answer', sa.String(length=16), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("answer IN ('stalled', 'flowing', 'unsure', 'bad_stack')", name=op.f('ck_review_answer')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_review_user_id_app_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vessel_id'], ['vessel.id'], name=op.f('fk_review_vessel_id_vessel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review')),
    sa.UniqueConstraint('vessel_id', 'user_id', name=op.f('uq_review_vessel_id_user_id'))
    )
    op.create_index(op.f('ix_review_user_id'), 'review', ['user_id'], unique=False)
    op.create_table('triage_policy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_run_id', sa.Integer(), nullable=False),
    sa.Column('t_low', sa.Float(), nullable=False),
    sa.Column('t_high', sa.Float(), nullable=False),
    sa.Column('reviews_required', sa.Integer(), nullable=False),
    sa.Column('target_sensitivity', sa.Float(), nullable=True),
    sa.Column('target_specificity', sa.Float(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('reviews_required >= 1', name=op.f('ck_triage_policy_reviews_required')),
    sa.CheckConstraint('t_low >= 0 AND t_low <= t_high AND t_high <= 1', name=op.f('ck_triage_policy_thresholds')),
    sa.ForeignKeyConstraint(['model_run_id'], ['model_run.id'], name=op.f('fk_triage_policy_model_run_id_model_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_triage_policy'))
    )
    op.create_index(op.f('ix_triage_policy_model_run_id'), 'triage_policy', ['model_run_id'], unique=False)
    op.create_index('uq_triage_policy_active', 'triage_policy', ['active'], unique=True, sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))


def downgrade() -> None:
    op.drop_table('triage_policy')
    op.drop_table('review')
    op.drop_table('prediction')
    op.drop_table('crowd_answer')
    op.drop_table('claim')
    op.drop_table('vessel')
    op.drop_table('model_run')
    op.drop_table('audit_event')
    op.drop_table('app_user')
