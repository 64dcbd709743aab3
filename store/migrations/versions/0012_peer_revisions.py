"""peers: a revision on members, so an in-memory peer table catches up with the
profiles that changed since it last looked (routing, SPEC §5)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are revision 0, which a first load reads with everything else.
    op.add_column(
        "members", sa.Column("peer_rev", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_index("ix_members_peer_rev", "members", ["community_id", "peer_rev"])


def downgrade() -> None:
    op.drop_index("ix_members_peer_rev", table_name="members")
    op.execute("ALTER TABLE members DROP COLUMN peer_rev")
