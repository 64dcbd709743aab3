"""`sif-bot simulate --nodes N`: what lending peers across factories (SPEC §12) does for a
small factory that lacks some experts.

Node 1 is a small factory (a fifth of ``--members``) where no member holds the tags in
:data:`LACKING` (its innovators still ask for them, as often as anywhere); nodes 2..N are
regular factories of ``--members`` each. Members behave as in a single-node run but for
one thing: a peer offered a request needing none of their tags accepts it less often
(:data:`OUTSIDE_EXPERTISE`), so that missing experts matter.

Every node is a real core on its own SQLite database (:func:`bot.bootstrap.build`), with
its own key and partners file, and its own synthetic community driven as in a single-node
run (:mod:`.driver`): all nodes share one simulated clock and one event queue, and after
every action each node's members read what their bot said, since an action on one node
can make another node's bot speak (an offer for a request sent over, a delivered review
coming back).

The nodes are wired in-process: each node's messenger for the platform ``federation``
seals a message with its key and hands the bytes to the partner's door code
(:meth:`bot.app.federation.Federation.receive`), as `tests/service/test_network.py`
does; a refusal fails the send and the outbox tries again later. Partners' urls are
never used. Each node lists every other node as a partner, with a limit of
:data:`LIMIT_SIF` and the tags that partner's peers hold.

The same network runs twice with the same seed, so the same members make the same
choices as far as the rules let them: federation off (``SIF_FEDERATE_AFTER_ROUNDS=0``
on every node) and on (``=1``, or ``--set federate_after_rounds=N``): a request nobody
took in the first local round goes to the partner holding most of its tags (from any
node: the regular factories send theirs too, and the small one hosts some). The report
sets the small factory's figures side by side (requests, accepted within 48 h,
escalated, reviewed by a partner's peer), every node's, and checks the ledgers: every
node's invariants, and between each pair the mirror accounts (each node's member for
the other, identity platform ``federation``) equal and opposite once the reviews still
held in escrow are settled, and the hash chains of their committed transfers equal.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.federation import PLATFORM as FEDERATION
from bot.app.network import local_chain
from bot.domain.federation import first_difference, new_key
from bot.domain.ids import MemberId
from bot.domain.ledger import AccountKey, format_sif
from bot.domain.records import RequestStatus
from bot.entrypoints.simulate.community import SIM_START, _community, _Member
from bot.entrypoints.simulate.driver import _Events, _open, _Simulation
from bot.entrypoints.simulate.report import TOO_FEW_REQUESTS, SimConfig
from bot.entrypoints.simulate.rules import _settings
from bot.i18n import plural
from bot.messages import Outbound
from bot.ports import ManualClock

if TYPE_CHECKING:
    from bot.bootstrap import App
    from bot.settings import Settings

LACKING = ("finance", "legal")  # no member of the small factory holds these
SMALL_SHARE = 5  # the small factory has a fifth of --members
LIMIT_SIF = 100  # how far each partner's mirror account may go below zero
MAX_NODES = 10
AFTER = "federate_after_rounds"
# Settings the network sets itself on every node.
NODE_SETTINGS = frozenset({"node_name", "node_url", "node_key_file", "partners_file"})
HELD = frozenset({RequestStatus.ASSIGNED, RequestStatus.DELIVERED, RequestStatus.DISPUTED})
RETRY = timedelta(hours=1)  # a refused message is tried again this much later
# A peer offered a request that needs none of their tags accepts it at this share of
# their usual chance ("not my field"). A single-node run leaves tags out of the choice;
# without this, a factory lacking experts would hardly notice, since its other peers
# would take such a request as readily as any other.
OUTSIDE_EXPERTISE = 0.3


@dataclass(frozen=True)
class NetConfig:
    members: int = 300  # of each regular factory; the small one has a fifth
    weeks: int = 8
    seed: int = 1
    nodes: int = 3
    # Settings without the sif_ prefix for every node (`--set`); federate_after_rounds
    # is the value of the run with federation on.
    overrides: tuple[tuple[str, str], ...] = ()
    progress: TextIO | None = field(default=None, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"node-{i}" for i in range(1, self.nodes + 1))

    def size(self, index: int) -> int:
        """Members of node ``index`` (0: the small factory)."""
        return max(5, round(self.members / SMALL_SHARE)) if index == 0 else self.members

    @property
    def federate_after(self) -> int:
        """Local rounds before a request goes to a partner, with federation on."""
        return int(dict(self.overrides).get(AFTER, "1"))

    @property
    def rules(self) -> tuple[tuple[str, str], ...]:
        """The overrides every node runs under, the federation setting aside."""
        return tuple((k, v) for k, v in self.overrides if k != AFTER)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.rules) or "nothing"


def check(config: NetConfig) -> None:
    """Refuse a network the simulation cannot run, before minutes of simulation."""
    if not 2 <= config.nodes <= MAX_NODES:
        raise ValueError(f"--nodes must be between 1 and {MAX_NODES}")
    reserved = sorted(NODE_SETTINGS & {k for k, _ in config.overrides})
    if reserved:
        raise ValueError(f"with --nodes the simulation sets {', '.join(reserved)} itself")
    try:
        after = config.federate_after
    except ValueError:
        after = 0
    if after < 1:
        raise ValueError(
            "with --nodes, federate_after_rounds is the run with federation on: 1 or more"
        )
    _settings(
        "sqlite+aiosqlite:///:memory:", config.rules, sif_federate_after_rounds=after
    )  # a bad value raises SettingsError


# -- the figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFigures:
    """One node at the end of a run. "Its requests" are its own members'; "hosted" are
    the partners' requests it offered to its peers."""

    name: str
    members: int
    experts: int  # members with expertise
    lacking: tuple[str, ...]
    requests: int
    # Its requests opened at least 48 h before the end: hours to accept (None: never) and
    # the tags needed.
    judged: tuple[tuple[float | None, tuple[str, ...]], ...]
    escalated: int
    sent: int  # its requests sent to a partner
    accepted_by_partners: int  # its requests a partner's peer accepted
    reviewed_by_partners: int  # ... and delivered
    hosted: int
    hosted_accepted: int
    hosted_reviewed: int
    # Its delivered requests: the tags needed, and those of them the reviewer holds.
    reviews: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    limit_refusals: int  # accepts refused: the requester's factory was at its limit here
    # requests its members could not make: at their credit limit, or the idea has an open
    # or accepted request of that kind
    refused_credit: int
    refused_duplicate: int
    errors: int  # 'something went wrong' answers
    refused_messages: int  # messages from this node its partners refused
    invariant_problems: tuple[str, ...]
    mirrors: tuple[tuple[str, int], ...]  # (partner, balance of its mirror account here)
    held: tuple[tuple[str, int], ...]  # (partner, SIF held here for its requests)

    def within_48h(self, needing: Collection[str] = ()) -> tuple[int, int]:
        """(accepted within 48 h, judged) of its requests, or of those needing a tag of
        ``needing``."""
        rows = [h for h, tags in self.judged if not needing or set(tags) & set(needing)]
        return sum(1 for h in rows if h is not None and h <= 48), len(rows)

    def by_experts(self, needing: Collection[str]) -> tuple[int, int]:
        """(reviewed by a peer holding such a tag, reviewed) of its requests needing a tag
        of ``needing``."""
        rows = [set(held) & set(needing) for tags, held in self.reviews if set(tags) & set(needing)]
        return sum(1 for row in rows if row), len(rows)

    def never(self) -> tuple[int, int]:
        return sum(1 for h, _ in self.judged if h is None), len(self.judged)

    def mirror(self, partner: str) -> int:
        return dict(self.mirrors).get(partner, 0)


