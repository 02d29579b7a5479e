"""GridHealthBridge (dolphin.runtime.health) without a grid: quorum readings are generated."""

from __future__ import annotations

from dolphin.grid.protocol import GridQuorum, QuorumState
from dolphin.runtime.health import GridHealthBridge
from dolphin.survival.clock import ManualClock
from dolphin.survival.config import LayerSpec, SurvivalConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.posture import HIBERNATE

_L1 = LayerSpec(name="L1_grid_quorum", path="dolphin.survival.layers.builtin:GridQuorumLayer")
_L2 = LayerSpec(name="L2_ledger_integrity", path="dolphin.survival.layers.builtin:LedgerIntegrityLayer")


def _q(state: QuorumState, n: int) -> GridQuorum:
    return GridQuorum("hz", state, state is not QuorumState.LOST, n, 2, None)


def _setup(*specs: LayerSpec) -> tuple[SurvivalController, GridHealthBridge, ManualClock]:
    clock = ManualClock(0)
    ctl = SurvivalController(SurvivalConfig(layers=specs or (_L1,)), clock)
    bridge = GridHealthBridge(ctl)
    bridge.update(_q(QuorumState.OK, 2))
    ctl.tick()
    return ctl, bridge, clock


def test_a_grid_only_kill_is_rearmed_when_the_grid_is_back() -> None:
    ctl, bridge, clock = _setup()
    clock.advance_s(1.0)
    bridge.update(_q(QuorumState.LOST, 0))
    assert ctl.killed and ctl.kill_sources == ["L1_grid_quorum"] and bridge.caused_kill
    clock.advance_s(1.0)
    bridge.update(_q(QuorumState.OK, 2))
    assert not ctl.killed and bridge.rearms == 1 and not bridge.caused_kill and ctl.kill_sources == []


def test_an_operator_kill_during_a_grid_kill_survives_the_grid_coming_back() -> None:
    """The operator's kill while the grid kill was latched was only counted (no source, no event),
    and the bridge's rearm on grid recovery cleared it."""
    ctl, bridge, clock = _setup()
    clock.advance_s(1.0)
    bridge.update(_q(QuorumState.LOST, 0))
    clock.advance_s(1.0)
    ctl.kill("operator: manual kill switch", source="operator")
    assert ctl.kill_sources == ["L1_grid_quorum", "operator"]
    kills = ctl.log.of_kind("kill")
    assert [k.subject for k in kills] == ["L1_grid_quorum", "operator"]  # the second kill is visible
    clock.advance_s(1.0)
    bridge.update(_q(QuorumState.OK, 2))
    ctl.tick()
    assert ctl.killed and ctl.posture == HIBERNATE and bridge.rearms == 0
    assert ctl.log.of_kind("rearm") == []
    bridge.update(_q(QuorumState.OK, 2))  # repeated healthy readings change nothing
    assert ctl.killed
    # Only an explicit rearm (the operator's) leaves the latch; the bridge forgets its own kill.
    assert ctl.rearm("operator: all clear")
    bridge.update(_q(QuorumState.OK, 2))
    assert not ctl.killed and not bridge.caused_kill


def test_a_kill_from_another_source_is_never_cleared_by_the_bridge() -> None:
    ctl, bridge, clock = _setup(_L1, _L2)
    ctl.observe("ledger_ok", 1.0)
    clock.advance_s(1.0)
    bridge.update(_q(QuorumState.LOST, 0))
    ctl.kill("scripted", source="scenario")
    clock.advance_s(1.0)
    bridge.update(_q(QuorumState.OK, 2))
    assert ctl.killed and bridge.rearms == 0


def test_a_ledger_fault_raised_during_a_grid_kill_blocks_the_bridges_rearm() -> None:
    """grid lost -> ledger bad -> ledger ok -> grid back: the ledger's violation while the grid kill
    was latched was neither a kill source nor a kill event, so the bridge re-armed over it with no
    trace of the fault (2026-12-06). Also when the ledger's fault is found by a tick (stale)."""
    for fault in ("checksum", "stale"):
        ctl, bridge, clock = _setup(_L1, _L2)
        ctl.observe("ledger_ok", 1.0)
        clock.advance_s(1.0)
        bridge.update(_q(QuorumState.LOST, 0))
        if fault == "checksum":
            clock.advance_s(1.0)
            ctl.observe("ledger_ok", 0.0)
        else:
            clock.advance_s(301.0)  # no ledger verification for over 300 s
            ctl.tick()
        assert ctl.kill_sources == ["L1_grid_quorum", "L2_ledger_integrity"]
        assert [k.subject for k in ctl.log.of_kind("kill")] == ctl.kill_sources
        clock.advance_s(1.0)
        ctl.observe("ledger_ok", 1.0)
        ctl.tick()
        bridge.update(_q(QuorumState.OK, 2))
        assert ctl.killed and ctl.posture == HIBERNATE and bridge.rearms == 0, fault
        assert ctl.rearm("operator: ledger checked") and not ctl.killed
