"""The bot in Dutch, French and German, played through the real console (SPEC §11).

Each script is played twice on fresh databases: once as it is, in English, and once with
the people choosing a language (or the community speaking one). The two runs say the
same things — as many messages, to the same people, about the same ids and amounts — in
different words; the words are the catalogs' own (bot/i18n/locales), not copied here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.i18n import translations
from tests.e2e import console
from tests.e2e.console import messages, messages_to


def play(folder: Path, *lines: str | list[str], **env: str) -> str:
    """`console.play` in a folder of its own (made when new)."""
    folder.mkdir(parents=True, exist_ok=True)
    return console.play(folder, *lines, **env)


FIRST_WEEK = (Path(__file__).parent / "scripts" / "first_week.txt").read_text().splitlines()
INTAKE_END = FIRST_WEEK.index("ann: confirm") + 1
IDS = re.compile(r"\b[RI]-\d+\b")


def _t(code: str, english: str) -> str:
    return translations(code).gettext(english)


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[^\W\d_]{4,}", text)}


def _in_other_words(english: list[str], other: list[str], code: str) -> None:
    """The same messages (count, ids) in other words: each one shares few of the
    English one's words (people's own words and names aside)."""
    assert len(other) == len(english), (english, other)
    for en, tr in zip(english, other, strict=True):
        assert IDS.findall(tr) == IDS.findall(en), (en, tr)
        ours = _words(en) - _words(tr)
        assert ours, f"{code}: said in English: {tr!r}"


def _choose(script: list[str], code: str, who: tuple[str, ...]) -> list[str]:
    """The script with these people choosing the language as their very first words (which
    greets them as their first "hello" did: that line goes)."""
    first = {name: next(line for line in script if line.startswith(f"{name}:")) for name in who}
    return [f"{name}: language {code}" for name in who] + [
        line for line in script if line not in first.values()
    ]


def test_a_dutch_innovator_and_a_dutch_peer_do_the_whole_loop_in_dutch(tmp_path: Path) -> None:
    loop = [*FIRST_WEEK[:-1], "ann: history", "bob: history"]
    english = play(tmp_path / "en", loop)
    dutch = play(tmp_path / "nl", _choose(loop, "nl", ("bob", "ann")))
    chosen = _t(
        "nl",
        "From now on I speak {language} to you. Commands keep their English "
        "names; type `help` for them.",
    ).split("{")[0]
    for name in ("ann", "bob"):
        told = messages_to(dutch, name)
        assert told[0].startswith(chosen)
        _in_other_words(messages_to(english, name), told[1:], "nl")
    # amounts the Dutch way
    ann_balance = messages_to(dutch, "ann")[-2]
    assert re.search(r"\d+,\d\d SIF", ann_balance), ann_balance
    assert not re.search(r"\d+\.\d\d SIF", ann_balance), ann_balance


def test_a_whole_dutch_community_and_its_staff_channel(tmp_path: Path) -> None:
    english = play(tmp_path / "en", FIRST_WEEK)
    dutch = play(tmp_path / "nl", FIRST_WEEK, SIF_LANGUAGE="nl")
    for name in ("ann", "bob"):
        _in_other_words(messages_to(english, name), messages_to(dutch, name), "nl")
    staff_en = [text for head, text in messages(english) if head == "[#staff]"]
    staff_nl = [text for head, text in messages(dutch) if head == "[#staff]"]
    _in_other_words(staff_en, staff_nl, "nl")


def test_hours_typed_the_dutch_way_are_read(tmp_path: Path) -> None:
    script = [line.replace("done R-1 1.5", "done R-1 1,5") for line in FIRST_WEEK[:-1]]
    out = play(tmp_path, script, SIF_LANGUAGE="nl")
    assert "1,5" in "\n".join(messages_to(out, "ann") + messages_to(out, "bob"))


@pytest.mark.parametrize("code", ["fr", "de"])
def test_french_and_german_innovators_do_the_intake_in_their_language(
    tmp_path: Path, code: str
) -> None:
    script = [line for line in FIRST_WEEK[:INTAKE_END] if line.startswith("ann:")]
    english = play(tmp_path / "en", script)
    other = play(tmp_path / code, _choose(script, code, ("ann",)))
    _in_other_words(messages_to(english, "ann"), messages_to(other, "ann")[1:], code)


def test_a_member_who_never_chose_hears_the_community_language(tmp_path: Path) -> None:
    script = ["carol: hello", "carol: balance", "dave: language en", "dave: balance"]
    english = play(tmp_path / "en", script)
    dutch = play(tmp_path / "nl", script, SIF_LANGUAGE="nl")
    _in_other_words(messages_to(english, "carol"), messages_to(dutch, "carol"), "nl")
    # dave chose English in a Dutch community
    assert messages_to(dutch, "dave")[-1] == messages_to(english, "dave")[-1]


def test_an_unknown_language_lists_the_choices_and_changes_nothing(tmp_path: Path) -> None:
    out = play(tmp_path, "ann: hello", "ann: language fr", "ann: language xx", "ann: language")
    refused, shown = messages_to(out, "ann")[-2:]
    for code in ("en", "nl", "fr", "de"):
        assert f"`{code}`" in refused
    assert "xx" in refused
    assert "Français" in shown  # still French


def test_the_simulator_reads_topics_not_words(tmp_path: Path) -> None:
    """The same report whatever language the community speaks."""
    args = ["simulate", "--members", "40", "--weeks", "2", "--seed", "1"]
    reports = []
    for code in ("en", "nl"):
        folder = tmp_path / code
        folder.mkdir()
        done = console.run(args, folder, SIF_LANGUAGE=code)
        assert done.returncode == 0, done.stderr
        reports.append(done.stdout)
    assert reports[0] == reports[1] and "accepted" in reports[0]