@dataclass(frozen=True)
class PairCheck:
    """Two nodes' ledgers against each other."""

    a: str
    b: str
    a_mirror: int  # b's mirror account on a
    b_mirror: int  # a's mirror account on b
    held: int  # held in escrow on either for the other's accepted requests
    transfers: int  # committed transfers between them
    chain_difference: str | None  # where the chains of committed transfers part

    @property
    def opposite(self) -> bool:
        """Equal and opposite once what is held is settled (the host's mirror is
        debited when its peer accepts, the origin's credited when it pays)."""
        return self.a_mirror + self.b_mirror + self.held == 0


@dataclass(frozen=True)
class NetRun:
    config: NetConfig
    federate_after: int
    nodes: tuple[NodeFigures, ...]
    pairs: tuple[PairCheck, ...]

    @property
    def small(self) -> NodeFigures:
        return self.nodes[0]

    @property
    def sound(self) -> bool:
        return all(not n.invariant_problems for n in self.nodes) and all(
            p.opposite and p.chain_difference is None for p in self.pairs
        )


# -- the simulation ------------------------------------------------------------------------


class _Node(_Simulation):
    """A node's community: a single-node simulation in which a peer accepts an offer
    outside their expertise less often (:data:`OUTSIDE_EXPERTISE`), and which counts
    the accepts refused because the requester's factory reached its limit here."""

    name = ""
    lacking: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tags_of: dict[int, tuple[str, ...]] = {}  # request number -> its tags

    def on_message(self, member: _Member, message: Outbound) -> None:
        if message.topic == "limit-exceeded":
            self.bump("limit refusals")
        elif message.topic == "duplicate-request":
            self.bump("duplicates")
        super().on_message(member, message)

    async def accept_chance(self, member: _Member, number: int) -> float:
        tags = self.tags_of.get(number)
        if tags is None:  # a partner's request too: read it here
            async with self.app.bot.uow_factory() as uow:
                found = await uow.requests.by_number(self.cid, number)
            tags = self.tags_of[number] = found.tags if found is not None else ()
        if tags and not set(tags) & set(member.expertise):
            return member.accept * OUTSIDE_EXPERTISE
        return member.accept


