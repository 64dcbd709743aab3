"""Text affinity (bot.domain.affinity): BM25 scores against bm25s, the incremental index
against a fresh one, stemming and language guessing, phrases, similar ideas and peers."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.affinity import (
    AFFINITY_SHARE,
    SIMILAR_SHARE,
    Analysis,
    Corpus,
    IdeaText,
    PeerText,
    TextIndex,
    analyse,
    guess_language,
    phrases,
    tokens,
)

# -- BM25 against bm25s ---------------------------------------------------------------------

VOCABULARY = [f"w{i:02d}" for i in range(60)]


def generated_corpus(seed: int, size: int = 50) -> list[Counter[str]]:
    """Documents of 1..30 terms drawn Zipf-like from VOCABULARY (so some terms are in
    most documents, some in one, and term frequencies vary)."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    return [Counter(rng.choices(VOCABULARY, weights, k=rng.randint(1, 30))) for _ in range(size)]


def reference_scores(docs: list[Counter[str]], query: list[str]) -> np.ndarray:
    """bm25s' Lucene BM25 of every document for ``query`` (float64, not its float32)."""
    corpus = [[t for t, n in doc.items() for _ in range(n)] for doc in docs]
    retriever = bm25s.BM25(method="lucene", k1=1.5, b=0.75, dtype="float64")
    retriever.index(corpus, show_progress=False)
    return np.asarray(retriever.get_scores(query), dtype=np.float64)


def dense(index: TextIndex[int], query: list[str], size: int) -> np.ndarray:
    keys, values = index.scores(query)
    out = np.zeros(size)
    out[keys] = values
    return out


QUERIES = [
    ["w00"],  # in most documents: a small idf
    ["w00", "w01", "w02"],
    ["w10", "w25", "w40", "w59"],  # rare terms
    ["w03", "w07", "w15", "w33", "w50", "w58"],
    ["w05", "unknown"],  # a term no document has adds nothing
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("query", QUERIES)
def test_bm25_scores_equal_bm25s_lucene(seed: int, query: list[str]) -> None:
    docs = generated_corpus(seed)
    index: TextIndex[int] = TextIndex()
    for number, doc in enumerate(docs):
        index.put(number, doc)

    ours = dense(index, query, len(docs))
    theirs = reference_scores(docs, query)

    assert theirs.max() > 0  # the query matches something: the comparison means something
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12)
    keys, _ = index.scores(query)
    # exactly the documents holding a query term are listed
    assert sorted(keys) == [n for n, doc in enumerate(docs) if any(t in doc for t in query)]


def test_bm25_formula_by_hand() -> None:
    """Two documents worked out with the Lucene formula, independent of bm25s."""
    index: TextIndex[str] = TextIndex()
    index.put("a", {"bike": 2, "repair": 1})  # length 3
    index.put("b", {"repair": 1})  # length 1; average 2
    idf_bike = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    idf_repair = math.log(1 + (2 - 2 + 0.5) / (2 + 0.5))
    norm_a = 1.5 * (1 - 0.75 + 0.75 * 3 / 2)
    norm_b = 1.5 * (1 - 0.75 + 0.75 * 1 / 2)
    keys, values = index.scores(["bike", "repair"])
    got = dict(zip(keys, values.tolist(), strict=True))
    assert got["a"] == pytest.approx(idf_bike * 2 / (2 + norm_a) + idf_repair / (1 + norm_a))
    assert got["b"] == pytest.approx(idf_repair / (1 + norm_b))
    assert index.idf("bike") == pytest.approx(idf_bike)
    # a term nobody used has the highest idf (df = 0), but adds nothing to any score
    assert index.idf("nothing") == pytest.approx(math.log(1 + 2.5 / 0.5))
    assert index.idf("nothing") > index.idf("bike") > index.idf("repair")
    _, with_unknown = index.scores(["bike", "repair", "nothing"])
    np.testing.assert_array_equal(with_unknown, values)


