"""`sif-bot simulate`: try a factory's rules on a synthetic community before living with them.

The simulator builds a community of synthetic members in a temporary SQLite database
(through :func:`bot.bootstrap.build`, exactly as the command line does) and drives the
*real* core through the weeks: every member action is a line of text given to
:meth:`bot.app.service.Bot.handle` on the console platform, and the scheduler's sweeps
(:func:`bot.app.jobs.sweep_offers`, :func:`bot.app.jobs.sweep_conversations`) run on a
:class:`ManualClock` the simulator moves. Members only learn what the bot tells them:
a recording messenger on the console platform receives every message, and each
synthetic member reacts to the ones addressed to them (an offer, a reminder, a
delivered review) according to their profile. Figures are read back from the
database at the end, plus one snapshot of the balances per simulated day.

The community (shares of ``--members``, plus one staff member, who never opts in to
reviewing and so is never offered a review):

==================  =====  =======================================================
archetype           share  behaviour
==================  =====  =======================================================
peer                40 %   1-3 expertise tags, answers offers, accepts 55-90 %
innovator-peer      20 %   an idea and 1-2 tags; asks every 3-6 weeks, accepts 40-80 %
innovator           22 %   an idea, no expertise; asks every 2-5 weeks; never opts in
                           as a peer, so is never offered a review
taker                8 %   an idea; asks every 10-21 days, never opts in as a peer,
                           thanks only 30 % of reviews
ghost               10 %   signed up with 1-2 tags, never answers anything
==================  =====  =======================================================

The report names them in plain words (report.KIND_NAMES): takers are "members who only
ask", ghosts "members who never answer".

Everyone joins during the first week. Peers opt in as real ones do (SPEC §1): one in ten
types the `profile` conversation, the others `expertise add` (and `availability` when they
take other than two reviews at once); only they are ever offered a review. One innovator
in ten types the whole
intake conversation, and a quarter of those stop halfway until the bot's reminder (or
for good); the other ideas are stored directly with the same answers, to keep a
500-member run within minutes. Answers to offers come after a delay drawn per member
(median 5 h, some members much slower); the bot's reminder brings half of those who
had not answered yet to answer soon; nobody acts between 22:00 and 08:00. Reviews are
delivered 1-5 days after accepting and thanked (or paid automatically) a day or so
later. A request nobody accepted within a week is cancelled by its requester. Staff
look at escalations every morning at 10:00 and `assign` each (at most twice) to the
matching peer who is not busy and has delivered before. Expertise is supplied and demanded
unevenly: many peers know marketing, communication and technology; innovators most
often ask for business-model, finance and fundraising.

Every member has a topic (community.TOPICS: repair and reuse, food and urban farming,
elderly care, energy and housing, mobility, education and youth, newcomers and
inclusion), drawn evenly and independently of their tags: an innovator's idea (title,
summary, need, impact, uncertainties) and a peer's bio are written from its words and a
few common ones. Peers who type the profile conversation type their bio there; the others'
is stored as it would save it. The report counts the delivered reviews done by a peer of
the idea's topic: what text affinity in routing (SIF_AFFINITY) should raise above
chance; ``--compare-affinity`` runs the same seed without it and with it.

The sweeps run on the hour, in every hour in which something falls due (an offer's
reminder or expiry, an auto-release, a conversation's reminder or expiry: the
simulator knows each from what the bot said), and at midnight for anything else.

Everything random comes from one ``random.Random(seed)``: it draws the community, and
gives each member their own generator for their later choices, so two runs with the
same seed but different rules (``--compare``) face the same people making the same
decisions as far as the rules let them. There is no wall-clock time and no iteration
over sets, so the same seed and settings give the same report.

``--nodes N`` (2 or more) simulates a network of factories instead
(:mod:`bot.entrypoints.simulate.network`): a small factory without finance or legal
experts and N-1 regular ones, each a real core on its own database, wired to each other
in-process, on one clock; it runs federation off, then on, with the same seed, and
prints what lending peers across factories did to the small factory's acceptance,
with every node's ledger checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.entrypoints.simulate.charts import write_charts
from bot.entrypoints.simulate.driver import _Simulation as _Simulation  # patched in tests
from bot.entrypoints.simulate.driver import simulate
from bot.entrypoints.simulate.report import (
    DaySnapshot,
    SimConfig,
    SimReport,
    TagRow,
    circulation,
    compare_text,
    gini,
)
from bot.entrypoints.simulate.rules import _settings, parse_overrides, setting_names

__all__ = [
    "DaySnapshot",
    "SimConfig",
    "SimReport",
    "TagRow",
    "add_arguments",
    "circulation",
    "compare_text",
    "gini",
    "parse_overrides",
    "run",
    "setting_names",
    "simulate",
    "write_charts",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sif-bot simulate`."""
    parser.add_argument("--members", type=int, default=500, help="community size (default 500)")
    parser.add_argument("--weeks", type=int, default=12, help="weeks to simulate (default 12)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a rule setting without the sif_ prefix, e.g. offer_ttl_hours=12 (repeatable)",
    )
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument(
        "--compare",
        nargs="+",
        default=None,
        metavar="KEY=VALUE",
        help="also run with these settings on top, same seed, and print the differences",
    )
    compare.add_argument(
        "--compare-affinity",
        action="store_true",
        help="run twice with the same seed, text affinity off (A) then on (B), and print "
        "the differences (the same as --set affinity=false --compare affinity=true)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write PNG charts to DIR")
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="N",
        help="simulate N factories (2 or more) that lend each other peers: a small one "
        "(a fifth of --members) lacking finance and legal experts and N-1 of --members; "
        "runs federation off then on, same seed, and prints the differences (default 1)",
    )