class _Wire:
    """A node's messenger for ``federation``: seals each message and hands it to the
    partner's door code; a refusal fails the send (the outbox keeps it), as over HTTP."""

    platform = FEDERATION

    def __init__(self, sender: App, apps: Mapping[str, App], refused: Callable[[], None]) -> None:
        self.sender = sender
        self.apps = apps
        self.refused = refused
        self.refusals = 0

    async def send(self, message: Outbound) -> None:
        assert self.sender.federation is not None
        _inbox, data = self.sender.federation.seal(message)
        receiver = self.apps[message.to].federation
        assert receiver is not None
        answer = await receiver.receive(data)
        if answer.status != 200:
            self.refusals += 1
            self.refused()
            raise ConnectionError(f"{message.to} refused {message.topic}: {answer.body}")


def _seed(config: NetConfig, name: str) -> str:
    """Each node's community is drawn from its own generator, the same in both runs."""
    return f"{config.seed}:{name}"


def _partners_toml(
    names: Sequence[str],
    me: str,
    keys: Mapping[str, tuple[str, str]],
    tags: Mapping[str, list[str]],
) -> str:
    entries = []
    for name in names:
        if name == me:
            continue
        listed = ", ".join(f'"{t}"' for t in tags[name])
        entries.append(
            f'[[partner]]\nname = "{name}"\nurl = "http://{name}.invalid"\n'
            f'public_key = "{keys[name][1]}"\nlimit = {LIMIT_SIF}\ntags = [{listed}]\n'
        )
    return "\n".join(entries)


