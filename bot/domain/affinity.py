"""Text affinity (SPEC §14): the words of ideas and bios, stemmed for their language,
ranked with BM25 in an index that takes one document at a time.

Pure: no I/O and no clock. The core feeds documents in (``TextIndex.put``) as ideas are
saved and bios change, and asks which documents share the most telling words with a
text (``TextIndex.scores``). Two libraries do the language work: PyStemmer (the Snowball
stemmers: "kapotte toestellen" and "kapot toestel" are the same words in Dutch,
"repairing" and "repair" in English) and stop-words (the words every text has: "the", "de", "und").

Why an index of our own around the libraries: bm25s scores the same formula fastest,
but computes every score when it indexes (a new document changes every word's weight),
so it can only rebuild; a community adds ideas and bios one at a time. This index keeps
term frequencies and computes the weights at query time from the current counts, so a
new document costs its own words and the scores are exactly BM25's (the Lucene variant
bm25s uses by default; ``tests/unit/test_affinity.py`` checks them against bm25s).

Memory is kept small: a term is a number, a posting list is two ``array('i')`` (the
documents and their counts, 8 bytes a posting), and a document keeps its terms the same
way for when it is replaced. Removed postings are zeroed and compacted once they are half.
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import Stemmer
import stop_words

# The languages a text may be stemmed in (ISO 639-1 → Snowball name). The bot speaks four
# of them (bot.i18n); innovators also write in Italian and Hungarian.
STEMMERS = {
    "en": "english",
    "nl": "dutch",
    "fr": "french",
    "de": "german",
    "it": "italian",
    "hu": "hungarian",
}

# A word: letters, with inner apostrophes or hyphens ("l'économie", "zero-waste" are one
# token each, split below); digits and underscores are not words.
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_INNER = re.compile(r"['’\-]")
K1, B = 1.5, 0.75  # BM25's usual constants (Lucene's and bm25s' defaults)

Floats = npt.NDArray[np.float64]
K = TypeVar("K", bound=Hashable)


@cache
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(STEMMERS[language])


@cache
def stop_list(language: str) -> frozenset[str]:
    """The words of ``language`` too common to tell texts apart (stop-words' list; the
    English one is long and also holds a few words such as "help" and "home")."""
    return frozenset(_fold(w) for w in stop_words.get_stop_words(STEMMERS[language]))


def _fold(word: str) -> str:
    return unicodedata.normalize("NFC", word.casefold())


def tokens(text: str) -> list[str]:
    """The words of ``text``, case-folded, in order ("L'économie circulaire" →
    ["l", "économie", "circulaire"])."""
    found: list[str] = []
    for match in _WORD.finditer(unicodedata.normalize("NFC", text)):
        found.extend(part for part in _INNER.split(match.group().casefold()) if part)
    return found


def guess_language(words: Iterable[str], hint: str | None = None) -> str:
    """The language of a text, from how many of its words are that language's stop
    words; ``hint`` (the language the person was asked in) wins a tie and decides for a
    text too short to tell. Falls back to English."""
    seen = list(words)
    fallback = hint if hint in STEMMERS else "en"
    if not seen:
        return fallback
    best, best_hits = fallback, sum(w in stop_list(fallback) for w in seen)
    for language in STEMMERS:
        hits = sum(w in stop_list(language) for w in seen)
        if hits > best_hits:
            best, best_hits = language, hits
    return best


@dataclass(frozen=True)
class Word:
    """One word of a text as written, its stem, and whether it tells texts apart."""

    written: str
    stem: str
    telling: bool  # not a stop word, at least two letters


@dataclass(frozen=True)
class Analysis:
    language: str
    words: tuple[Word, ...]  # every word in order, stop words included (for phrases)

    @property
    def terms(self) -> Counter[str]:
        """The telling stems and how often each occurs: what the index keeps."""
        return Counter(w.stem for w in self.words if w.telling)


def analyse(text: str, hint: str | None = None, language: str | None = None) -> Analysis:
    """The words of ``text`` stemmed in ``language`` (guessed, with ``hint``, if None)."""
    words = tokens(text)
    lang = language if language in STEMMERS else guess_language(words, hint)
    stops = stop_list(lang)
    stems = _stemmer(lang).stemWords(words)
    return Analysis(
        lang,
        tuple(Word(w, s, len(w) > 1 and w not in stops) for w, s in zip(words, stems, strict=True)),
    )


def phrases(analysis: Analysis, stems: Iterable[str], limit: int = 3) -> list[str]:
    """The runs of words of ``analysis`` whose stems are among ``stems``, as written and
    in the order they appear: "circular economy", "repair". Each stem is named once;
    longer runs first, at most ``limit``."""
    wanted = set(stems)
    runs: list[list[Word]] = []
    current: list[Word] = []
    for word in (*analysis.words, None):
        if word is not None and word.telling and word.stem in wanted:
            current.append(word)
            continue
        if current:
            runs.append(current)
        current = []
    chosen: list[tuple[int, int, str]] = []  # (run, word within it, phrase)
    named: set[str] = set()
    for position, run in sorted(enumerate(runs), key=lambda item: -len(item[1])):
        # The words of a run not named yet, as sub-runs of adjacent words.
        start = 0
        for end in range(len(run) + 1):
            if end < len(run) and run[end].stem not in named:
                if all(w.stem != run[end].stem for w in run[start:end]):
                    continue
            if end > start and len(chosen) < limit:
                piece = run[start:end]
                chosen.append((position, start, " ".join(w.written for w in piece)))
                named.update(w.stem for w in piece)
            start = end + 1
    return [phrase for _, _, phrase in sorted(chosen)]


@dataclass(frozen=True)
class _Stats:
    n: int  # documents counted (with the prior)
    average: float  # their average length
    slot: int | None  # the document left out
    held: frozenset[int]  # its terms' codes


class TextIndex(Generic[K]):
    """An incremental BM25 index of documents, each a bag of terms under a key.

    ``put`` adds or replaces one document, ``remove`` takes one out; ``scores`` ranks
    them all for a query in a few vectorised passes over the query terms' postings.

    ``prior``: documents counted as if indexed and holding none of the words. BM25's
    word weights need many documents; a young community has few, and in two ideas
    every shared word looks common. A prior of a few dozen keeps shared words telling
    while the community is small and is soon outweighed as it grows (0: BM25 exactly).
    """

    def __init__(self, k1: float = K1, b: float = B, prior: int = 0) -> None:
        self.k1, self.b, self.prior = k1, b, prior
        self._code: dict[str, int] = {}  # term -> code
        self._term: list[str] = []  # code -> term
        self._docs: list[array[int]] = []  # code -> documents (slots) holding it
        self._counts: list[array[int]] = []  # code -> occurrences in each of those
        self._df: list[int] = []  # code -> documents holding it (zeroed postings excluded)
        self._dead: list[int] = []  # code -> zeroed postings, compacted when half
        self._slot: dict[K, int] = {}
        self._keys: list[K | None] = []  # slot -> key (None: free)
        self._free: list[int] = []
        self._doc_terms: list[array[int]] = []  # slot -> codes, for replacing it
        self._doc_counts: list[array[int]] = []  # slot -> their occurrences, in that order
        self._length = np.zeros(0, dtype=np.float64)  # slot -> number of terms
        self._total = 0

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def keys(self) -> Iterator[K]:
        return iter(self._slot)

    @property
    def average_length(self) -> float:
        return self._total / len(self._slot) if self._slot else 0.0

    def put(self, key: K, terms: Mapping[str, int]) -> None:
        """Index ``terms`` (term -> occurrences) as the document ``key``, replacing what
        was there; a document without terms is removed."""
        self.remove(key)
        counted = {t: n for t, n in terms.items() if n > 0}
        if not counted:
            return
        slot = self._free.pop() if self._free else self._new_slot()
        self._slot[key] = slot
        self._keys[slot] = key
        codes, occurrences = array("i"), array("i", counted.values())
        for term, n in counted.items():
            code = self._code.get(term)
            if code is None:
                code = self._code[term] = len(self._docs)
                self._term.append(term)
                self._docs.append(array("i"))
                self._counts.append(array("i"))
                self._df.append(0)
                self._dead.append(0)
            self._docs[code].append(slot)
            self._counts[code].append(n)
            self._df[code] += 1
            codes.append(code)
        self._doc_terms[slot] = codes
        self._doc_counts[slot] = occurrences
        length = sum(counted.values())
        self._length[slot] = length
        self._total += length

    def remove(self, key: K) -> None:
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        for code in self._doc_terms[slot]:
            docs = np.frombuffer(self._docs[code], dtype=np.int32)
            counts = np.frombuffer(self._counts[code], dtype=np.int32)
            at = np.flatnonzero((docs == slot) & (counts > 0))
            counts[at] = 0
            del docs, counts  # release the buffers before the arrays may change size
            self._df[code] -= 1
            self._dead[code] += 1
            if self._dead[code] * 2 > len(self._docs[code]):
                self._compact(code)
        self._total -= int(self._length[slot])
        self._length[slot] = 0
        self._doc_terms[slot] = array("i")
        self._doc_counts[slot] = array("i")
        self._keys[slot] = None
        self._free.append(slot)

    def terms(self, key: K) -> dict[str, int]:
        """The document's terms and their occurrences (empty when it is not indexed)."""
        slot = self._slot.get(key)
        if slot is None:
            return {}
        term = self._term
        return {
            term[code]: n
            for code, n in zip(self._doc_terms[slot], self._doc_counts[slot], strict=True)
        }

    def idf(self, term: str, without: K | None = None) -> float:
        """BM25's inverse document frequency of ``term`` now, ``without`` that document
        (a term nobody used has the highest)."""
        stats = self._stats(without)
        return self._idf(self._code.get(term), stats)

    def weights(self, key: K, query: Iterable[str], without: K | None = None) -> dict[str, float]:
        """Each query term's share of ``key``'s score: which words made it similar."""
        slot = self._slot.get(key)
        found: dict[str, float] = {}
        if slot is None:
            return found
        stats = self._stats(without)
        average = max(stats.average, 1e-9)
        norm = self.k1 * (1 - self.b + self.b * float(self._length[slot]) / average)
        held = dict(zip(self._doc_terms[slot], self._doc_counts[slot], strict=True))
        for term in dict.fromkeys(query):
            code = self._code.get(term)
            tf = held.get(code) if code is not None else None
            if tf:
                found[term] = self._idf(code, stats) * tf / (tf + norm)
        return found

    def scores(self, query: Iterable[str], without: K | None = None) -> tuple[list[K], Floats]:
        """The documents sharing a term with ``query`` and their BM25 scores (each query
        term counted once), in no particular order. ``without``: a document left out,
        as if it were not indexed (the query's own, to score it against the others)."""
        if not self._slot:
            return [], np.zeros(0)
        stats = self._stats(without)
        total = np.zeros(len(self._keys), dtype=np.float64)
        hit = np.zeros(len(self._keys), dtype=np.bool_)
        norm = self._norm(stats)
        for term in dict.fromkeys(query):
            code = self._code.get(term)
            if code is None or not self._df[code]:
                continue
            docs = np.frombuffer(self._docs[code], dtype=np.int32)
            tf = np.frombuffer(self._counts[code], dtype=np.int32).astype(np.float64)
            # Slots are unique within one posting list, so a fancy-indexed add is exact.
            total[docs] += self._idf(code, stats) * tf / (tf + norm[docs])
            hit[docs] |= tf > 0
        if stats.slot is not None:
            hit[stats.slot] = False
        slots = np.flatnonzero(hit)
        keys = self._keys
        return [keys[s] for s in slots.tolist()], total[slots]  # type: ignore[misc]

    def self_score(self, terms: Mapping[str, int], without: K | None = None) -> float:
        """The score a document of ``terms`` would have for its own terms: what a perfect
        match scores, to tell a near-duplicate from a text sharing one word."""
        stats = self._stats(without)
        if not stats.n:
            return 0.0
        length = sum(terms.values())
        norm = self.k1 * (1 - self.b + self.b * length / max(stats.average, 1e-9))
        return sum(
            self._idf(self._code.get(t), stats) * n / (n + norm) for t, n in terms.items() if n > 0
        )

    def top(
        self,
        query: Iterable[str],
        k: int,
        skip: frozenset[K] = frozenset(),
        without: K | None = None,
    ) -> list[tuple[K, float]]:
        """The ``k`` best documents for ``query`` with their scores, best first (ties:
        the key order), leaving out ``skip`` (and ``without``, see `scores`)."""
        keys, values = self.scores(query, without)
        if not keys or k <= 0:
            return []
        want = min(len(keys), k + len(skip))
        if want < len(keys):
            # Everything scoring at least the `want`-th best, so that ties at the cut go
            # by key, however the documents came into the index.
            cut = -np.partition(-values, want - 1)[want - 1]
            best: Any = np.flatnonzero(values >= cut)
        else:
            best = range(len(keys))
        ranked = sorted(
            ((keys[i], float(values[i])) for i in best if keys[i] not in skip),
            key=lambda item: (-item[1], item[0]),
        )
        return ranked[:k]

    # internals

    def _stats(self, without: K | None) -> _Stats:
        """The collection's size and average length, ``without`` one document."""
        n, total = len(self._slot), self._total
        slot = self._slot.get(without) if without is not None else None
        if slot is None:
            return _Stats(n + self.prior, total / n if n else 0.0, None, frozenset())
        n, total = n - 1, total - int(self._length[slot])
        held = frozenset(self._doc_terms[slot])
        return _Stats(n + self.prior, total / n if n else 0.0, slot, held)

    def _idf(self, code: int | None, stats: _Stats) -> float:
        df = self._df[code] if code is not None else 0
        if code is not None and code in stats.held:
            df -= 1
        return math.log(1 + (stats.n - df + 0.5) / (df + 0.5))

    def _norm(self, stats: _Stats) -> Floats:
        """Per slot, BM25's length normalisation k1·(1 − b + b·length/average)."""
        average = max(stats.average, 1e-9)
        norm: Floats = self.k1 * (1 - self.b + self.b * self._length / average)
        return norm

    def _new_slot(self) -> int:
        slot = len(self._keys)
        self._keys.append(None)
        self._doc_terms.append(array("i"))
        self._doc_counts.append(array("i"))
        if slot >= len(self._length):
            grown = np.zeros(max(16, 2 * len(self._length)), dtype=np.float64)
            grown[: len(self._length)] = self._length
            self._length = grown
        return slot

    def _compact(self, code: int) -> None:
        docs, counts = self._docs[code], self._counts[code]
        kept = [(d, c) for d, c in zip(docs, counts, strict=True) if c > 0]
        self._docs[code] = array("i", (d for d, _ in kept))
        self._counts[code] = array("i", (c for _, c in kept))
        self._dead[code] = 0