async def run(args: argparse.Namespace) -> int:
    """`sif-bot simulate`: print the report (or two and their differences); charts to --out."""
    from bot.settings import SettingsError

    if args.nodes != 1:
        return await _run_network(args)
    try:
        if not 5 <= args.members <= 20_000:
            raise ValueError("--members must be between 5 and 20000")
        if not 1 <= args.weeks <= 104:
            raise ValueError("--weeks must be between 1 and 104")
        base = parse_overrides(args.overrides)
        compare = args.compare
        if args.compare_affinity:  # A without text affinity, B with it
            base = parse_overrides([*args.overrides, "affinity=false"])
            compare = ["affinity=true"]
        configs = [SimConfig(args.members, args.weeks, args.seed, base, sys.stderr)]
        if compare is not None:
            merged = dict(base)
            merged.update(parse_overrides(compare))
            configs.append(
                SimConfig(args.members, args.weeks, args.seed, tuple(merged.items()), sys.stderr)
            )
        for config in configs:  # a bad value stops before minutes of simulation
            _settings("sqlite+aiosqlite:///:memory:", config.overrides)
    except (ValueError, SettingsError) as exc:
        print(f"sif-bot simulate: {exc}", file=sys.stderr)
        return 2
    reports = []
    for config in configs:
        print(f"simulate: running {config.label} ...", file=sys.stderr, flush=True)
        reports.append(await simulate(config))
    if len(reports) == 1:
        print(reports[0].text())
    else:
        for name, report in zip("AB", reports, strict=True):
            print(f"== {name} ==\n{report.text()}\n")
        print(compare_text(reports[0], reports[1]))
    if args.out is not None:
        for path in write_charts(reports, args.out):
            print(f"chart: {path}", file=sys.stderr)
    return 0


async def _run_network(args: argparse.Namespace) -> int:
    """`sif-bot simulate --nodes N`: the network with federation off, then on."""
    from bot.entrypoints.simulate.network import NetConfig, check, network_text, simulate_network
    from bot.settings import SettingsError

    try:
        if args.compare is not None or args.compare_affinity or args.out is not None:
            raise ValueError(
                "--nodes compares federation off and on itself; --compare, "
                "--compare-affinity and --out work with one node"
            )
        if not 5 <= args.members <= 20_000:
            raise ValueError("--members must be between 5 and 20000")
        if not 1 <= args.weeks <= 104:
            raise ValueError("--weeks must be between 1 and 104")
        overrides = parse_overrides(args.overrides)
        config = NetConfig(args.members, args.weeks, args.seed, args.nodes, overrides, sys.stderr)
        check(config)
    except (ValueError, SettingsError) as exc:
        print(f"sif-bot simulate: {exc}", file=sys.stderr)
        return 2
    runs = []
    for after in (0, config.federate_after):
        state = "on" if after else "off"
        print(f"simulate: {args.nodes} nodes, federation {state} ...", file=sys.stderr, flush=True)
        runs.append(await simulate_network(config, after))
    print(network_text(runs[0], runs[1]))
    return 0