async def simulate_network(config: NetConfig, federate_after: int) -> NetRun:
    """Run the network once, every node with ``SIF_FEDERATE_AFTER_ROUNDS=federate_after``,
    on fresh temporary databases, and measure it."""
    from bot.bootstrap import build

    names = config.names
    lacking = {name: LACKING if i == 0 else () for i, name in enumerate(names)}
    with tempfile.TemporaryDirectory(prefix="sif-simulate-") as tmp:
        root = Path(tmp)
        tags_known = _settings("sqlite+aiosqlite:///:memory:", config.rules).sif_tags
        # What each node's peers hold, for its partners' files: the community the node
        # will draw, drawn ahead from a generator seeded alike.
        held_tags = {
            name: sorted(
                {
                    tag
                    for m in _community(
                        random.Random(_seed(config, name)),
                        config.size(i),
                        tags_known,
                        lacking[name],
                    )
                    for tag in m.expertise
                }
            )
            for i, name in enumerate(names)
        }
        keys = {name: new_key() for name in names}
        settings: dict[str, Settings] = {}
        for name in names:
            (root / f"{name}.key").write_text(keys[name][0] + "\n", encoding="utf-8")
            (root / f"{name}.toml").write_text(
                _partners_toml(names, name, keys, held_tags), encoding="utf-8"
            )
            settings[name] = _settings(
                f"sqlite+aiosqlite:///{root / name}.db",
                config.rules,
                sif_node_name=name,
                sif_node_key_file=root / f"{name}.key",
                sif_partners_file=root / f"{name}.toml",
                sif_federate_after_rounds=federate_after,
            )
        clock = ManualClock(SIM_START)
        events = _Events()
        apps: dict[str, App] = {}
        try:
            for name in names:
                apps[name] = await build(settings[name], clock)
            sims: list[_Node] = []
            for i, name in enumerate(names):
                inbox, cid = await _open(apps[name])
                node_config = SimConfig(
                    config.size(i), config.weeks, config.seed, config.rules, config.progress
                )
                sim = _Node(
                    node_config,
                    apps[name],
                    clock,
                    inbox,
                    cid,
                    events=events,
                    rng=random.Random(_seed(config, name)),
                    lacking=lacking[name],
                    label=f"{name}: ",
                )
                sim.name, sim.lacking = name, lacking[name]
                sims.append(sim)
            retrying: set[str] = set()

            async def retry(sim: _Node) -> None:
                retrying.discard(sim.name)
                await sim.app.relay.flush()
                sim.read_messages()

            def refused(sim: _Node) -> None:
                if sim.name not in retrying:
                    retrying.add(sim.name)
                    events.push(clock.now() + RETRY, partial(retry, sim))

            wires: dict[str, _Wire] = {}
            for sim in sims:
                wires[sim.name] = _Wire(sim.app, apps, partial(refused, sim))
                sim.app.relay.register(wires[sim.name])
                sim.nodes = list(sims)
            for sim in sims:
                sim.start()
            await events.run(clock, sims[0].end)
            experts: dict[str, tuple[str, ...]] = {}  # xid -> needed tags its reviewer held
            for sim in sims:
                experts.update(await _hosted_by_experts(sim))
            nodes = tuple(
                [await _figures(sim, names, wires[sim.name].refusals, experts) for sim in sims]
            )
            pairs = tuple(
                [
                    await _pair(apps, nodes, a, b)
                    for i, a in enumerate(names)
                    for b in names[i + 1 :]
                ]
            )
            return NetRun(config, federate_after, nodes, pairs)
        finally:
            for app in apps.values():
                await app.close()


def _expert(sim: _Node, peer_name: str | None, tags: Sequence[str]) -> tuple[str, ...]:
    """Those of ``tags`` the node's member ``peer_name`` holds."""
    peer = sim.by_name.get(peer_name or "")
    return tuple(t for t in tags if peer is not None and t in peer.expertise)


async def _hosted_by_experts(sim: _Node) -> dict[str, tuple[str, ...]]:
    """The partners' requests a peer here reviewed, by network id: the tags they needed
    that their reviewer holds."""
    async with sim.app.bot.uow_factory() as uow:
        hosted = {c.request: c.xid for c in await uow.cross.all(sim.cid) if c.role == "host"}
        requests = await uow.requests.all(sim.cid)
    return {
        hosted[r.id]: _expert(sim, r.peer_name, r.tags)
        for r in requests
        if r.id in hosted and r.delivered_at is not None
    }


async def _figures(
    sim: _Node, names: Sequence[str], refusals: int, experts: Mapping[str, tuple[str, ...]]
) -> NodeFigures:
    partners = [n for n in names if n != sim.name]
    judged_before = sim.end - timedelta(hours=48)
    async with sim.app.bot.uow_factory() as uow:
        requests = await uow.requests.all(sim.cid)
        crossed = {c.request for c in await uow.cross.all(sim.cid)}
        problems = await uow.ledger.check_invariants(sim.cid)
        mirror_of: dict[MemberId, str] = {}
        balances: dict[str, int] = {}
        for partner in partners:
            member = await uow.members.by_identity(FEDERATION, partner)
            balances[partner] = 0
            if member is not None:
                mirror_of[member.id] = partner
                balances[partner] = await uow.ledger.balance(sim.cid, AccountKey.of(member.id))
    own = [r for r in requests if r.requester not in mirror_of]
    hosted = [r for r in requests if r.requester in mirror_of]
    by_partners = [r for r in own if r.peer in mirror_of]
    judged = tuple(
        (
            (r.accepted_at - r.created_at).total_seconds() / 3600 if r.accepted_at else None,
            r.tags,
        )
        for r in own
        if r.created_at <= judged_before
    )
    held = {p: 0 for p in partners}
    for r in hosted:
        if r.status in HELD:
            held[mirror_of[r.requester]] += r.price
    return NodeFigures(
        name=sim.name,
        members=len(sim.members),
        experts=sum(1 for m in sim.members if m.expertise),
        lacking=sim.lacking,
        requests=len(own),
        judged=judged,
        escalated=sum(1 for r in own if r.escalated_at is not None),
        sent=sum(1 for r in own if r.id in crossed),
        accepted_by_partners=len(by_partners),
        reviewed_by_partners=sum(1 for r in by_partners if r.delivered_at is not None),
        hosted=len(hosted),
        hosted_accepted=sum(1 for r in hosted if r.accepted_at is not None),
        hosted_reviewed=sum(1 for r in hosted if r.delivered_at is not None),
        reviews=tuple(
            (
                r.tags,
                experts.get(f"{sim.name}:{r.ref}", ())
                if r.peer in mirror_of
                else _expert(sim, r.peer_name, r.tags),
            )
            for r in own
            if r.delivered_at is not None
        ),
        limit_refusals=sim.counts.get("limit refusals", 0),
        refused_credit=sim.counts.get("refused", 0),
        refused_duplicate=sim.counts.get("duplicates", 0),
        errors=sim.counts.get("errors", 0),
        refused_messages=refusals,
        invariant_problems=tuple(problems),
        mirrors=tuple((p, balances[p]) for p in partners),
        held=tuple((p, held[p]) for p in partners),
    )


