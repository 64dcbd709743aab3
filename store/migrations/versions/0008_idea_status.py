"""idea status: ideas with requests stand where their requests are

Until now every idea stayed `submitted`; the status now follows its requests
(bot.domain.ideas). Existing ideas get the status their requests give them: reviewed
once a review was delivered, in review while a peer holds a request. No schema change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE ideas SET status = 'reviewed' WHERE EXISTS (SELECT 1 FROM requests "
        "WHERE requests.idea_id = ideas.id AND requests.delivered_at IS NOT NULL)"
    )
    op.execute(
        "UPDATE ideas SET status = 'in review' WHERE status <> 'reviewed' AND EXISTS "
        "(SELECT 1 FROM requests WHERE requests.idea_id = ideas.id "
        "AND requests.status IN ('assigned', 'disputed'))"
    )


def downgrade() -> None:
    op.execute("UPDATE ideas SET status = 'submitted'")