def test_prior_counts_documents_without_the_words() -> None:
    """``prior`` adds documents to N only: idf = ln(1 + (N + prior − df + 0.5)/(df + 0.5)),
    the length normalisation is that of the real documents."""
    index: TextIndex[str] = TextIndex(prior=25)
    index.put("a", {"bike": 2, "repair": 1})
    index.put("b", {"repair": 1})
    idf_bike = math.log(1 + (27 - 1 + 0.5) / (1 + 0.5))
    idf_repair = math.log(1 + (27 - 2 + 0.5) / (2 + 0.5))
    norm_a = 1.5 * (1 - 0.75 + 0.75 * 3 / 2)
    keys, values = index.scores(["bike", "repair"])
    got = dict(zip(keys, values.tolist(), strict=True))
    assert got["a"] == pytest.approx(idf_bike * 2 / (2 + norm_a) + idf_repair / (1 + norm_a))
    assert index.idf("repair") == pytest.approx(idf_repair)
    plain: TextIndex[str] = TextIndex()
    plain.put("a", {"bike": 2, "repair": 1})
    plain.put("b", {"repair": 1})
    assert index.idf("repair") > plain.idf("repair")  # shared words stay telling


def test_query_terms_count_once_and_weights_add_up_to_the_score() -> None:
    docs = generated_corpus(7)
    index: TextIndex[int] = TextIndex()
    for number, doc in enumerate(docs):
        index.put(number, doc)
    query = ["w00", "w04", "w09"]
    once = dense(index, query, len(docs))
    np.testing.assert_array_equal(dense(index, query * 3, len(docs)), once)
    for number in range(len(docs)):
        weights = index.weights(number, query)
        assert set(weights) == {t for t in query if t in docs[number]}
        assert sum(weights.values()) == pytest.approx(once[number], rel=1e-12)


# -- incremental equals fresh ---------------------------------------------------------------

TERMS = ["a", "b", "c", "d", "e", "f", "g", "h"]
terms_strategy = st.dictionaries(st.sampled_from(TERMS), st.integers(0, 3), max_size=6)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 11), terms_strategy),
        st.tuples(st.just("remove"), st.integers(0, 11), st.just({})),
    ),
    max_size=60,
)
PROBES = [["a"], ["a", "b"], ["c", "d", "e"], TERMS, ["h", "zzz"]]


def fresh_index(docs: Mapping[int, Mapping[str, int]]) -> TextIndex[int]:
    index: TextIndex[int] = TextIndex()
    for key in sorted(docs):
        index.put(key, docs[key])
    return index


def assert_same_as_fresh(index: TextIndex[int], docs: Mapping[int, Mapping[str, int]]) -> None:
    fresh = fresh_index(docs)
    assert len(index) == len(fresh) == len(docs)
    assert set(index.keys()) == set(docs)
    assert index.average_length == pytest.approx(fresh.average_length)
    for key, terms in docs.items():
        assert key in index
        assert index.terms(key) == terms
    for query in PROBES:
        keys, values = index.scores(query)
        fresh_keys, fresh_values = fresh.scores(query)
        got = dict(zip(keys, values.tolist(), strict=True))
        want = dict(zip(fresh_keys, fresh_values.tolist(), strict=True))
        assert got.keys() == want.keys(), query
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (query, key)
        for term in query:
            assert index.idf(term) == pytest.approx(fresh.idf(term), rel=1e-12)


def assert_without_is_as_if_not_indexed(
    index: TextIndex[int], docs: Mapping[int, Mapping[str, int]], key: int
) -> None:
    others = fresh_index({k: v for k, v in docs.items() if k != key})
    for query in PROBES:
        keys, values = index.scores(query, without=key)
        other_keys, other_values = others.scores(query)
        got = dict(zip(keys, values.tolist(), strict=True))
        want = dict(zip(other_keys, other_values.tolist(), strict=True))
        assert got.keys() == want.keys(), (query, key)
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), (query, key, k)
        for term in query:
            assert index.idf(term, without=key) == pytest.approx(others.idf(term), rel=1e-12)
        probe = dict.fromkeys(query, 1)
        assert index.self_score(probe, without=key) == pytest.approx(
            others.self_score(probe), rel=1e-9, abs=1e-12
        )


@settings(max_examples=60, deadline=None)
@given(operations)
def test_incremental_index_equals_a_fresh_one(ops: list[tuple[str, int, dict[str, int]]]) -> None:
    index: TextIndex[int] = TextIndex()
    model: dict[int, dict[str, int]] = {}
    for op, key, terms in ops:
        if op == "put":
            index.put(key, terms)
            kept = {t: n for t, n in terms.items() if n > 0}
            if kept:
                model[key] = kept
            else:  # a document without terms is removed
                model.pop(key, None)
        else:
            index.remove(key)
            model.pop(key, None)
    assert_same_as_fresh(index, model)
    for key in sorted(model)[:3]:
        assert_without_is_as_if_not_indexed(index, model, key)