# -- a community's texts ------------------------------------------------------------------

# The intake answers that say what an idea is about (SPEC §14): similar ideas are found
# by these; routing also weighs what the innovator is unsure of.
IDEA_FIELDS = ("title", "summary", "need", "impact")
ROUTING_FIELDS = (*IDEA_FIELDS, "uncertainties")
# A review rated this well or better tells what its reviewer knows about.
GOOD_RATING = 4
# Below this share of a perfect match (the idea against itself) a text is not similar:
# sharing a word or two is chance. At least this many telling words must be shared.
SIMILAR_SHARE = 0.25
SIMILAR_WORDS = 2
# Documents a corpus counts as if indexed and unrelated (`TextIndex.prior`).
PRIOR = 25
# A peer counts as having affinity with an idea from this share of a perfect match.
AFFINITY_SHARE = 0.02


def answer_text(answers: Mapping[str, object], fields: Iterable[str] = IDEA_FIELDS) -> str:
    """The words of an idea's answers in ``fields``, one paragraph each (choices and
    other structured answers are left out: they are not the innovator's words)."""
    return "\n".join(
        value.strip() for key in fields if isinstance(value := answers.get(key), str)
    ).strip()


@dataclass(frozen=True)
class IdeaText:
    number: int
    owner: int  # member id
    text: str  # `answer_text` of its answers ("" removes it)
    hint: str | None = None  # the language its owner is spoken to in


