"""Test support: a controller wired to a ManualClock with every feed healthy (generated inputs)."""

from __future__ import annotations

import msgspec

from dolphin.survival.clock import NS_PER_S, ManualClock
from dolphin.survival.config import LayerSpec, PostureConfig, SurvivalConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.events import EventLog, StepRecord

HEALTHY = {
    "grid_members": 3.0,
    "grid_heartbeat": 0.0,
    "ledger_ok": 1.0,
    "mcf_zone": 0.0,
    "scan_heartbeat": 0.0,
    "book_update": 0.0,
    "book_jitter_ms": 10.0,
    "book_depth_ratio": 1.0,
    "slippage_drift_bps": 0.0,
    "drawdown_frac": 0.0,
}
HEARTBEATS = ("grid_heartbeat", "ledger_ok", "mcf_zone", "scan_heartbeat", "book_update")


def make(
    cfg: SurvivalConfig | None = None, *, initial: str = "APEX", start_ns: int = 0, dwell_s: float | None = None
) -> tuple[SurvivalController, ManualClock, list[StepRecord]]:
    cfg = cfg or SurvivalConfig()
    pc = msgspec.structs.replace(cfg.posture, initial=initial)
    if dwell_s is not None:
        pc = msgspec.structs.replace(pc, min_upgrade_dwell_s=dwell_s)
    cfg = msgspec.structs.replace(cfg, posture=pc)
    clock = ManualClock(start_ns)
    steps: list[StepRecord] = []
    ctl = SurvivalController(cfg, clock, EventLog(), on_step=steps.append)
    return ctl, clock, steps


def feed_healthy(ctl: SurvivalController, **override: float) -> None:
    for name, v in HEALTHY.items():
        ctl.observe(name, override.get(name, v))


def run_healthy(ctl: SurvivalController, clock: ManualClock, seconds: float, step_s: float = 1.0, **override: float) -> None:
    for _ in range(int(seconds / step_s)):
        clock.advance_ns(round(step_s * NS_PER_S))
        feed_healthy(ctl, **override)
        ctl.tick()


def only(*specs: LayerSpec, posture: PostureConfig | None = None) -> SurvivalConfig:
    return SurvivalConfig(layers=specs, posture=posture or PostureConfig())