def test_incremental_after_compaction_equals_fresh() -> None:
    rng = random.Random(11)
    index: TextIndex[int] = TextIndex()
    docs: dict[int, dict[str, int]] = {}
    for key in range(40):
        terms = {"common": rng.randint(1, 3), rng.choice(TERMS): rng.randint(1, 4)}
        index.put(key, terms)
        docs[key] = terms
    code = index._code["common"]
    assert len(index._docs[code]) == 40
    # replace some (their slots are reused later), then remove most
    for key in range(0, 40, 5):
        terms = {"common": 2, "x": 1}
        index.put(key, terms)
        docs[key] = terms
    assert_same_as_fresh(index, docs)
    for key in range(10, 40):
        index.remove(key)
        docs.pop(key)
    # more than half of "common"'s postings were dead: the list was compacted
    assert len(index._docs[code]) < 40
    assert_same_as_fresh(index, docs)
    # re-add, reusing the freed slots, with other terms
    for key in range(20, 45):
        terms = {rng.choice(TERMS): rng.randint(1, 3), "common": 1}
        index.put(key, terms)
        docs[key] = terms
    assert_same_as_fresh(index, docs)
    for key in list(docs):
        index.remove(key)
    assert len(index) == 0
    keys, values = index.scores(["common"])
    assert keys == [] and len(values) == 0


# -- stemming and languages -----------------------------------------------------------------


def stems(text: str, language: str) -> set[str]:
    return set(analyse(text, language=language).terms)


def test_english_inflections_share_a_stem() -> None:
    assert stems("repairing", "en") == stems("repair", "en") == stems("repairs", "en")
    assert stems("repairing", "en") != stems("reparing", "en")


def test_dutch_plural_and_inflected_words_share_a_stem() -> None:
    # the module docstring's example (not "fietsen"/"fiets": Snowball's Dutch stemmer
    # makes "fiet" of the singular)
    assert stems("kapotte toestellen", "nl") == stems("kapot toestel", "nl")


@pytest.mark.parametrize(
    ("one", "other"),
    [("wijken", "wijk"), ("tuinen", "tuin"), ("moestuinen", "moestuin"), ("groenten", "groente")],
)
def test_dutch_inflections_share_a_stem_only_in_dutch(one: str, other: str) -> None:
    assert stems(one, "nl") == stems(other, "nl")
    assert stems(one, "en") != stems(other, "en")  # the English stemmer does not know them


DUTCH = "Wij willen de fietsen van de stad repareren en het is goed voor iedereen"
SENTENCES = {
    "nl": DUTCH,
    "fr": "Nous voulons réparer les vélos de la ville pour les habitants du quartier",
    "de": "Wir wollen die Fahrräder der Stadt reparieren und das ist gut für alle",
    "it": "Vogliamo riparare le biciclette della città per gli abitanti e non solo",
    "hu": "Szeretnénk megjavítani a város kerékpárjait és ez nagyon jó mindenkinek",
    "en": "We want to repair the bicycles of the town and it is good for everyone",
}


def test_dutch_sentence_is_dutch_even_with_an_english_hint() -> None:
    assert guess_language(tokens(DUTCH), "en") == "nl"
    analysis = analyse(DUTCH, hint="en")
    assert analysis.language == "nl"
    assert "fiets" in analysis.terms  # stemmed in Dutch ("fietsen" → "fiets")
    assert "de" not in analysis.terms and "het" not in analysis.terms  # Dutch stop words


@pytest.mark.parametrize("hint", [None, "en", "nl"])
@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_sentences_are_recognised(language: str, hint: str | None) -> None:
    assert guess_language(tokens(SENTENCES[language]), hint) == language


@pytest.mark.parametrize(
    ("hint", "expected"), [("nl", "nl"), ("de", "de"), ("hu", "hu"), (None, "en"), ("xx", "en")]
)
def test_hint_decides_without_stop_words(hint: str | None, expected: str) -> None:
    words = tokens("fietsen repareren")
    assert guess_language(words, hint) == expected
    assert guess_language([], hint) == expected
    assert analyse("fietsen repareren", hint=hint).language == expected


def test_tokens_fold_case_and_split_inner_apostrophes_and_hyphens() -> None:
    assert tokens("L'économie circulaire, zero-waste 2030 café_bar") == [
        "l",
        "économie",
        "circulaire",
        "zero",
        "waste",
        "café",
        "bar",
    ]