@dataclass(frozen=True)
class PeerText:
    member: int
    bio: str
    hint: str | None = None
    reviewed: tuple[int, ...] = ()  # ideas they reviewed with a rating of GOOD_RATING or more


@dataclass(frozen=True)
class Similar:
    number: int
    owner: int
    share: float  # of a perfect match, 0..1 (about)
    shared: tuple[str, ...]  # the stems it shares with the query, most telling first


class Corpus:
    """A community's ideas and peers as two BM25 indexes, kept up to date one text at a
    time: an idea's words; a peer's bio plus the words of the ideas they reviewed well
    (so a good review teaches the router what the reviewer knows)."""

    def __init__(self) -> None:
        self.ideas: TextIndex[int] = TextIndex(prior=PRIOR)
        self.peers: TextIndex[int] = TextIndex(prior=PRIOR)
        self._owner: dict[int, int] = {}
        self._bio: dict[int, Counter[str]] = {}  # only peers who reviewed something well
        self._reviewed: dict[int, tuple[int, ...]] = {}
        self._reviewers: dict[int, set[int]] = {}  # idea -> peers whose text holds it

    def put_idea(self, idea: IdeaText) -> None:
        terms = analyse(idea.text, idea.hint).terms if idea.text else Counter()
        if terms:
            self.ideas.put(idea.number, terms)
            self._owner[idea.number] = idea.owner
        else:
            self.ideas.remove(idea.number)
            self._owner.pop(idea.number, None)
        for member in self._reviewers.get(idea.number, ()):
            self._index_peer(member)

    def put_peer(self, peer: PeerText) -> None:
        bio = analyse(peer.bio, peer.hint).terms if peer.bio else Counter()
        for number in self._reviewed.get(peer.member, ()):
            self._reviewers.get(number, set()).discard(peer.member)
        reviewed = tuple(dict.fromkeys(peer.reviewed))
        if reviewed:
            self._reviewed[peer.member] = reviewed
            self._bio[peer.member] = bio
            for number in reviewed:
                self._reviewers.setdefault(number, set()).add(peer.member)
        else:
            self._reviewed.pop(peer.member, None)
            self._bio.pop(peer.member, None)
        if reviewed:
            self._index_peer(peer.member)
        else:
            self.peers.put(peer.member, bio)

    def reviewed(self, member: int) -> tuple[int, ...]:
        return self._reviewed.get(member, ())

    def owner(self, number: int) -> int | None:
        return self._owner.get(number)

    def similar(
        self,
        terms: Mapping[str, int],
        limit: int,
        skip: Iterable[int] = (),
        without: int | None = None,
    ) -> list[Similar]:
        """Ideas like one of ``terms``, most similar first: at least SIMILAR_SHARE of a
        perfect match and SIMILAR_WORDS telling words in common. ``skip``: ideas not to
        list; ``without``: the query's own idea, if indexed, left out of the counts too
        (so an idea finds the same ideas before and after it is indexed)."""
        perfect = self.ideas.self_score(terms, without)
        if perfect <= 0:
            return []
        found = []
        for number, score in self.ideas.top(terms, limit, frozenset(skip), without):
            share = score / perfect
            weights = self.ideas.weights(number, terms, without)
            if share < SIMILAR_SHARE or len(weights) < SIMILAR_WORDS:
                continue
            shared = tuple(sorted(weights, key=lambda t: (-weights[t], t)))
            found.append(Similar(number, self._owner[number], min(share, 1.0), shared))
        return found

    def affinity(self, terms: Mapping[str, int]) -> dict[int, float]:
        """Each peer's affinity with a text of ``terms``: their BM25 score as a share of
        the text's perfect match, for peers from AFFINITY_SHARE up."""
        perfect = self.peers.self_score(terms)
        if perfect <= 0:
            return {}
        members, values = self.peers.scores(terms)
        shares = values / perfect
        keep = np.flatnonzero(shares >= AFFINITY_SHARE).tolist()
        return dict(zip([members[i] for i in keep], shares[keep].tolist(), strict=True))

    def _index_peer(self, member: int) -> None:
        terms = Counter(self._bio.get(member, Counter()))
        for number in self._reviewed.get(member, ()):
            terms.update(self.ideas.terms(number))
        self.peers.put(member, terms)
