"""The real `sif-bot` command: console scripts, migrations and operator commands."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.console import lines_to, run


def test_staff_grant_and_refusals_in_a_console_script(tmp_path: Path) -> None:
    script = "\n".join(
        [
            "# comments and blank lines are skipped",
            "",
            "ann: balance",
            "staff: grant @ann 5 welcome to the network",
            "ann: balance",
            "ann: grant @ann 5 free money",
            "staff: grant @ann abc x",
            "staff: grant @nobody 5 x",
            f"ann: {'y' * 20_000}",
            "ann: frobnicate",
            "ann: balance",
            "ann: history",
            "staff #staff: balances",
        ]
    )
    done = run(["console", "--script", "-"], tmp_path, script)
    assert done.returncode == 0, done.stderr
    ann = lines_to(done.stdout, "ann")
    staff = lines_to(done.stdout, "staff")
    assert ann[0] == "[to ann] Your balance: 0.00 SIF"
    assert staff[0] == (
        "[to staff] Granted 5.00 SIF to ann (welcome to the network); "
        "their balance is now 5.00 SIF."
    )
    assert ann[1].startswith("[to ann] You received 5.00 SIF from staff")
    assert ann[2] == "[to ann] Your balance: 5.00 SIF"
    refusals = [ann[3], staff[1], staff[2], ann[4], ann[5]]
    assert "`grant` is for staff only" in refusals[0]
    assert "'abc' is not an amount" in refusals[1]
    assert "I don't know a member @nobody" in refusals[2]
    assert "too long (20,000 characters" in refusals[3]
    assert "I don't know the command 'frobnicate'" in refusals[4]
    for refusal in refusals:
        assert len(refusal) < 300
    assert ann[6] == "[to ann] Your balance: 5.00 SIF"  # nothing changed
    history = done.stdout.split("[to ann] Latest entries on your account (newest first):")[1]
    assert "grant +5.00 SIF — welcome to the network (by staff)" in history
    channel = done.stdout.split("[#staff] ")[1]
    assert channel.startswith("Balances, lowest first (2 members, sum 5.00 SIF)")
    assert "Traceback" not in done.stdout + done.stderr


def test_state_survives_between_runs_and_the_admin_cli(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    role = run(["admin", "role", "console:bob", "staff"], tmp_path)  # registers bob
    assert role.returncode == 0 and "bob (console:bob) is now staff" in role.stdout
    first = run(["admin", "grant", "console:bob", "3.5", "event prize"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Granted 3.50 SIF to bob" in first.stdout
    script = "bob: balance\nbob: grant @bob 1 self\nbob: grant confirm @bob 1 self\n"
    done = run(["console", "--script", "-"], tmp_path, script)
    assert "[to bob] Your balance: 3.50 SIF" in done.stdout
    assert "it is for yourself, so it needs a second look" in done.stdout
    assert "Granted 1.00 SIF to bob" in done.stdout
    assert (
        "[#staff] bob granted 1.00 SIF to bob (self), confirmed because it is for themselves."
        in done.stdout
    )
    bad = run(["admin", "grant", "telegram:x", "1", "x"], tmp_path)
    assert bad.returncode == 2 and "platform:external_id" in bad.stdout


def test_a_malformed_script_line_is_reported(tmp_path: Path) -> None:
    done = run(["console", "--script", "-"], tmp_path, "this line has no speaker\nann: tags\n")
    assert done.returncode == 1
    assert "line 1: expected 'NAME: text'" in done.stderr
    assert "[to ann] Expertise tags here:" in done.stdout


def test_a_full_intake_in_the_console(tmp_path: Path) -> None:
    """Bad answer, `back`, `skip`, `edit impact`, confirm; then `ideas` and the staff notice."""
    script = (Path(__file__).parent / "scripts" / "intake.txt").read_text(encoding="utf-8")
    done = run(["console", "--script", "-"], tmp_path, script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "That is too short (2 characters; at least 3)." in out  # the bad title, re-asked
    assert "(now: A network of repair cafés in Ghent.)" in out  # `back` showed the old answer
    assert "Tenets" not in out.split("Here is what you told me:")[1]  # skipped
    final = out.split("Here is what you told me:")[-1]
    assert "Intended impact: Fewer items thrown away, and 200 neighbours meet each month" in final
    assert "Summary: A network of volunteer-run repair cafés in every Ghent" in final
    assert "Your idea is saved as I-1: Repair café network." in out
    assert "[#staff] New idea I-1 from ann: Repair café network" in out
    assert out.rstrip().splitlines()[-1].startswith("    I-1 Repair café network · submitted")


def test_a_community_flow_file_changes_wording_and_a_bad_one_stops_start_up(
    tmp_path: Path,
) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(
        "intake:\n  questions:\n    title:\n      prompt: 'How do you call your plan?'\n",
        encoding="utf-8",
    )
    done = run(["console", "--script", "-"], tmp_path, "ann: intake\n", SIF_FLOWS_PATH=str(flows))
    assert done.returncode == 0, done.stderr
    assert "How do you call your plan?" in done.stdout
    flows.write_text("intake:\n  questions:\n    titel:\n      prompt: 'x'\n", encoding="utf-8")
    bad = run(["console", "--script", "-"], tmp_path, "ann: intake\n", SIF_FLOWS_PATH=str(flows))
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "SIF_FLOWS_PATH" in lines[0] and "titel" in lines[0]


def test_the_demo_plays_the_whole_loop(tmp_path: Path) -> None:
    done = run(["demo"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    steps = [
        "[to ann] You received 5.00 SIF from staff",
        "Your idea is saved as I-1: Repair café network.",
        "Your peer profile is saved (expertise finance:3, business-model:2)",
        "[to bob] Can you help? R-1: review of I-1",
        "Why you: matches finance:3, business-model:2",
        "[to cleo] Can you help? R-1",
        "[to cleo] You accepted R-1",
        "[to ann] cleo delivered R-1",
        "[to cleo] ann thanked you for R-1 (5/5)",
        "[#staff] Balances, lowest first (4 members, sum 5.00 SIF)",
    ]
    positions = [out.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert "[to staff] Can you help?" not in out  # staff take no review offers
    assert not list(tmp_path.iterdir())  # the demo leaves no database behind
    assert "Traceback" not in out + done.stderr


def test_staff_export_csv_in_the_console(tmp_path: Path) -> None:
    script = "\n".join(
        [
            "ann: balance",
            "staff: grant @ann 5 welcome",
            "staff: adjust @ann -1.25 correction",
            "staff #staff: export ledger",
            "staff: export members",
            "ann: export requests",
        ]
    )
    done = run(["console", "--script", "-"], tmp_path, script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[#staff] Export of ledger: 4 rows in sif-ledger-" in out
    assert "The amounts sum to 0.00 SIF" in out
    assert "transaction,at,kind,request,reason,author,account,member,amount_sif" in out
    assert ",grant,,welcome,staff,member,ann,5.00" in out
    assert ",adjust,,correction,staff,network,,1.25" in out
    assert "member,name,role,identities,expertise" in out and ",ann,member,console:ann," in out
    assert "[to ann] `export` is for staff only" in out


def test_cli_backup_and_import_give_the_same_ledger(tmp_path: Path) -> None:
    run(["console", "--script", "-"], tmp_path, "ann: balance\nstaff: grant @ann 5 welcome\n")
    backup = tmp_path / "backup.json"
    done = run(["export", "--format", "json", "--out", str(backup)], tmp_path)
    assert done.returncode == 0 and backup.stat().st_size > 0, done.stderr
    other = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/restored.db"}
    imported = run(["import", str(backup)], tmp_path, **other)
    assert imported.returncode == 0 and "Imported" in imported.stdout, imported.stderr
    original = run(["export", "ledger"], tmp_path).stdout
    restored = run(["export", "ledger"], tmp_path, **other).stdout
    assert original == restored and ",grant,,welcome,staff,member,ann,5.00" in original
    again = run(["import", str(backup)], tmp_path, **other)
    assert again.returncode == 2 and "not empty" in again.stderr
    missing = run(["export", "members", "--community", "slack:T9"], tmp_path)
    assert missing.returncode == 2 and "no community 'slack:T9'" in missing.stderr


def test_find_intro_mydata_and_forget(tmp_path: Path) -> None:
    script = "\n".join(
        [
            "bob: expertise add finance:3 legal",
            "cleo: expertise add finance:1",
            "dan: expertise add design",
            "ann: balance",
            "staff: grant @ann 2 welcome",
            "ann: find finance",
            "ann: find astrology",
            "ann: intro @bob I-1 he knows grants",
            "ann: mydata",
            "ann: forget",
            "ann: forget confirm",
            "staff #staff: balances",
        ]
    )
    done = run(["console", "--script", "-"], tmp_path, script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    found = out.split("[to ann] Members who match:")[1]
    assert found.index("bob — finance:3, legal:2") < found.index("cleo — finance:1")
    assert "dan" not in found.split("[to")[0]
    assert "[to ann] Nobody matches 'astrology'" in out
    assert "[to ann] There is no idea I-1 here" in out  # ann has no idea yet
    assert '"name": "ann"' in out and '"balance_sif": 2.0' in out  # the mydata file
    assert "Type `forget confirm` to go ahead." in out
    assert "Your 2.00 SIF go to the network." in out  # said before confirming
    assert "[to ann] Done: your data is erased. Your 2.00 SIF went to the network." in out
    assert "[#staff] A member asked to be forgotten: now former member" in out
    table = out.split("[#staff] Balances")[1]
    assert "former member" in table and "sum 0.00 SIF" in table  # back with the network
    again = run(["console", "--script", "-"], tmp_path, "ann: balance\n")
    assert "[to ann] Your balance: 0.00 SIF" in again.stdout  # a fresh member now


def test_intro_sends_the_idea_to_both(tmp_path: Path) -> None:
    run(["console", "--script", "-"], tmp_path, "ann: balance\nbob: balance\n")
    done = run(
        ["console", "--script", "-"],
        tmp_path,
        (Path(__file__).parent / "scripts" / "intake.txt").read_text()
        + "ann: intro @bob I-1 he knows grants\nbob: intro @ann I-1\n",
    )
    out = done.stdout
    assert "[to bob] ann would like to introduce you to I-1 “Repair café network” by ann." in out
    assert "ann adds: he knows grants" in out
    assert "[to ann] Introduced bob to I-1" in out
    assert "[#staff] Introduction: ann introduced bob to I-1." in out
    assert "[to bob] I-1 is not your idea" in out


def test_stats_and_link_in_the_console(tmp_path: Path) -> None:
    intake = (Path(__file__).parent / "scripts" / "intake.txt").read_text(encoding="utf-8")
    script = intake + "\n".join(
        [
            "bob: expertise add finance:3",
            "ann: intro @bob I-1",
            "staff #staff: stats 7",
            "ann: link",
        ]
    )
    done = run(["console", "--script", "-"], tmp_path, script)
    assert done.returncode == 0, done.stderr
    stats = done.stdout.split("[#staff] Network over the last 7 days (since ")[1]
    assert "Requests: 0 opened" in stats and "Introductions made: 1." in stats
    assert "--- sif-stats-" in stats  # the chart file came with it
    code = done.stdout.split("Your link code is ")[1][:8]
    script = f"ann2: link {code}\nann2: link {code} confirm\nann2: ideas\n"
    linked = run(["console", "--script", "-"], tmp_path, script)
    assert "[to ann2] This code joins this account to ann (member" in linked.stdout
    assert "[to ann2] Linked: this account is now ann" in linked.stdout
    assert "I-1 Repair café network · submitted" in linked.stdout
