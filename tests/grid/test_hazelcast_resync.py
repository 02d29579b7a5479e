"""Resynchronisation after a reconnection, on the real Hazelcast member (2026-12-06 review).

Before, a client re-published its whole write shadow with a blind put_all after *any*
reconnection: after a network blip (the member kept its data) that overwrote other clients'
newer writes, rolled a compare-and-set versioned EnvelopeRecord back (RED v2 -> GREEN v1, and
the rightful writer's next CAS failed) and brought a removed alarm back. Now a client re-publishes
only when the cluster lost its data, and then never over a value present (put-if-absent; a
versioned record by compare-and-set over a lower version only). The restart of a real member is
covered by test_member_kill.py.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from dolphin.grid.hazelcast_backend import HazelcastGrid
from dolphin.grid.protocol import QuorumState
from dolphin.grid.records import EnvelopeRecord, HealthRecord

from .conftest import unique

pytestmark = [pytest.mark.hazelcast, pytest.mark.xdist_group("hazelcast"), pytest.mark.timeout(120)]


@pytest.fixture
def clients(hz_cluster: tuple[str, list[str]]) -> Iterator[tuple[HazelcastGrid, HazelcastGrid]]:
    cluster, members = hz_cluster
    a = HazelcastGrid(cluster_name=cluster, members=members)
    b = HazelcastGrid(cluster_name=cluster, members=members)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def blip(grid: HazelcastGrid) -> None:
    """A network blip on this client's side only: its connections reset, the member keeps its
    data; returns once the client has reconnected and resynchronised."""
    before = grid.resyncs
    for conn in list(grid.client._connection_manager.active_connections.values()):
        conn.close_connection("test: simulated network blip", None)
    deadline = time.monotonic() + 60
    while grid.resyncs == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert grid.resyncs == before + 1, "the client did not reconnect and resynchronise"
    assert grid.quorum().state is QuorumState.OK


def test_a_reconnection_to_a_cluster_that_kept_its_data_republishes_nothing(
    clients: tuple[HazelcastGrid, HazelcastGrid],
) -> None:
    a, b = clients
    env_map, health_map = unique("DOLPHIN_FOREWARN"), unique("DOLPHIN_HEALTH_GRID")
    v1 = EnvelopeRecord(1, 100, 0.40, "GREEN", "svm-1")
    v2 = EnvelopeRecord(2, 200, -0.90, "RED", "svm-2")
    a.map(env_map).put("current", v1)  # an old forewarner instance
    assert b.map(env_map).replace_if_same("current", v1, v2)  # the current one advances by CAS
    a.map(health_map).put("L2/feed", HealthRecord("L2", "feed", 1, 0.0, False, "stale feed"))
    assert b.map(health_map).remove("L2/feed") is not None  # the alarm is cleared
    a.map(health_map).put("L1/a", HealthRecord("L1", "a", 1, 1.0, True))
    b.map(health_map).put("L1/a", HealthRecord("L1", "a", 2, 0.5, True))  # newer, by B

    blip(a)

    assert b.map(env_map).get("current") == v2  # not rolled back to GREEN v1
    assert b.map(health_map).get("L2/feed") is None  # the removed alarm stays removed
    assert b.map(health_map).get("L1/a") == HealthRecord("L1", "a", 2, 0.5, True)
    v3 = EnvelopeRecord(3, 300, -0.95, "RED", "svm-2")
    assert b.map(env_map).replace_if_same("current", v2, v3)  # the rightful writer's next CAS
    assert a.data_losses == 0 and a.republished == 0
    # A's own writes after the reconnection are its own business as before
    a.map(health_map).put("L1/a", HealthRecord("L1", "a", 3, 0.25, True))
    assert b.map(health_map).get("L1/a") == HealthRecord("L1", "a", 3, 0.25, True)


def test_after_a_data_loss_only_what_is_missing_is_republished_and_versions_only_go_up(
    clients: tuple[HazelcastGrid, HazelcastGrid],
) -> None:
    """The cluster's data is lost (this test's maps and the grid's internal ones cleared, as in a
    restarted member) and another client re-publishes first: A fills in what is missing, never
    over a value present, and replaces a versioned record only when its own version is higher."""
    a, b = clients
    env_map, health_map = unique("DOLPHIN_FOREWARN"), unique("DOLPHIN_HEALTH_GRID")
    a_env = a.map(env_map)
    a_env.put("current", EnvelopeRecord(1, 100, 0.40, "GREEN", "svm-1"))
    a_env.put("other", EnvelopeRecord(3, 300, 0.10, "GREEN", "svm-3"))
    a_env.put("gone", EnvelopeRecord(4, 400, 0.20, "GREEN", "svm-4"))
    a_env.remove("gone")  # removed by A itself: never re-published
    a.map(health_map).put("L1/mine", HealthRecord("L1", "mine", 1, 1.0, True))
    a.map(health_map).put("L1/shared", HealthRecord("L1", "shared", 1, 1.0, True))

    # the cluster loses its data ...
    for obj in b.client.get_distributed_objects():
        ours = obj.name in (env_map, health_map) or obj.name.startswith("__dolphin")
        if obj.service_name == "hz:impl:mapService" and ours:
            obj.blocking().clear()
    # ... and B re-publishes its own state first: a newer envelope, an older one, a newer reading
    b.map(env_map).put("current", EnvelopeRecord(5, 500, -0.90, "RED", "svm-5"))
    b.map(env_map).put("other", EnvelopeRecord(2, 200, 0.30, "GREEN", "svm-2"))
    b.map(health_map).put("L1/shared", HealthRecord("L1", "shared", 9, 0.1, False))

    blip(a)

    env = b.map(env_map)
    assert env.get("current") == EnvelopeRecord(5, 500, -0.90, "RED", "svm-5")  # v1 never over v5
    assert env.get("other") == EnvelopeRecord(3, 300, 0.10, "GREEN", "svm-3")  # v3 replaced v2
    assert env.get("gone") is None
    health = b.map(health_map)
    assert health.get("L1/mine") == HealthRecord("L1", "mine", 1, 1.0, True)  # lost: re-published
    assert health.get("L1/shared") == HealthRecord("L1", "shared", 9, 0.1, False)  # present: kept
    assert a.data_losses == 1
    assert a.republished == 2  # L1/mine (missing) and "other" (A's version 3 over B's 2)
    blip(a)  # the cluster kept its data this time: nothing more
    assert a.data_losses == 1 and a.republished == 2


def test_a_key_the_client_removes_while_it_republishes_stays_removed(
    clients: tuple[HazelcastGrid, HazelcastGrid], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removal reaches the member just after the re-published value landed: the value is
    taken back (remove-if-same), never left behind as a resurrected key."""
    a, b = clients
    m = unique("DOLPHIN_HEALTH_GRID")
    a.map(m).put("k", HealthRecord("L1", "k", 1, 1.0, True))
    a.map(m).put("k2", HealthRecord("L1", "k2", 1, 1.0, True))
    b.map(m).clear()  # the cluster lost the data
    real = HazelcastGrid._shadow_holds
    raced: list[str] = []

    def removal_meanwhile(self: HazelcastGrid, map_name: str, key: str, value: object) -> bool:
        if key == "k" and not raced:
            raced.append(key)
            a.map(m).remove("k")  # (the client's own removal, racing the resync)
        return real(self, map_name, key, value)  # type: ignore[arg-type]

    monkeypatch.setattr(HazelcastGrid, "_shadow_holds", removal_meanwhile)
    assert a._republish() == 2 and raced == ["k"]
    assert b.map(m).get("k") is None
    assert b.map(m).get("k2") == HealthRecord("L1", "k2", 1, 1.0, True)