async def _pair(apps: Mapping[str, App], nodes: Sequence[NodeFigures], a: str, b: str) -> PairCheck:
    found = {n.name: n for n in nodes}
    federation_a, federation_b = apps[a].federation, apps[b].federation
    assert federation_a is not None and federation_b is not None
    mine = await local_chain(federation_a, b)
    theirs = await local_chain(federation_b, a)
    return PairCheck(
        a=a,
        b=b,
        a_mirror=found[a].mirror(b),
        b_mirror=found[b].mirror(a),
        held=dict(found[a].held).get(b, 0) + dict(found[b].held).get(a, 0),
        transfers=len(mine),
        chain_difference=first_difference(mine, theirs),
    )


# -- the report ------------------------------------------------------------------------------


def _share(hits: int, of: int) -> float:
    return 100 * hits / of if of else math.nan


def _value(value: float, fmt: str) -> str:
    return "-" if math.isnan(value) else fmt.format(value)


def _diff(value: float, fmt: str) -> str:
    if math.isnan(value):
        return "-"
    shown = fmt.format(value)
    return shown if shown.startswith("-") else "+" + shown


def _signed(hundredths: int) -> str:
    shown = format_sif(hundredths)
    return shown if hundredths <= 0 else "+" + shown


def small_figures(node: NodeFigures) -> list[tuple[str, float, str]]:
    """The small factory's headline figures (name, value, format)."""
    within, judged = node.within_48h()
    never, _ = node.never()
    experts, reviewed = node.by_experts(LACKING)
    needing = " or ".join(LACKING)
    return [
        ("requests", node.requests, "{:.0f}"),
        ("accepted within 48 h (%)", _share(within, judged), "{:.1f}"),
        ("never accepted (%)", _share(never, judged), "{:.1f}"),
        ("refused: at the credit limit", node.refused_credit, "{:.0f}"),
        ("refused: one of that kind already open", node.refused_duplicate, "{:.0f}"),
        (
            f"needing {needing}: accepted within 48 h (%)",
            _share(*node.within_48h(LACKING)),
            "{:.1f}",
        ),
        (
            f"needing {needing}: reviewed by a peer holding it (%)",
            _share(experts, reviewed),
            "{:.1f}",
        ),
        ("escalated requests", node.escalated, "{:.0f}"),
        ("sent to a partner factory", node.sent, "{:.0f}"),
        ("accepted by a partner's peer", node.accepted_by_partners, "{:.0f}"),
        ("reviewed by a partner's peer", node.reviewed_by_partners, "{:.0f}"),
        ("partners' requests offered to its peers", node.hosted, "{:.0f}"),
    ]


