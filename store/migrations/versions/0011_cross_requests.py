"""federation: requests that cross to a partner node, named on both by one id

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "cross_requests",
        sa.Column("id", big, nullable=False),
        sa.Column("community_id", big, nullable=False),
        sa.Column("request_id", big, nullable=False),
        sa.Column("partner", sa.String(40), nullable=False),
        sa.Column("xid", sa.String(100), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("remote_ref", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_cross_requests_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_cross_requests_request_id_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cross_requests")),
        sa.UniqueConstraint("request_id", name=op.f("uq_cross_requests_request_id")),
        sa.UniqueConstraint("xid", name=op.f("uq_cross_requests_xid")),
    )


def downgrade() -> None:
    op.drop_table("cross_requests")