# -- phrases --------------------------------------------------------------------------------


def phrase_stems(text: str, words: str) -> tuple[Analysis, set[str]]:
    analysis = analyse(text, language="en")
    return analysis, stems(words, "en")


def test_adjacent_shared_words_are_one_phrase_as_written() -> None:
    analysis, wanted = phrase_stems(
        "We are building a Circular Economy by repairing bicycles.",
        "circular economy repair bicycle",
    )
    assert phrases(analysis, wanted) == ["circular economy", "repairing bicycles"]


def test_a_stop_word_breaks_a_phrase_and_order_is_the_texts() -> None:
    analysis, wanted = phrase_stems("repair of the economy", "economy repair")
    assert phrases(analysis, wanted) == ["repair", "economy"]


def test_each_stem_is_named_once() -> None:
    analysis, wanted = phrase_stems(
        "circular economy: the circular economy, and economies", "circular economy"
    )
    assert phrases(analysis, wanted) == ["circular economy"]


def test_each_stem_is_named_once_across_overlapping_runs() -> None:
    analysis, wanted = phrase_stems(
        "circular economy and economy repair", "circular economy repair"
    )
    found = phrases(analysis, wanted)
    named = [stem for phrase in found for stem in analyse(phrase, language="en").terms]
    assert len(named) == len(set(named)), found


def test_at_most_limit_longest_first_then_in_text_order() -> None:
    text = "repair, then bicycles, then the circular economy, then gardens and energy"
    analysis, wanted = phrase_stems(text, "repair bicycle circular economy garden energy")
    assert phrases(analysis, wanted, limit=10) == [
        "repair",
        "bicycles",
        "circular economy",
        "gardens",
        "energy",
    ]
    assert phrases(analysis, wanted) == ["repair", "bicycles", "circular economy"]
    assert phrases(analysis, wanted, limit=2) == ["repair", "circular economy"]
    assert phrases(analysis, wanted, limit=1) == ["circular economy"]
    assert phrases(analysis, wanted, limit=0) == []
    assert phrases(analysis, set()) == []


# -- similar ideas --------------------------------------------------------------------------

REPAIR = "Repair café where neighbours fix broken bicycles and old electronics together."
REPAIR_AGAIN = (
    "Once a month, people from the street mend damaged bikes and broken electronic "
    "gadgets at a repair café in the community centre."
)
ONE_WORD = "Painted bicycle lanes along the river road to the station."  # shares only "bicycl"
TWO_WORDS = (  # shares "broken" and "bicycl", but is about many other things
    "Sweeping broken glass from the bicycle lanes of the harbour, then painting walls, "
    "planting hedges, building benches, laying paths, hanging lamps, cooking meals and "
    "singing songs in the park."
)
UNRELATED = [
    "Solar panels on school roofs, paid for by parents and sold back to the grid.",
    "Beekeeping courses for teenagers with hives on the town hall balcony.",
    "A language exchange evening where refugees teach their mother tongue.",
    "Rainwater barrels under every gutter to water public flower beds in summer.",
    "An app that matches lonely elderly people with students for weekly phone calls.",
    "Composting kitchen scraps in worm bins shared by apartment blocks.",
    "Free coding workshops in the library for girls aged ten to fourteen.",
    "A tool library lending drills, ladders and saws instead of buying them.",
    "Planting fruit trees along the canal so anyone may pick apples and pears.",
    "A choir for people with dementia and their carers, singing songs from their youth.",
    "Swapping school uniforms between families when children grow out of them.",
    "Night buses for shift workers from the industrial park to the suburbs.",
    "Insulating old houses with recycled denim to cut heating bills.",
    "A market for local farmers selling cheese, eggs and vegetables on Saturdays.",
    "Teaching first aid to taxi drivers so they can help at accidents.",
    "Turning empty shops into studios for young artists and designers.",
    "Cleaning plastic from the beach with volunteers and counting what is found.",
    "A chess club in the prison run by former inmates.",
    "Sharing electric cargo scooters among the shops of the high street for deliveries.",
    "Wildflower meadows instead of lawns on roundabouts to feed butterflies.",
]

