"""texts: a revision on ideas and members, so an in-memory affinity index catches up
with what changed since it last looked (similar ideas and text affinity, SPEC §14)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite adds columns itself); existing rows are revision 0, which
    # a first load reads with everything else.
    for table in ("ideas", "members"):
        op.add_column(
            table, sa.Column("text_rev", sa.BigInteger(), nullable=False, server_default="0")
        )
        op.create_index(f"ix_{table}_text_rev", table, ["community_id", "text_rev"])


def downgrade() -> None:
    for table in ("members", "ideas"):
        op.drop_index(f"ix_{table}_text_rev", table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN text_rev")
