"""languages: the language each member chose and their platform's locale

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite adds and drops columns itself): a batch copy of `members`
    # would have to drop a table that others point to.
    op.add_column("members", sa.Column("language", sa.String(16), nullable=True))
    op.add_column("members", sa.Column("locale", sa.String(35), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE members DROP COLUMN locale")
    op.execute("ALTER TABLE members DROP COLUMN language")