MOESTUIN = (
    "Een moestuin voor iedere buurtbewoner: samen groenten kweken in de tuinen van de "
    "wijk en oogsten met de kinderen."
)
MOESTUIN_AGAIN = (
    "Buurtbewoners kweken groente in gedeelde moestuinen; in alle wijken komt een tuin "
    "waar kinderen oogsten."
)
UNRELATED_NL = [
    "Zonnepanelen op het dak van de sporthal, betaald door de leden van de club.",
    "Een bibliotheek van gereedschap waar je een boormachine kunt lenen in plaats van kopen.",
    "Taalcafé waar nieuwkomers elke week Nederlands oefenen met vrijwilligers.",
]

REPAIR_NO, REPAIR_AGAIN_NO, ONE_WORD_NO, TWO_WORDS_NO = 1, 2, 3, 6
MOESTUIN_NO, MOESTUIN_AGAIN_NO = 4, 5
FIRST_UNRELATED = 100


def corpus_with_ideas() -> Corpus:
    corpus = Corpus()
    numbered = [
        *((FIRST_UNRELATED + i, text, "en") for i, text in enumerate(UNRELATED)),
        *((FIRST_UNRELATED + 50 + i, text, "nl") for i, text in enumerate(UNRELATED_NL)),
        (REPAIR_AGAIN_NO, REPAIR_AGAIN, "en"),
        (ONE_WORD_NO, ONE_WORD, "en"),
        (TWO_WORDS_NO, TWO_WORDS, "en"),
        (MOESTUIN_AGAIN_NO, MOESTUIN_AGAIN, "en"),  # the owner is spoken to in English
    ]
    for number, text, hint in numbered:
        corpus.put_idea(IdeaText(number, owner=1000 + number, text=text, hint=hint))
    return corpus


def test_a_near_duplicate_in_other_words_ranks_first() -> None:
    corpus = corpus_with_ideas()
    found = corpus.similar(analyse(REPAIR, "en").terms, limit=50)
    assert found, "the near-duplicate is not found"
    best = found[0]
    assert best.number == REPAIR_AGAIN_NO
    assert best.owner == 1000 + REPAIR_AGAIN_NO
    assert SIMILAR_SHARE <= best.share <= 1.0
    assert {"repair", "café", "broken"} <= set(best.shared)
    # only what it shares with the query, the most telling (highest weight) first
    weights = corpus.ideas.weights(REPAIR_AGAIN_NO, analyse(REPAIR, "en").terms)
    assert list(best.shared) == sorted(weights, key=lambda t: (-weights[t], t))
    # nothing unrelated is listed: not the one sharing a single word, not the other topics
    assert [s.number for s in found] == [REPAIR_AGAIN_NO]


def test_a_dutch_near_duplicate_in_other_inflections_ranks_first() -> None:
    corpus = corpus_with_ideas()
    query = analyse(MOESTUIN, hint="en")
    assert query.language == "nl"
    again = analyse(MOESTUIN_AGAIN, hint="en")
    written = {w.written for w in query.words}
    # the shared words are written differently in the two texts
    for one, other in [("tuinen", "tuin"), ("wijk", "wijken"), ("groenten", "groente")]:
        assert one in written and other not in written
        assert other in {w.written for w in again.words}
    found = corpus.similar(query.terms, limit=50)
    assert [s.number for s in found] == [MOESTUIN_AGAIN_NO]
    assert {"tuin", "wijk", "groent", "moestuin", "buurtbewoner"} <= set(found[0].shared)


def test_an_idea_sharing_one_word_is_not_similar() -> None:
    corpus = corpus_with_ideas()
    terms = analyse(REPAIR, "en").terms
    keys, values = corpus.ideas.scores(terms)
    assert ONE_WORD_NO in keys  # it does score: it is the thresholds that leave it out
    assert ONE_WORD_NO not in [s.number for s in corpus.similar(terms, limit=50)]
    # two words in common, but a small share of a perfect match: chance, not similar
    assert TWO_WORDS_NO in keys
    assert set(corpus.ideas.weights(TWO_WORDS_NO, terms)) == {"broken", "bicycl"}
    share = dict(zip(keys, (values / corpus.ideas.self_score(terms)).tolist(), strict=True))
    assert 0 < share[TWO_WORDS_NO] < SIMILAR_SHARE
    assert TWO_WORDS_NO not in [s.number for s in corpus.similar(terms, limit=50)]
    # and a text of another topic finds no repair idea at all
    unrelated = corpus.similar(analyse(UNRELATED[1], "en").terms, limit=50)
    assert REPAIR_AGAIN_NO not in [s.number for s in unrelated]


