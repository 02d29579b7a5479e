"""Bridges from component health to the survival controller's sensors.

:class:`GridHealthBridge` feeds the L1 grid-quorum layer from the grid's own quorum signal:
``grid_members`` is the number of members the client sees (0 while the grid is LOST) and
``grid_heartbeat`` is refreshed on every reading that is not LOST. Losing the whole grid is an
invariant violation, so the controller goes to HIBERNATE at once. When that kill was caused by
the grid and the grid is back and resynchronised (no longer LOST), the bridge re-arms the
controller, but only while the grid layer is the kill's only source (``kill_sources``): a kill
from any other source (operator, ledger), also one raised while the grid kill was latched, is
never cleared here.
"""

from __future__ import annotations

from dolphin.grid.protocol import GridQuorum, QuorumState
from dolphin.survival.controller import SurvivalController

__all__ = ["GridHealthBridge"]


class GridHealthBridge:
    """Feed one controller from one grid client's quorum readings."""

    def __init__(self, controller: SurvivalController, *, members_sensor: str = "grid_members",
                 heartbeat_sensor: str = "grid_heartbeat") -> None:  # fmt: skip
        self.controller = controller
        self._members = controller.sensor_index(members_sensor)
        self._heartbeat = controller.sensor_index(heartbeat_sensor)
        # The layers reading the members sensor: the kill sources this bridge may clear.
        self._grid_layers = frozenset(layer.name for layer in controller.layers if self._members in layer.sensor_idx)
        self.caused_kill = False
        self.rearms = 0

    def update(self, quorum: GridQuorum) -> None:
        ctl = self.controller
        lost = quorum.state is QuorumState.LOST
        was_killed = ctl.killed
        ctl.observe_idx(self._members, 0.0 if lost else float(quorum.members_seen))
        if lost:
            if ctl.killed and not was_killed:
                self.caused_kill = True
            return
        ctl.observe_idx(self._heartbeat, 1.0)
        if not ctl.killed:
            self.caused_kill = False  # re-armed elsewhere (an operator): nothing of ours is latched
        elif self.caused_kill and set(ctl.kill_sources) <= self._grid_layers:
            if ctl.rearm(f"grid {quorum.state.value}: reconnected and resynchronised ({quorum.members_seen} member(s))"):
                self.caused_kill = False
                self.rearms += 1
