"""`sif-bot simulate --nodes N`: factories lending each other peers, federation off and on."""

from __future__ import annotations

import argparse

import pytest

from bot.entrypoints.simulate import add_arguments, run
from bot.entrypoints.simulate import network as net
from bot.entrypoints.simulate.network import LACKING, NetConfig, NetRun


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sif-bot simulate")
    add_arguments(parser)
    return parser.parse_args(argv)


def _share(run: NetRun) -> float:
    hits, judged = run.small.within_48h()
    assert judged > 0
    return hits / judged


async def test_lending_peers_across_factories_raises_the_small_factorys_acceptance(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs: list[NetRun] = []
    simulate_network = net.simulate_network

    async def recording(config: NetConfig, after: int) -> NetRun:
        made = await simulate_network(config, after)
        runs.append(made)
        return made

    monkeypatch.setattr(net, "simulate_network", recording)
    args = _args("--nodes", "3", "--members", "40", "--weeks", "2", "--seed", "1")
    assert await run(args) == 0
    printed = capsys.readouterr().out
    off, on = runs
    assert (off.federate_after, on.federate_after) == (0, 1)
    assert [n.name for n in on.nodes] == ["node-1", "node-2", "node-3"]
    assert [n.members for n in on.nodes] == [8, 40, 40]
    assert on.small.lacking == LACKING  # nobody in the small factory holds them
    # The same members ask in both runs; with federation on more are taken within 48 h,
    # some by a partner's peer, and nothing crosses with it off.
    assert _share(on) > _share(off)
    assert on.small.sent > 0 and on.small.reviewed_by_partners > 0
    assert all(n.sent == n.hosted == n.accepted_by_partners == 0 for n in off.nodes)
    assert off.small.by_experts(LACKING)[0] == 0  # nobody there could
    assert on.small.reviewed_by_partners <= on.small.accepted_by_partners <= on.small.sent
    for made in (off, on):
        assert made.sound
        for node in made.nodes:
            assert node.invariant_problems == ()
            assert node.errors == 0 and node.refused_messages == 0
    assert all(v == 0 for n in off.nodes for _, v in n.mirrors)
    # Between each pair the mirror accounts are equal and opposite once what is held is
    # paid, and both nodes' chains of committed transfers agree.
    assert len(on.pairs) == 3
    for pair in on.pairs:
        assert pair.a_mirror + pair.b_mirror + pair.held == 0
        assert pair.chain_difference is None
    assert sum(p.transfers for p in on.pairs) > 0
    assert any(p.a_mirror != 0 for p in on.pairs)
    # hosted on one side is sent by the other
    assert sum(n.sent for n in on.nodes) == sum(n.hosted for n in on.nodes)

    assert printed.startswith("sif-bot network simulation: 3 factories, 2 weeks, seed 1")
    assert "nobody holds finance or legal" in printed
    assert "A: federation off (SIF_FEDERATE_AFTER_ROUNDS=0)" in printed
    assert "B: federation on (=1): a request nobody took in 1 local round" in printed
    small = printed.split("The small factory", 1)[1]
    assert "accepted within 48 h (%)" in small and "reviewed by a partner's peer" in small
    assert "ledgers: sound on every node, both runs" in printed
    assert "sif-simulate-" not in printed and "/tmp" not in printed


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("--nodes", "0"), "--nodes must be between 1 and 10"),
        (("--nodes", "11"), "--nodes must be between 1 and 10"),
        (("--nodes", "3", "--compare", "fanout=2"), "--nodes compares federation off and on"),
        (("--nodes", "3", "--compare-affinity"), "--nodes compares federation off and on"),
        (("--nodes", "3", "--set", "node_name=x"), "sets node_name itself"),
        (("--nodes", "3", "--set", "federate_after_rounds=0"), "federation on: 1 or more"),
        (("--nodes", "3", "--set", "fanout=0"), "SIF_FANOUT"),
        (("--nodes", "3", "--members", "2"), "--members must be between"),
    ],
)
async def test_a_network_that_cannot_run_stops_before_simulating(
    argv: tuple[str, ...], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(_args(*argv)) == 2
    assert error in capsys.readouterr().err


def test_the_small_factory_is_a_fifth_and_the_federation_setting_is_the_on_run() -> None:
    config = NetConfig(members=300, nodes=4, overrides=(("federate_after_rounds", "2"),))
    assert [config.size(i) for i in range(4)] == [60, 300, 300, 300]
    assert config.names == ("node-1", "node-2", "node-3", "node-4")
    assert config.federate_after == 2 and config.rules == () and config.label == "nothing"
    assert NetConfig(members=12).size(0) == 5
    assert NetConfig(overrides=(("fanout", "2"),)).federate_after == 1
