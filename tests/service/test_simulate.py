"""`sif-bot simulate`: deterministic reports over the real core, sane figures, charts."""

from __future__ import annotations

import argparse
import dataclasses
import random
from pathlib import Path

import pytest

from bot.entrypoints import simulate as simulation
from bot.entrypoints.simulate import (
    SimConfig,
    SimReport,
    add_arguments,
    gini,
    parse_overrides,
    run,
    simulate,
)
from bot.entrypoints.simulate.community import TOPICS, _community, _intake_script, _profile_script
from bot.settings import load_settings


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sif-bot simulate")
    add_arguments(parser)
    return parser.parse_args(argv)


def _assert_sane(report: SimReport) -> None:
    assert report.count("requests") > 0 and report.judged > 0
    assert 0 <= report.within_24h <= report.within_48h <= 1
    assert 0 <= report.never <= 1 - report.within_48h + 1e-9
    assert report.median_hours is None or report.median_hours >= 0
    assert 0 <= report.gini <= 1
    assert len(report.load) > 0 and min(report.load) >= 0
    assert report.invariant_problems == ()  # the ledger repository's check_invariants
    assert report.count("errors") == 0  # the core never answered "something went wrong"
    floor = report.credit_limit
    for snap in report.snapshots:
        # No grants: mutual credit sums to zero over members and escrow, every day.
        assert sum(snap.balances) + snap.escrow == 0
        assert min(snap.balances) >= floor and snap.escrow >= 0
    assert [s.day for s in report.snapshots] == list(range(len(report.snapshots)))
    assert 0 <= report.topic_reviews <= report.count("reviews delivered")
    assert 0 <= report.topic_share <= 1 and 0 <= report.topic_by_chance <= 1
    text = report.text()
    assert "sif-simulate-" not in text and "/tmp" not in text  # no temporary paths


async def test_same_seed_same_report_other_seed_another() -> None:
    config = SimConfig(members=50, weeks=4, seed=7)
    first = await simulate(config)
    again = await simulate(config)
    assert first.text() == again.text()
    assert first == again
    other = await simulate(SimConfig(members=50, weeks=4, seed=8))
    assert other.text() != first.text()
    for report in (first, other):
        _assert_sane(report)
    assert "Goals for the rules" in first.text()


async def test_leaving_out_sweeps_that_would_find_nothing_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SimConfig(members=40, weeks=3, seed=5)
    quick = await simulate(config)
    monkeypatch.setattr(simulation._Simulation, "offers_due", lambda self: True)
    every_sweep = await simulate(config)
    assert quick.text() == every_sweep.text()
    assert quick.count("sweeps") < every_sweep.count("sweeps")


async def test_cli_compare_prints_both_and_writes_charts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "charts"
    args = _args(
        "--members", "20", "--weeks", "1", "--seed", "3",
        "--set", "offer_ttl_hours=8", "--compare", "fanout=2", "--out", str(out),
    )  # fmt: skip
    assert await run(args) == 0
    printed = capsys.readouterr().out
    assert "== A ==" in printed and "== B ==" in printed
    assert "Changed from the defaults: offer_ttl_hours=8, fanout=2" in printed
    assert "Comparison (same community and seed)" in printed
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["acceptance.png", "balances.png", "load.png", "overview.png", "tags.png"]
    for name in pngs:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


async def test_bad_settings_stop_before_simulating(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(_args("--set", "colour=blue")) == 2
    assert "unknown setting 'colour'" in capsys.readouterr().err
    assert await run(_args("--set", "fanout=0")) == 2
    assert "SIF_FANOUT" in capsys.readouterr().err
    assert await run(_args("--members", "2")) == 2


def test_overrides_and_gini() -> None:
    assert parse_overrides(["sif_fanout=2", "offer_ttl_hours = 12", "fanout=3"]) == (
        ("fanout", "3"),
        ("offer_ttl_hours", "12"),
    )
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["fanout"])
    with pytest.raises(ValueError, match="unknown setting 'admins'"):
        parse_overrides(["admins=console:me"])
    assert gini([]) == 0 and gini([0, 0]) == 0 and gini([2, 2, 2]) == 0
    assert gini([0, 0, 3]) == pytest.approx(2 / 3)


