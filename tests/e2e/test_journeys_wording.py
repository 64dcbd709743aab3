"""Numbers, amounts, long reviews, wording, plain-word reports, the console and the set-up
(issue 18, findings 9-15), played through the real `sif-bot` command as people would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.console import SIF_BOT, messages, play, run

ROOT = Path(__file__).resolve().parents[2]
INTAKE = (Path(__file__).parent / "scripts" / "intake.txt").read_text(encoding="utf-8")


def said_to(output: str, head: str) -> list[str]:
    """The texts printed under one head, e.g. "[to ann]" or "[#staff]"."""
    return [text for h, text in messages(output) if h == head]


# -- 9. numbers staff can trust ----------------------------------------------------------


def test_stats_says_what_circulates_and_what_is_held_now(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "bob: expertise add finance:3",
        INTAKE,
        "staff: grant @ann 10 welcome",
        "ann: request I-1 review",
        "bob: accept R-1",
        "bob: done R-1 2 Good plan.",
        "ann: thanks R-1 5",
        "ann: request I-1 advice",
        "bob: accept R-2",
        "staff #staff: stats 7",
    )
    stats = said_to(out, "[#staff]")[-1]
    # ann 10 - 2 - 1 = 7 (1 of it held), bob 2: members hold 9 SIF; the network granted 10.
    assert "SIF in circulation (the sum of positive balances): 9.00 SIF" in stats
    assert "granted by the network (net of corrections): 10.00 SIF" in stats
    assert "held in escrow now: 1.00 SIF" in stats
    # what moved in the window is labelled as a flow, not as what is held
    assert "Moved in these 7 days: 3.00 SIF into escrow as peers accepted, 2.00 SIF" in stats
    assert "16.00 SIF held" not in stats and "3.00 SIF held in escrow" not in stats


@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One small simulation with charts, shared by the report's tests."""
    out = tmp_path_factory.mktemp("sim")
    done = subprocess.run(
        [SIF_BOT, "simulate", "--members", "60", "--weeks", "3", "--seed", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=out,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, out


def test_the_simulator_says_escalations_of_how_many_requests(
    simulation: tuple[str, Path],
) -> None:
    report, _ = simulation
    total = int(re.search(r"^  requests (\d+) \(", report, re.M).group(1))  # type: ignore[union-attr]
    escalated = re.search(r"requests escalated to staff (\d+) of (\d+) \(([\d.]+)%\)", report)
    assert escalated is not None, report
    count, of, share = int(escalated[1]), int(escalated[2]), float(escalated[3])
    assert of == total and share == round(100 * count / total, 1)
    assert "in circulation at the end" in report and "(the sum of positive balances)" in report


# -- 10. big or mistyped amounts and names -----------------------------------------------


def test_admin_grant_refuses_an_unknown_identity_and_names_the_right_one(tmp_path: Path) -> None:
    play(tmp_path, "ann: balance")
    typo = run(["admin", "grant", "console:anne", "5", "prize"], tmp_path)
    assert typo.returncode == 2
    assert "nobody here has the identity console:anne" in typo.stdout
    assert "Did you mean console:ann?" in typo.stdout
    assert "`sif-bot export members` lists every member's identities" in typo.stdout
    nobody = run(["admin", "grant", "console:nobody", "5", "prize"], tmp_path)
    assert nobody.returncode == 2 and "console:nobody" in nobody.stdout
    members = run(["export", "members"], tmp_path).stdout
    assert "console:nobody" not in members and "console:anne" not in members  # nobody created
    granted = run(["admin", "grant", "console:ann", "5", "prize"], tmp_path)
    assert granted.returncode == 0 and "Granted 5.00 SIF to ann: prize." in granted.stdout


def test_a_too_big_amount_is_called_too_big_with_the_maximum(tmp_path: Path) -> None:
    out = play(tmp_path, "ann: balance", "staff: grant @ann 99999999999999999999 big")
    refusal = said_to(out, "[to staff]")[-1]
    assert "'99999999999999999999' is too big; the most is 1,000,000 SIF." in refusal
    assert "is not an amount" not in refusal


# -- 11. long reviews --------------------------------------------------------------------


def test_a_long_review_is_delivered_whole_and_a_too_long_one_says_what_to_do(
    tmp_path: Path,
) -> None:
    review = " ".join(["The cost model needs a line per café and a reserve."] * 83)
    assert 4_300 < len(review) < 4_500
    longest = ("x" * 99 + " ") * 120  # 12,000 characters
    out = play(
        tmp_path,
        "bob: expertise add finance:3",
        INTAKE,
        "staff: grant @ann 10 welcome",
        "ann: request I-1 review",
        "bob: accept R-1",
        f"bob: done R-1 3 {review}",
        "ann: request I-1 advice",
        "bob: accept R-2",
        f"bob: done R-2 3 {longest.strip()}{'y' * 500}",
        f"bob: done R-2 3 {longest.strip()}",
    )
    bob = said_to(out, "[to bob]")
    assert any(m.startswith("Delivered R-1 (3 h") for m in bob), bob
    delivered = [m for m in said_to(out, "[to ann]") if m.startswith("bob delivered R-1")]
    assert delivered and review in delivered[0].replace("\n", " ")
    refusal = next(m for m in bob if "too long" in m)
    assert "12,499 characters; at most 12,000" in refusal
    assert "shared document" in refusal  # says what to do instead
    assert any(m.startswith("Delivered R-2 (3 h") for m in bob), bob


# -- 12. wording -------------------------------------------------------------------------


def test_counts_notes_and_roles_read_as_sentences(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "staff #staff: balances",
        "staff: export members",
        "bob: balance",
        "ann: availability 1",
        "staff: grant @ann 5 still there?",
        "staff: role @bob staff",
        "staff: role @bob member",
    )
    balances = said_to(out, "[#staff]")[0]
    assert balances.startswith("Balances, lowest first (1 member, sum 0.00 SIF)")
    # staff is typing this very command: not "never" active
    today = datetime.now(UTC).date()
    assert any(
        str(day) in balances.splitlines()[-1] for day in (today, today - timedelta(days=1))
    ), balances
    assert "never" not in balances
    assert "Export of members: 1 row in sif-members-" in said_to(out, "[to staff]")[0]
    ann = said_to(out, "[to ann]")
    assert "fewer than 1 open reviews" not in ann[0]
    assert "at most 1 open review at a time" in ann[0]
    assert "You received 5.00 SIF from staff: still there? Your balance" in ann[1]
    bob = said_to(out, "[to bob]")
    assert "made you a staff member of" in bob[-2]
    assert "made you member" not in bob[-1]
    assert "changed your role in Social Innovation Factory to member (was staff)" in bob[-1]


def test_a_resolve_note_and_an_escalating_decline_say_what_happened(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "bob: expertise add finance:3",
        INTAKE,
        "staff: grant @ann 10 welcome",
        "ann: request I-1 review",
        "bob: accept R-1",
        "ann: dispute R-1 not what I asked",
        "staff: resolve R-1 refund not enough detail",
        "ann: request I-1 advice",
        "bob: decline R-2 travelling",
        SIF_FANOUT="1",
        SIF_MAX_ROUNDS="1",
    )
    resolved = [m for m in said_to(out, "[to ann]") if m.startswith("Staff resolved")]
    assert resolved == [
        "Staff resolved the dispute on R-1: 2.00 SIF refunded to ann. "
        "Staff's note: not enough detail."
    ]
    declined = [m for m in said_to(out, "[to bob]") if m.startswith("Declined R-2")]
    assert declined and "goes to another peer" not in declined[0]
    assert "staff were asked to find a reviewer" in declined[0]


def test_suggestions_are_close_and_commas_are_accepted(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "ann: balance",
        "bob: expertise add finance, legal",
        "staff: grant @ann, 1 welcome",
        INTAKE,
        "ann: one",
        "ann: request I-1 reviews",
        "ann: request I-1 review finance, legal",
    )
    bob = said_to(out, "[to bob]")
    assert bob[0] == "Your expertise: finance:2, legal:2."
    assert said_to(out, "[to staff]")[0].startswith("Granted 1.00 SIF to ann (welcome)")
    ann = said_to(out, "[to ann]")
    unknown = next(m for m in ann if m.startswith("I don't know the command 'one'"))
    assert "Did you mean" not in unknown
    reviews = next(m for m in ann if "'reviews'" in m)
    assert "Did you mean `review`?" in reviews and "not one of this community's tags" not in reviews
    assert any(m.startswith("Asked the network: R-1: review of I-1") for m in ann), ann


def test_the_export_names_statuses_as_the_chat_does(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "bob: expertise add finance:3",
        INTAKE,
        "staff: grant @ann 10 welcome",
        "ann: request I-1 review",
        "bob: accept R-1",
        "staff: export requests",
    )
    assert "[to bob] You accepted R-1" in out
    export = said_to(out, "[to staff]")[-1]
    row = next(line for line in export.splitlines() if line.startswith("R-1,"))
    assert ",accepted," in row and "assigned" not in row


# -- 13. reports in plain words ----------------------------------------------------------


def test_the_stats_reply_explains_its_figures_and_small_samples(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        "bob: expertise add finance:3",
        INTAKE,
        "staff: grant @ann 10 welcome",
        "ann: request I-1 review",
        "bob: accept R-1",
        "staff #staff: stats 7",
    )
    stats = said_to(out, "[#staff]")[-1]
    assert "p90" not in stats
    assert "Time to accept: half within 0.0 h, 9 in 10 within 0.0 h" in stats
    assert "only 1 request, too few to judge" in stats
    # the window is 7 calendar days, today included (the chart shows as many dates)
    window = re.match(r"Network over the last 7 days \(since (\S+), UTC\):", stats)
    assert window is not None, stats
    today = datetime.now(UTC).date()
    assert window[1] in {f"{today - timedelta(days=d):%Y-%m-%d}" for d in (6, 7)}


def test_the_simulator_report_speaks_plain_words(simulation: tuple[str, Path]) -> None:
    report, charts = simulation
    for jargon in ("taker", "ghost", "p10", "p90", "Gini "):
        assert jargon not in report, jargon
    assert "members who only ask" in report and "members who never answer" in report
    assert "load spread (Gini" in report and "0 = every peer the same" in report
    assert "bottom 10%" in report and "top 10%" in report
    assert "too few" in report  # tags with a handful of requests are not judged
    assert sorted(p.name for p in charts.glob("*.png")) == [
        "acceptance.png",
        "balances.png",
        "load.png",
        "overview.png",
        "tags.png",
    ]


# -- 14. the console ---------------------------------------------------------------------


def test_a_script_accepts_any_letters_in_names(tmp_path: Path) -> None:
    out = play(tmp_path, "józef: balance", "zoë #general: tags", "Ærøskøbing_2: balance")
    assert said_to(out, "[to józef]")[0].startswith("Your balance: 0.00 SIF")
    assert said_to(out, "[to zoë in #general]")[0].startswith("Expertise tags here:")
    assert said_to(out, "[to Ærøskøbing_2]")


def test_the_interactive_console_speaks_in_channels_and_switches_people(tmp_path: Path) -> None:
    typed = "\n".join(
        [
            "#general tags",
            "as bob smith",
            "as staff #staff",
            "balances",
            "as józef",
            "balance",
            "",
        ]
    )
    done = run(["console", "--as", "ann"], tmp_path, typed)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "#channel text" in out.splitlines()[0]  # the banner says how
    assert "[to ann in #general] Expertise tags here:" in out
    assert "A console name is one word" in out and "[to bob" not in out
    assert "[#staff] Balances, lowest first" in out  # staff spoke in #staff
    assert "[to józef] Your balance: 0.00 SIF" in out
    members = run(["export", "members"], tmp_path).stdout
    assert "console:bob" not in members and "smith" not in members


def test_the_stats_chart_is_saved_to_a_file_and_its_path_printed(tmp_path: Path) -> None:
    out = play(tmp_path, "ann: balance", "staff #staff: stats 7")
    match = re.search(r"--- sif-stats-\d{8}\.png \(([\d,]+) bytes\) saved to (\S+) ---", out)
    assert match is not None, out
    saved = Path(match.group(2))
    assert saved.parent == tmp_path  # next to the database
    assert saved.read_bytes().startswith(b"\x89PNG")
    assert saved.stat().st_size == int(match.group(1).replace(",", ""))
    again = play(tmp_path, "staff #staff: stats 30")
    second = re.search(r"saved to (\S+) ---", again)
    assert second is not None and Path(second.group(1)) != saved  # no chart overwritten
    assert saved.exists()


# -- 15. the set-up says only what a newcomer needs ---------------------------------------


TINY = """\
[build-system]
requires = ["setuptools>=77", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-sif"
version = "0.1.0"
dependencies = {dependencies}

[tool.setuptools.packages.find]
include = ["tinybot*"]
"""


def _machine_noise(line: str) -> bool:
    """What this machine's pip configuration says whatever is installed (a package index
    folder it lists that is missing), not the Makefile."""
    return line.startswith("WARNING: Location ") and "is ignored" in line


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_makefile_installs_quietly_and_still_shows_errors(tmp_path: Path) -> None:
    """The Makefile's set-up on a small project of the same layout (a package at the top
    and other folders beside it, which makes setuptools print its editable-install box)."""
    project = tmp_path / "project"
    (project / "tinybot").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "tinybot" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(TINY.format(dependencies="[]"))
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    env = {**os.environ, "PYTHON": sys.executable}
    # Run as a newcomer's own `make` would: not inside another make (which prints the
    # folders it enters), with no warning filters of the caller's.
    for inherited in ("PYTHONWARNINGS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(inherited, None)
    done = subprocess.run(
        ["make", ".venv/.installed"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown
    assert "be careful" not in shown and "Editable installation" not in shown
    assert "********" not in shown
    ours = [line for line in shown.strip().splitlines() if not _machine_noise(line)]
    assert len(ours) <= 4, shown  # a line or two per step
    # A mistake in the project still shows pip's error.
    (project / "pyproject.toml").write_text(TINY.format(dependencies='["not a (valid spec"]'))
    broken = subprocess.run(
        ["make", ".venv/.installed"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert broken.returncode != 0
    assert "not a (valid spec" in broken.stdout + broken.stderr
