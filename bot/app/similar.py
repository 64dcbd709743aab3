"""Similar ideas and text affinity (SPEC §14), as the core uses them.

* `similar_ideas`: the community's ideas most like one, with a one-line reason each
  (the words they share, as the other idea writes them; the same stage; the same
  expertise asked for) and the owner to introduce; owners who chose not to be found
  (`similar hide`) and the caller's own ideas are left out.
* `affinities` and `affinity_reason`: how much each peer's bio and well-rated reviews
  share an idea's words, for routing to break ties with, and the phrase of the offer's
  explanation that says so (in English, like the router's other reasons:
  `bot.app.wording.why` says it in the reader's language).

The ranking is `bot.domain.affinity`'s; the corpus comes from the unit of work
(`uow.texts`), kept in memory and up to date incrementally.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.affinity import (
    IDEA_FIELDS,
    ROUTING_FIELDS,
    Corpus,
    analyse,
    answer_text,
    phrases,
)
from bot.domain.ids import CommunityId, MemberId
from bot.domain.records import Idea, Member
from bot.i18n import _
from bot.ports import UnitOfWork
from conversations.answers import chosen

SHOWN = 3  # similar ideas listed
# Candidates read from the index before the hidden and the caller's own are left out.
_LOOK_AT = 12
FINDABLE = "findable"  # the profile setting: False hides one's ideas from others' lists


def findable(member: Member) -> bool:
    return member.profile.get(FINDABLE) is not False


@dataclass(frozen=True)
class Found:
    idea: Idea
    owner: Member
    words: tuple[str, ...]  # shared words as the found idea writes them
    same_stage: str | None  # the stage both are at (its choice id), when it is the same
    same_tags: tuple[str, ...]  # expertise both ask for


def idea_terms(idea: Idea, hint: str | None, fields: Sequence[str]) -> Counter[str]:
    """The stems of the idea's answers in ``fields``."""
    text = answer_text({"title": idea.title, **idea.answers}, fields)
    return analyse(text, hint).terms if text else Counter()


def _choice(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("choice")
    return str(value) if value not in (None, "") else None


async def similar_ideas(
    uow: UnitOfWork,
    community: CommunityId,
    answers: Mapping[str, Any],
    *,
    asker: MemberId,
    skip: int | None = None,
    hint: str | None = None,
    limit: int = SHOWN,
) -> list[Found]:
    """Up to ``limit`` ideas of the community like one with ``answers`` (the idea
    ``skip`` itself left out), most similar first."""
    terms = analyse(answer_text(answers, IDEA_FIELDS), hint).terms
    if not terms:
        return []
    corpus = await uow.texts.corpus(community)
    hits = corpus.similar(terms, _LOOK_AT, skip=() if skip is None else (skip,))
    owners = await uow.members.get_many([MemberId(h.owner) for h in hits])
    stage = _choice(answers.get("stage"))
    tags = chosen(answers.get("help"))
    found: list[Found] = []
    for hit in hits:
        owner = owners.get(MemberId(hit.owner))
        if owner is None or owner.id == asker or not findable(owner):
            continue
        idea = await uow.ideas.by_number(community, hit.number)
        if idea is None or idea.owner != owner.id:
            continue  # changed since the index read it
        theirs = analyse(answer_text({"title": idea.title, **idea.answers}, IDEA_FIELDS), hint)
        words = tuple(phrases(theirs, hit.shared[:6]))
        their_stage = _choice(idea.answers.get("stage"))
        their_tags = set(chosen(idea.answers.get("help")))
        found.append(
            Found(
                idea,
                owner,
                words,
                stage if stage is not None and stage == their_stage else None,
                tuple(t for t in tags if t in their_tags),
            )
        )
        if len(found) >= limit:
            break
    return found


def reason(found: Found) -> str:
    """Why an idea is similar, in one line in the language being written in."""
    parts = []
    if found.words:
        quoted = ", ".join(f"‘{w}’" for w in found.words)
        parts.append(_("shares {words}").format(words=quoted))
    if found.same_stage:
        parts.append(_("same stage ({stage})").format(stage=_(found.same_stage)))
    if found.same_tags:
        parts.append(_("also asks for {tags}").format(tags=", ".join(found.same_tags)))
    return "; ".join(parts)


# -- routing ------------------------------------------------------------------------


async def affinities(
    uow: UnitOfWork, community: CommunityId, idea: Idea, hint: str | None
) -> tuple[Corpus, Counter[str], dict[MemberId, float]]:
    """The corpus, the idea's routing terms, and each peer's affinity with them."""
    terms = idea_terms(idea, hint, ROUTING_FIELDS)
    corpus = await uow.texts.corpus(community)
    if not terms:
        return corpus, terms, {}
    return corpus, terms, {MemberId(m): v for m, v in corpus.affinity(terms).items()}


def affinity_reason(
    corpus: Corpus, peer: Member, terms: Mapping[str, int], hint: str | None
) -> str | None:
    """The offer's explanation of a peer's affinity (English, like the router's):
    "bio mentions 'circular economy', 'repair'", else "reviewed a similar idea, I-7"."""
    if peer.bio:
        bio = analyse(peer.bio, peer.language or hint)
        shared = [w.stem for w in bio.words if w.telling and w.stem in terms]
        said = phrases(bio, shared, limit=2)
        if said:
            return "bio mentions " + ", ".join(f"'{p}'" for p in said)
    best: tuple[float, int] | None = None
    for number in corpus.reviewed(peer.id):
        weights = corpus.ideas.weights(number, terms)
        score = sum(weights.values())
        if score > 0 and (best is None or score > best[0]):
            best = (score, number)
    if best is not None:
        return f"reviewed a similar idea, I-{best[1]}"
    return None
