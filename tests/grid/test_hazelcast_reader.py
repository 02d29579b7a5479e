"""Hazelcast-only behaviour: the readers' near cache (invalidation + TTL) and offline errors."""

from __future__ import annotations

import time
import uuid

import pytest

from dolphin.grid.hazelcast_backend import HazelcastGrid
from dolphin.grid.protocol import GridUnavailableError
from dolphin.grid.records import HealthRecord

pytestmark = [pytest.mark.hazelcast, pytest.mark.xdist_group("hazelcast")]


def test_near_cached_reader_serves_locally_and_sees_writes(hz_cluster: tuple[str, list[str]]) -> None:
    cluster, members = hz_cluster
    mname = f"DOLPHIN_HEALTH_GRID-{uuid.uuid4().hex[:8]}"
    with HazelcastGrid(cluster_name=cluster, members=members) as writer, HazelcastGrid(
        cluster_name=cluster, members=members, near_cache_maps=(mname,), near_cache_ttl_s=30.0
    ) as reader:
        w, r = writer.map(mname), reader.map(mname)
        v1 = HealthRecord("L1", "feed", 1, 1.0, True, "", 1)
        assert r.get("L1/feed") is None  # the reader's near cache for this map exists (and listens) now

        def stats() -> dict:
            return reader.client.get_map(mname)._near_cache.get_statistics()  # type: ignore[attr-defined]

        w.put("L1/feed", v1)
        # The put's invalidation event may reach the reader after its next get and evict the entry
        # that get just cached (one extra miss: the test used to fail now and then with 49 hits).
        deadline = time.monotonic() + 5.0
        while stats()["invalidation_requests"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.get("L1/feed") == v1
        hits = stats()["hits"]
        for _ in range(50):
            assert r.get("L1/feed") == v1
        assert stats()["hits"] - hits == 50  # served from the near cache, not the member
        v2 = HealthRecord("L1", "feed", 2, 0.0, False, "stale", 2)
        w.put("L1/feed", v2)
        # invalidation on change (not batched on the member) reaches the reader long before the 30 s TTL
        deadline = time.monotonic() + 5.0
        while r.get("L1/feed") != v2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.get("L1/feed") == v2


def test_unreachable_cluster_fails_loudly() -> None:
    with pytest.raises(GridUnavailableError, match="no Hazelcast member"):
        HazelcastGrid(cluster_name="nobody", members=["127.0.0.1:1"], connect_timeout_s=1.0)
