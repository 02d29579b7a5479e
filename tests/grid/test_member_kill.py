"""Failure behaviour on a real 2-member Hazelcast cluster (its own ports and cluster name).

- backup count 1: SIGKILL of one member loses no entry, the client keeps working, and the
  quorum signal says DEGRADED (1 of 2 members);
- SIGKILL of the last member: the quorum signal says LOST (the survival controller maps
  this invariant violation to HIBERNATE);
- a member comes back (empty): the client reconnects, finds the cluster's data lost, re-publishes
  its own writes (resync), and only then does the signal leave LOST; the data is there again.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from dolphin.grid.hazelcast_backend import HazelcastGrid
from dolphin.grid.member import MemberSpec, kill_member, start_member, stop_member
from dolphin.grid.protocol import FEATURES_MAP, HEALTH_MAP, QuorumState
from dolphin.grid.records import FeatureRecord, HealthRecord
from dolphin.runtime.health import GridHealthBridge
from dolphin.survival.clock import ManualClock
from dolphin.survival.config import LayerSpec, SurvivalConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.posture import HIBERNATE

from .conftest import free_port

pytestmark = [pytest.mark.hazelcast, pytest.mark.xdist_group("hazelcast"), pytest.mark.timeout(240)]


def test_member_kill_loses_nothing_and_whole_grid_loss_is_lost_until_resync(tmp_path: Path) -> None:
    cluster = f"dolphin-kill-{uuid.uuid4().hex[:6]}"
    ports = [free_port(), free_port()]
    addrs = tuple(f"127.0.0.1:{p}" for p in ports)
    specs = [MemberSpec(cluster_name=cluster, port=p, members=addrs, heap_mb=192) for p in ports]
    handles = [start_member(specs[0], run_dir=tmp_path, name="hz-a")]
    grid = None
    try:
        handles.append(start_member(specs[1], run_dir=tmp_path, name="hz-b"))
        grid = HazelcastGrid(cluster_name=cluster, members=addrs, members_expected=2, invocation_timeout_s=20.0)
        q = grid.wait_quorum(QuorumState.OK, 30.0)
        assert q.state is QuorumState.OK and q.members_seen == 2, q
        # The survival controller's L1 quorum layer, fed from this client's quorum signal.
        clock = ManualClock(0)
        ctl = SurvivalController(
            SurvivalConfig(layers=(LayerSpec(name="L1_grid_quorum", path="dolphin.survival.layers.builtin:GridQuorumLayer"),)),
            clock,
        )  # fmt: skip
        bridge = GridHealthBridge(ctl)
        bridge.update(q)
        ctl.tick()
        assert not ctl.killed and ctl.r_total == 1.0

        features = grid.map(FEATURES_MAP)
        written = {
            f"A{i:03d}": FeatureRecord(f"A{i:03d}", i, i, (i * 1e-4, -i * 1e-4), 0.1, 0.5, 1.0) for i in range(300)
        }
        features.put_all(written)
        grid.map(HEALTH_MAP).put("L1/grid", HealthRecord("L1", "grid", 1, 1.0, True))
        assert features.size() == 300

        # --- one member crashes: nothing lost, client keeps working, quorum degraded
        kill_member(handles[0])
        q = grid.wait_quorum(QuorumState.DEGRADED, 60.0)
        assert q.state is QuorumState.DEGRADED and q.members_seen == 1, q
        bridge.update(q)  # one member left still meets the quorum: no kill
        ctl.tick()
        assert not ctl.killed and ctl.r_total == 1.0
        assert features.get_all(list(written)) == written
        features.put("after-kill", FeatureRecord("after-kill", 1, 1, (0.5,), 0.0, 0.0, 0.0))
        assert features.get("after-kill") == FeatureRecord("after-kill", 1, 1, (0.5,), 0.0, 0.0, 0.0)

        # --- the whole grid is lost: LOST (invariant violation)
        kill_member(handles[1])
        q = grid.wait_quorum(QuorumState.LOST, 60.0)
        assert q.lost and not q.client_connected, q
        assert q.last_resync_ns is None
        clock.advance_s(1.0)
        bridge.update(q)  # invariant violation: HIBERNATE in the same call
        assert ctl.killed and ctl.posture == HIBERNATE and ctl.r_total == 0.0

        # --- a member comes back (empty): reconnect + resync, then LOST clears
        t_restart = time.monotonic_ns()
        handles.append(start_member(specs[0], run_dir=tmp_path, name="hz-c"))
        q = grid.wait_quorum(QuorumState.DEGRADED, 90.0)  # 1 of 2 expected members, resynchronised
        assert q.state is QuorumState.DEGRADED and q.client_connected, q
        assert q.last_resync_ns is not None and q.last_resync_ns > t_restart
        assert grid.resyncs == 1 and grid.data_losses == 1  # the restarted member came back empty
        assert features.size() == 301
        assert features.get_all(list(written)) == written
        assert grid.map(HEALTH_MAP).get("L1/grid") == HealthRecord("L1", "grid", 1, 1.0, True)
        clock.advance_s(1.0)
        bridge.update(q)  # reconnected and resynchronised: the grid's kill clears
        assert not ctl.killed and bridge.rearms == 1 and ctl.r_total > 0.0
        ctl.kill("operator kill switch")  # a kill from elsewhere is never cleared by the grid
        bridge.update(q)
        assert ctl.killed and bridge.rearms == 1
    finally:
        if grid is not None:
            grid.close()
        for h in handles:
            stop_member(h, timeout_s=5.0)
            # pytest shows captured output only when the test fails: the members' logs
            print(f"===== member log {h.name} =====\n{h.log_path.read_text(errors='replace')[-3000:]}")
