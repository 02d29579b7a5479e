"""The ``[grid]`` config section."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from dolphin.core.config import ConfigError, ConfigStruct, PosFloat, PosInt

__all__ = ["GridConfig"]


class GridConfig(ConfigStruct):
    """State grid: embedded by default, a Hazelcast cluster when one machine is not enough.

    ``backend = "embedded"`` with ``embedded_mode = "process"`` serves one process;
    ``"shm"`` shares one shared-memory segment between the processes of one machine;
    ``backend = "hazelcast"`` connects to ``members`` of ``cluster_name``.
    """

    backend: Literal["embedded", "hazelcast"] = "embedded"
    embedded_mode: Literal["process", "shm"] = "process"
    # --- shared-memory embedded backend (geometry applies when the segment is created)
    shm_name: str = "dolphin-grid"
    shm_slots: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] = 2048
    shm_slot_bytes: Annotated[int, msgspec.Meta(ge=256, le=1_048_576, multiple_of=8)] = 8192
    shm_ring_slots: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] = 1024
    shm_ring_msg_bytes: Annotated[int, msgspec.Meta(ge=256, le=65_536, multiple_of=8)] = 1024
    shm_poll_interval_s: Annotated[float, msgspec.Meta(gt=0.0, le=0.1)] = 0.0005
    # --- Hazelcast client
    cluster_name: str = "dolphin"
    members: tuple[str, ...] = ("127.0.0.1:5701",)
    members_expected: PosInt = 1
    near_cache_maps: tuple[str, ...] = ("DOLPHIN_FEATURES", "DOLPHIN_HEALTH_GRID")
    near_cache_ttl_s: PosFloat = 1.0
    connect_timeout_s: PosFloat = 20.0
    invocation_timeout_s: PosFloat = 5.0
    # --- Hazelcast member launched by `dolphin grid member start`
    member_port: Annotated[int, msgspec.Meta(ge=1024, le=65535)] = 5701
    member_heap_mb: Annotated[int, msgspec.Meta(ge=64, le=65536)] = 256
    member_start_timeout_s: PosFloat = 60.0
    member_slow_op_detector: bool = True  # development default; switch off in production
    member_run_dir: str = "var/run"
    # --- hot-to-cold sink
    sink_interval_s: PosFloat = 3600.0
    sink_dir: str = "var/catalog/grid"

    def validate(self) -> None:
        if self.backend == "hazelcast" and not self.members:
            raise ConfigError("config key 'grid.members' = () is not allowed: hazelcast needs >= 1 member")
        for m in self.members:
            host, _, port = m.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"config key 'grid.members' = {m!r} is not allowed: use 'host:port'")
        if self.members_expected > max(1, len(self.members)) and self.backend == "hazelcast":
            raise ConfigError(
                f"config key 'grid.members_expected' = {self.members_expected} is not allowed: "
                f"more than the {len(self.members)} configured members"
            )