def test_an_idea_sharing_one_word_is_not_similar_even_with_a_high_share() -> None:
    corpus = corpus_with_ideas()
    corpus.put_idea(IdeaText(8, owner=1, text="A café in the old railway station.", hint="en"))
    terms = analyse("A repair café for the street.", "en").terms
    keys, values = corpus.ideas.scores(terms)
    share = dict(zip(keys, (values / corpus.ideas.self_score(terms)).tolist(), strict=True))
    assert share[8] >= SIMILAR_SHARE  # a short text: its one word weighs a lot
    assert set(corpus.ideas.weights(8, terms)) == {"café"}
    assert [s.number for s in corpus.similar(terms, limit=50)] == [REPAIR_AGAIN_NO]


def test_skip_leaves_out_the_querys_own_idea() -> None:
    corpus = corpus_with_ideas()
    corpus.put_idea(IdeaText(REPAIR_NO, owner=7, text=REPAIR, hint="en"))
    terms = analyse(REPAIR, "en").terms
    found = corpus.similar(terms, limit=50)
    assert [s.number for s in found][:2] == [REPAIR_NO, REPAIR_AGAIN_NO]
    assert found[0].share == pytest.approx(1.0, abs=0.05)
    skipped = corpus.similar(terms, limit=1, skip=(REPAIR_NO,))
    assert [s.number for s in skipped] == [REPAIR_AGAIN_NO]


def test_without_finds_the_same_ideas_before_and_after_indexing() -> None:
    corpus = corpus_with_ideas()
    terms = analyse(REPAIR, "en").terms
    before = corpus.similar(terms, limit=50)
    corpus.put_idea(IdeaText(REPAIR_NO, owner=7, text=REPAIR, hint="en"))
    after = corpus.similar(terms, limit=50, skip=(REPAIR_NO,), without=REPAIR_NO)
    assert [s.number for s in after] == [s.number for s in before] == [REPAIR_AGAIN_NO]
    assert after[0].share == pytest.approx(before[0].share, rel=1e-9)
    assert after[0].shared == before[0].shared
    # counted in, the query's own idea makes its words look commoner
    counted = corpus.similar(terms, limit=50, skip=(REPAIR_NO,))
    assert counted[0].share != pytest.approx(before[0].share, rel=1e-6)


def test_an_idea_put_again_without_text_disappears() -> None:
    corpus = corpus_with_ideas()
    terms = analyse(REPAIR, "en").terms
    assert corpus.owner(REPAIR_AGAIN_NO) == 1000 + REPAIR_AGAIN_NO
    corpus.put_idea(IdeaText(REPAIR_AGAIN_NO, owner=1000 + REPAIR_AGAIN_NO, text=""))
    assert REPAIR_AGAIN_NO not in corpus.ideas
    assert corpus.owner(REPAIR_AGAIN_NO) is None
    assert REPAIR_AGAIN_NO not in [s.number for s in corpus.similar(terms, limit=50)]
    # a text of stop words only has no terms either
    corpus.put_idea(IdeaText(ONE_WORD_NO, owner=1, text="the and of it", hint="en"))
    assert ONE_WORD_NO not in corpus.ideas


# -- peers ----------------------------------------------------------------------------------

BEES = "Beehives on the roofs of schools so pupils learn beekeeping and harvest honey."
BEES_AGAIN = "Teaching pupils beekeeping with hives on school roofs, and selling the honey."
BEEKEEPER = "I keep bees and sell honey; I teach beekeeping courses on roofs."
PROGRAMMER = "Software developer, databases and cloud infrastructure."
MUSICIAN = "Music teacher, I play the violin in an orchestra."


def test_a_peer_whose_bio_shares_the_words_has_more_affinity() -> None:
    corpus = Corpus()
    corpus.put_peer(PeerText(1, BEEKEEPER, "en"))
    corpus.put_peer(PeerText(2, PROGRAMMER, "en"))
    corpus.put_peer(PeerText(3, MUSICIAN, "en"))
    affinity = corpus.affinity(analyse(BEES, "en").terms)
    assert affinity.get(1, 0.0) >= AFFINITY_SHARE
    assert affinity.get(1, 0.0) > affinity.get(2, 0.0)
    assert 2 not in affinity and 3 not in affinity


