"""Texts for similar ideas and text affinity (SPEC §14): each community's `Corpus`, kept
in this process's memory and brought up to date with what changed since it last looked.

Every change to an idea's words, a member's bio or the reviews a peer learns from takes
the community's next text revision (`take_revision`) and stamps it on the row. The
counter row stays locked until the transaction ends, so revisions commit in order: once
revision *c* is committed, every smaller one is too (or was rolled back and will be
taken again). Catching up reads the rows stamped after what the corpus has, up to such
a committed *c*:

* the counter as committed, when this transaction took no revision;
* just below the first revision this transaction took, when it did: everything before
  that committed before this transaction could take the counter, and its own changes
  (which may yet roll back) are read by a later catch-up, after they committed.

Two catch-ups may overlap in one process (one from an older snapshot): a row is applied
only when it is newer than what the corpus holds for it, so neither undoes the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.affinity import GOOD_RATING, Corpus, IdeaText, PeerText, answer_text
from bot.domain.ids import CommunityId, MemberId
from store.models import IdeaRow, MemberRow, RequestRow
from store.repositories import revisions

TEXT_COUNTER = "text"
# Reviewed ideas of this many changed peers or more are read for the whole community.
_FEW = 200


async def take_revision(session: AsyncSession, community: CommunityId) -> int:
    """The community's next text revision, for a row whose words change now."""
    return await revisions.take(session, community, TEXT_COUNTER)


async def stamp_members(
    session: AsyncSession, members: list[MemberId], *, ideas: bool = False
) -> None:
    """Mark the members' texts (bio, reviews learned from), and with ``ideas`` their
    ideas too, as changed."""
    found = await session.execute(
        select(MemberRow.id, MemberRow.community_id).where(MemberRow.id.in_(members))
    )
    for member, community in found.all():
        revision = await take_revision(session, CommunityId(community))
        targets: list[tuple[Any, Any]] = [(MemberRow, MemberRow.id)]
        if ideas:
            targets.append((IdeaRow, IdeaRow.owner_id))
        for model, column in targets:
            await session.execute(
                update(model)
                .where(column == member)
                .values(text_rev=revision)
                .execution_options(synchronize_session=False)
            )


@dataclass
class _Cached:
    corpus: Corpus = field(default_factory=Corpus)
    revision: int = -1  # everything up to it is in the corpus
    ideas: dict[int, int] = field(default_factory=dict)  # number -> revision held
    peers: dict[int, int] = field(default_factory=dict)  # member -> revision held


class TextCache:
    """One process's corpora, one per community (a unit of work factory holds it)."""

    def __init__(self) -> None:
        self.communities: dict[int, _Cached] = {}


_IDEAS = (
    select(
        IdeaRow.number,
        IdeaRow.owner_id,
        IdeaRow.answers,
        IdeaRow.text_rev,
        func.coalesce(MemberRow.language, MemberRow.locale),
    )
    .join(MemberRow, MemberRow.id == IdeaRow.owner_id)
    .where(
        IdeaRow.community_id == bindparam("community"),
        IdeaRow.text_rev > bindparam("after"),
        IdeaRow.text_rev <= bindparam("upto"),
    )
)
_PEERS = select(
    MemberRow.id,
    MemberRow.bio,
    func.coalesce(MemberRow.language, MemberRow.locale),
    MemberRow.text_rev,
).where(
    MemberRow.community_id == bindparam("community"),
    MemberRow.text_rev > bindparam("after"),
    MemberRow.text_rev <= bindparam("upto"),
)
_REVIEWED = (
    select(RequestRow.peer_id, IdeaRow.number)
    .join(IdeaRow, IdeaRow.id == RequestRow.idea_id)
    .where(
        RequestRow.community_id == bindparam("community"),
        RequestRow.rating >= GOOD_RATING,
        RequestRow.peer_id.is_not(None),
    )
    .order_by(RequestRow.id)
)


def _hint(language: str | None) -> str | None:
    return language.split("-")[0].lower() if language else None


class SqlTexts:
    def __init__(self, session: AsyncSession, cache: TextCache) -> None:
        self.s = session
        self.cache = cache

    async def peer_changed(self, member: MemberId) -> None:
        await stamp_members(self.s, [member])

    async def corpus(self, community: CommunityId) -> Corpus:
        """The community's corpus with every committed change (and none of this
        transaction's own, which a later call reads once they are committed)."""
        cached = self.cache.communities.setdefault(community, _Cached())
        upto = await revisions.readable(self.s, community, TEXT_COUNTER)
        connection = await self.s.connection()
        params: dict[str, Any] = {"community": community}
        if upto <= cached.revision:
            return cached.corpus
        params.update(after=cached.revision, upto=upto)
        ideas = (await connection.execute(_IDEAS, params)).all()
        peers = (await connection.execute(_PEERS, params)).all()
        reviewed: dict[int, list[int]] = {}
        if peers:
            query = _REVIEWED
            if len(peers) < _FEW:
                query = query.where(RequestRow.peer_id.in_([p[0] for p in peers]))
            for peer, number in await connection.execute(query, params):
                if peer is not None:
                    reviewed.setdefault(peer, []).append(number)
        corpus = cached.corpus
        for number, owner, answers, revision, language in ideas:
            if revision > cached.ideas.get(number, -1):
                cached.ideas[number] = revision
                text = answer_text(answers or {}) if answers else ""
                corpus.put_idea(IdeaText(number, owner, text, _hint(language)))
        for member, bio, language, revision in peers:
            if revision > cached.peers.get(member, -1):
                cached.peers[member] = revision
                done = tuple(reviewed.get(member, ()))
                corpus.put_peer(PeerText(member, bio or "", _hint(language), done))
        cached.revision = max(cached.revision, upto)
        return corpus