def network_text(off: NetRun, on: NetRun) -> str:
    """Federation off and on side by side: the small factory, every node, the ledgers."""
    c = on.config
    small = on.small
    _, judged = small.within_48h()
    figures = list(zip(small_figures(off.small), small_figures(on.small), strict=True))
    width = max(len(name) for (name, _, _), _ in figures) + 2
    lines = [
        f"sif-bot network simulation: {plural(c.nodes, 'factory', 'factories')}, "
        f"{c.weeks} weeks, seed {c.seed}",
        f"  {small.name}: the small factory, {small.members} members ({small.experts} with "
        f"expertise); nobody holds {' or '.join(small.lacking) or '-'}",
    ]
    for node in on.nodes[1:]:
        lines.append(f"  {node.name}: {node.members} members ({node.experts} with expertise)")
    lines += [
        f"  each node lists the others as partners: limit {format_sif(LIMIT_SIF * 100)}, "
        "tags what their peers hold",
        f"  rules changed from the defaults on every node: {c.label}",
        "  A: federation off (SIF_FEDERATE_AFTER_ROUNDS=0)",
        f"  B: federation on (={on.federate_after}): a request nobody took in "
        f"{plural(on.federate_after, 'local round', grouping=False)} goes to the partner",
        "     holding most of its tags",
        "  both with the same seed and members; a peer accepts an offer needing none of their",
        f"  tags at {OUTSIDE_EXPERTISE:.0%} of their usual chance",
        "",
        f"The small factory ({small.name}; acceptance of its "
        f"{plural(judged, 'request', grouping=False)} opened at least 48 h before the end"
        + (", too few to judge)" if judged < TOO_FEW_REQUESTS else ")"),
        f"  {'figure':<{width}}{'A: off':>10}{'B: on':>10}{'B - A':>10}",
    ]
    for (name, x, fmt), (_, y, _) in figures:
        lines.append(
            f"  {name:<{width}}{_value(x, fmt):>10}{_value(y, fmt):>10}{_diff(y - x, fmt):>10}"
        )
    lines += [
        "",
        "Every factory (A: off / B: on)",
        f"  {'node':<8}{'requests':>12}{'within 48 h':>18}{'escalated':>12}{'sent':>10}"
        f"{'reviewed by partners':>22}{'hosted':>10}{'hosted reviewed':>17}",
    ]
    for a, b in zip(off.nodes, on.nodes, strict=True):
        within = " / ".join(_value(_share(*n.within_48h()), "{:.1f}%") for n in (a, b))
        cells = [
            (f"{a.requests} / {b.requests}", 12),
            (within, 18),
            (f"{a.escalated} / {b.escalated}", 12),
            (f"{a.sent} / {b.sent}", 10),
            (f"{a.reviewed_by_partners} / {b.reviewed_by_partners}", 22),
            (f"{a.hosted} / {b.hosted}", 10),
            (f"{a.hosted_reviewed} / {b.hosted_reviewed}", 17),
        ]
        lines.append(f"  {a.name:<8}" + "".join(f"{v:>{w}}" for v, w in cells))
    refusals = sum(n.limit_refusals for n in on.nodes)
    refused = sum(n.refused_messages for n in (*off.nodes, *on.nodes))
    errors = sum(n.errors for n in (*off.nodes, *on.nodes))
    lines.append(
        f"  accepts refused at a partner's limit (B) {refusals}; federation messages "
        f"refused {refused}; 'something went wrong' answers {errors}"
    )
    lines += ["", "Ledgers"]
    for label, run in (("A", off), ("B", on)):
        for node in run.nodes:
            mirrors = ", ".join(f"{p} {_signed(v)}" for p, v in node.mirrors)
            state = "; ".join(node.invariant_problems) or "sound"
            lines.append(f"  {label} {node.name}: invariants {state}; mirror accounts {mirrors}")
    lines.append("  mirror accounts between each pair (B), equal and opposite once what is held")
    lines.append("  in escrow for accepted reviews is paid; chains of committed transfers:")
    for pair in on.pairs:
        chain = "agree" if pair.chain_difference is None else f"DIFFER ({pair.chain_difference})"
        lines.append(
            f"    {pair.a} / {pair.b}: {_signed(pair.a_mirror)} / {_signed(pair.b_mirror)}, "
            f"held {format_sif(pair.held)}: {'opposite' if pair.opposite else 'NOT OPPOSITE'}; "
            f"{plural(pair.transfers, 'transfer', grouping=False)}, chains {chain}"
        )
    lines.append(
        "  ledgers: "
        + ("sound on every node, both runs" if off.sound and on.sound else "PROBLEMS, see above")
    )
    return "\n".join(lines)