def peers_with_a_reviewer(reviewed: tuple[int, ...]) -> Corpus:
    corpus = Corpus()
    corpus.put_idea(IdeaText(10, owner=50, text=BEES_AGAIN, hint="en"))
    corpus.put_idea(IdeaText(11, owner=51, text=UNRELATED[7], hint="en"))
    corpus.put_peer(PeerText(2, PROGRAMMER, "en"))
    corpus.put_peer(PeerText(3, MUSICIAN, "en", reviewed=reviewed))
    return corpus


def test_a_peer_who_reviewed_a_similar_idea_gains_affinity() -> None:
    terms = analyse(BEES, "en").terms
    without = peers_with_a_reviewer(reviewed=())
    assert 3 not in without.affinity(terms)
    with_review = peers_with_a_reviewer(reviewed=(10,))
    assert with_review.reviewed(3) == (10,)
    gained = with_review.affinity(terms)
    assert gained.get(3, 0.0) >= AFFINITY_SHARE
    assert 2 not in gained
    # the peer's document is their bio plus the reviewed idea's terms
    bio = analyse(MUSICIAN, "en").terms
    assert with_review.peers.terms(3) == dict(bio + analyse(BEES_AGAIN, "en").terms)
    # reviewing an unrelated idea teaches nothing about bees
    assert 3 not in peers_with_a_reviewer(reviewed=(11,)).affinity(terms)


def test_a_review_before_the_idea_exists_counts_once_it_is_put() -> None:
    corpus = Corpus()
    corpus.put_peer(PeerText(3, MUSICIAN, "en", reviewed=(10,)))
    terms = analyse(BEES, "en").terms
    assert 3 not in corpus.affinity(terms)
    corpus.put_idea(IdeaText(10, owner=50, text=BEES_AGAIN, hint="en"))
    assert corpus.affinity(terms).get(3, 0.0) >= AFFINITY_SHARE


def test_replacing_the_reviewed_idea_takes_its_affinity_away() -> None:
    corpus = peers_with_a_reviewer(reviewed=(10,))
    terms = analyse(BEES, "en").terms
    assert corpus.affinity(terms).get(3, 0.0) >= AFFINITY_SHARE
    corpus.put_idea(IdeaText(10, owner=50, text=UNRELATED[11], hint="en"))
    assert 3 not in corpus.affinity(terms)
    bio = analyse(MUSICIAN, "en").terms
    assert corpus.peers.terms(3) == dict(bio + analyse(UNRELATED[11], "en").terms)
    # and removing it leaves the bio
    corpus.put_idea(IdeaText(10, owner=50, text=""))
    assert corpus.peers.terms(3) == dict(bio)


def test_put_peer_without_reviews_removes_the_reviewed_part() -> None:
    corpus = peers_with_a_reviewer(reviewed=(10,))
    terms = analyse(BEES, "en").terms
    assert corpus.affinity(terms).get(3, 0.0) >= AFFINITY_SHARE
    corpus.put_peer(PeerText(3, MUSICIAN, "en", reviewed=()))
    assert corpus.reviewed(3) == ()
    assert corpus.peers.terms(3) == dict(analyse(MUSICIAN, "en").terms)
    assert 3 not in corpus.affinity(terms)
    # no longer a reviewer: the idea changing again does not bring it back
    corpus.put_idea(IdeaText(10, owner=50, text=BEES, hint="en"))
    assert 3 not in corpus.affinity(terms)
    assert corpus.peers.terms(3) == dict(analyse(MUSICIAN, "en").terms)


def test_a_peer_without_bio_or_reviews_is_not_indexed() -> None:
    corpus = peers_with_a_reviewer(reviewed=(10,))
    corpus.put_peer(PeerText(3, "", "en", reviewed=(10,)))
    assert corpus.peers.terms(3) == dict(analyse(BEES_AGAIN, "en").terms)
    corpus.put_peer(PeerText(3, "", "en"))
    assert 3 not in corpus.peers


def test_top_breaks_ties_at_the_cut_by_key_whatever_the_insertion_order() -> None:
    index: TextIndex[int] = TextIndex()
    for key in [5, 3, 9, 1, 7, 2, 8, 0, 6, 4]:
        index.put(key, {"x": 1, f"own{key}": 1})  # every document scores the same for "x"
    assert [key for key, _ in index.top(["x"], 1)] == [0]
    assert [key for key, _ in index.top(["x"], 3)] == [0, 1, 2]
