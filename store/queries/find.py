"""The read side of `find`: which members' text may contain the words looked for (a
filter run in SQL, as Python's `str.lower()` would see the text), and what `find` scores
and shows of the members found. Nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ids import CommunityId, MemberId
from bot.ports import FindCandidate
from store.models import ExpertiseRow, IdentityRow, MemberRow
from store.rows import as_find_candidate

# `find` looks for words in text as Python's str.lower() sees it. SQL can rule a member out
# only for words of printable ASCII without the characters that JSON escapes (" \) or that
# separate the parts of a profile's offers (, ( )): such a word is in the lowered text
# exactly when it is in the text with its ASCII letters lowered, once the only two
# characters that str.lower() turns into ASCII letters (the Kelvin sign and İ) are.
_UNPLAIN = frozenset('"\\,()')


def _plain(word: str) -> bool:
    return bool(word) and all(
        "!" <= c <= "~" and c not in _UNPLAIN and not "A" <= c <= "Z" for c in word
    )


def _folded(text: Any, dialect: str) -> Any:
    """`text` with ASCII letters lowered, and the Kelvin sign and İ turned into k and i."""
    text = func.replace(func.replace(text, "\u212a", "k"), "\u0130", "i", type_=sa.Text)
    if dialect == "postgresql":  # in the C collation lower() changes ASCII letters only,
        text = sa.collate(text, "C")  # whatever the database's locale (Turkish I...)
    return func.lower(text, type_=sa.Text)  # as SQLite's lower() does


def _may_contain_any(words: Sequence[str], dialect: str) -> Any:
    """A condition on MemberRow true for every member whose name, bio, tags or profile
    contain one of `words` (None for no words); not restrictive for unplain words."""
    if not words:
        return None
    if not all(_plain(w) for w in words):
        return true()
    # The profile is JSON text: non-ASCII characters are \u escapes there.
    profile = _folded(sa.cast(MemberRow.profile, sa.Text), dialect)
    profile = func.replace(func.replace(profile, "\\u212a", "k"), "\\u0130", "i", type_=sa.Text)
    name, bio = _folded(MemberRow.name, dialect), _folded(MemberRow.bio, dialect)
    tag = _folded(ExpertiseRow.tag, dialect)
    return or_(
        *(
            or_(
                name.contains(w, autoescape=True),
                bio.contains(w, autoescape=True),
                profile.contains(w, autoescape=True),
                select(ExpertiseRow.tag)
                .where(ExpertiseRow.member_id == MemberRow.id, tag.contains(w, autoescape=True))
                .exists(),
            )
            for w in dict.fromkeys(words)
        )
    )


class SqlFindQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def search_ids(
        self, community: CommunityId, words: Sequence[str], *, exclude: MemberId
    ) -> list[MemberId]:
        """Members with a chat identity, other than `exclude`, whose name, bio, tags or
        profile may contain one of the lowercase `words`, in id order: every member whose
        text does, and perhaps a few others (the caller scores them)."""
        match = _may_contain_any(words, self.s.get_bind().dialect.name)
        if match is None:
            return []
        has_identity = select(IdentityRow.id).where(IdentityRow.member_id == MemberRow.id).exists()
        # Ids only, in one pass: the tags' subqueries run once, and 10,000 ids are small.
        ids = await self.s.scalars(
            select(MemberRow.id)
            .where(
                MemberRow.community_id == community,
                MemberRow.id != exclude,
                has_identity,
                match,
            )
            .order_by(MemberRow.id)
        )
        return [MemberId(i) for i in ids]

    async def find_candidates(self, members: Sequence[MemberId]) -> list[FindCandidate]:
        """What `find` scores and shows of these members, in id order."""
        if not members:
            return []
        rows = (
            await self.s.execute(
                select(MemberRow.id, MemberRow.name, MemberRow.bio, MemberRow.profile)
                .where(MemberRow.id.in_(members))
                .order_by(MemberRow.id)
            )
        ).all()
        expertise: dict[int, dict[str, int]] = {}
        for member_id, tag, level in await self.s.execute(
            select(ExpertiseRow.member_id, ExpertiseRow.tag, ExpertiseRow.level)
            .where(ExpertiseRow.member_id.in_(members))
            .order_by(ExpertiseRow.member_id, ExpertiseRow.tag)
        ):
            expertise.setdefault(member_id, {})[tag] = level
        return [as_find_candidate(r, expertise.get(r.id, {})) for r in rows]