async def test_charts_count_in_whole_numbers_and_name_no_run_when_alone() -> None:
    from matplotlib.figure import Figure

    from bot.entrypoints.simulate.charts import (
        _labels,
        _plot_balances,
        _plot_load_histogram,
        _plot_lorenz,
    )

    report = await simulate(SimConfig(members=20, weeks=1, seed=3))
    # a few peers with 0-2 reviews: left to itself matplotlib would count 0.5 peers
    report = dataclasses.replace(report, load=(0, 1, 2, 2, 1, 0, 0))
    runs = _labels([report])
    assert runs == [("", report)]  # one run: no "defaults:" before every legend entry
    fig = Figure()
    load, balances, lorenz = fig.subplots(1, 3)
    _plot_load_histogram(load, runs)
    fig.canvas.draw()  # tick positions are chosen when drawn
    for ticks in (load.get_yticks(), load.get_xticks()):
        assert all(float(t).is_integer() for t in ticks), ticks
    _plot_balances(balances, runs)
    _plot_lorenz(lorenz, runs)
    for axes in (balances, lorenz):
        legend = axes.get_legend()
        assert legend is not None
        texts = [t.get_text() for t in legend.get_texts()]
        assert not any(t.startswith("defaults") for t in texts), texts
    assert "Lorenz" not in lorenz.get_title() and "evenly" in lorenz.get_title()
    compared = _labels([report, report])
    assert [label for label, _ in compared] == ["A: defaults", "B: defaults"]


async def test_a_small_run_says_it_is_too_small_to_judge() -> None:
    report = await simulate(SimConfig(members=12, weeks=1, seed=2))
    text = report.text()
    assert report.judged < 20
    assert "too few to judge the rules" in text
    assert "too few to trust these results" in text.split("Goals for the rules")[1]


def _texts(seed: int) -> list[tuple[str, str, dict[str, str]]]:
    tags = load_settings(_env_file=None).sif_tags
    return [(m.topic, m.bio, m.idea_answers) for m in _community(random.Random(seed), 80, tags)]


def test_ideas_and_bios_are_written_in_their_topics_words_the_same_for_a_seed() -> None:
    texts = _texts(11)
    assert texts == _texts(11)
    assert texts != _texts(12)
    members = _community(random.Random(11), 80, load_settings(_env_file=None).sif_tags)
    assert {m.topic for m in members} == set(TOPICS)  # 80 members cover the 7 topics
    for member in members:
        vocabulary = TOPICS[member.topic]
        if member.expertise:
            assert 0 < len(member.bio) <= 500  # the profile's bio question takes 500
            assert sum(phrase in member.bio for phrase in vocabulary) >= 4
            assert _profile_script(member)[5] == member.bio
        else:
            assert member.bio == ""
        if member.idea_tags:
            answers = member.idea_answers
            assert list(answers) == ["title", "summary", "need", "impact", "uncertainties"]
            assert 3 <= len(answers["title"]) <= 80  # the intake's bounds
            idea = " ".join(answers.values())
            assert sum(phrase in idea for phrase in vocabulary) >= 10
            others = (p for t, words in TOPICS.items() if t != member.topic for p in words)
            assert sum(phrase in idea for phrase in others) <= 2  # a word may be in two
            script = _intake_script(member)
            assert script[1:5] == tuple(answers[k] for k in ("title", "summary", "need", "impact"))
            assert script[8] == answers["uncertainties"]
        else:
            assert member.idea_answers == {}


async def test_a_small_run_reports_the_reviews_by_a_peer_of_the_ideas_topic() -> None:
    report = await simulate(SimConfig(members=30, weeks=2, seed=4))
    delivered = report.count("reviews delivered")
    assert delivered > 0
    assert 0 <= report.topic_share <= 1
    assert report.topic_share == report.topic_reviews / delivered
    assert [t for t, _, _ in report.topics] == list(TOPICS)
    assert sum(ideas for _, ideas, _ in report.topics) == report.count("ideas")
    assert sum(peers for _, _, peers in report.topics) == len(report.load)
    text = report.text()
    assert (
        f"reviews by a peer of the idea's topic {report.topic_reviews} of {delivered} "
        f"({100 * report.topic_share:.1f}%; by chance" in text
    )
    assert "text affinity on" in text
    figures = {name: value for name, value, _ in report.figures()}
    assert figures["reviews by a peer of the idea's topic (%)"] == 100 * report.topic_share


async def test_cli_compares_without_and_with_text_affinity(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _args("--members", "20", "--weeks", "1", "--seed", "3", "--compare-affinity")
    assert await run(args) == 0
    printed = capsys.readouterr().out
    a, b = printed.split("== B ==")
    assert "Changed from the defaults: affinity=false" in a and "text affinity off" in a
    assert "Changed from the defaults: affinity=true" in b and "text affinity on" in b
    assert "  A: affinity=false\n  B: affinity=true" in printed
    assert "reviews by a peer of the idea's topic (%)" in b.split("Comparison")[1]
    assert "goal at least 95% of requests accepted within 48 h" in printed
    with pytest.raises(SystemExit):
        _args("--compare-affinity", "--compare", "fanout=2")
