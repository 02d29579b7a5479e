"""Open the configured grid backend (the one place that chooses it)."""

from __future__ import annotations

from dolphin.grid.config import GridConfig
from dolphin.grid.protocol import Grid

__all__ = ["open_grid"]


def open_grid(cfg: GridConfig, *, reader: bool = False, create: bool = True) -> Grid:
    """A :class:`Grid` for ``cfg``.

    ``reader=True`` marks an execution-side reader: on Hazelcast its ``cfg.near_cache_maps``
    get a near cache (TTL ``cfg.near_cache_ttl_s``). ``create`` lets the shared-memory backend
    create its segment when missing.
    """
    if cfg.backend == "hazelcast":
        from dolphin.grid.hazelcast_backend import HazelcastGrid

        return HazelcastGrid(
            cluster_name=cfg.cluster_name,
            members=cfg.members,
            near_cache_maps=cfg.near_cache_maps if reader else (),
            near_cache_ttl_s=cfg.near_cache_ttl_s,
            members_expected=cfg.members_expected,
            connect_timeout_s=cfg.connect_timeout_s,
            invocation_timeout_s=cfg.invocation_timeout_s,
        )
    if cfg.embedded_mode == "shm":
        from dolphin.grid.shm import SharedMemoryGrid

        return SharedMemoryGrid(
            cfg.shm_name,
            create=create,
            n_slots=cfg.shm_slots,
            slot_bytes=cfg.shm_slot_bytes,
            ring_slots=cfg.shm_ring_slots,
            ring_msg_bytes=cfg.shm_ring_msg_bytes,
            poll_interval_s=cfg.shm_poll_interval_s,
        )
    from dolphin.grid.embedded import InProcessGrid

    return InProcessGrid()
