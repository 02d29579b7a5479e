"""Deterministic replay of a scripted sensor timeline through the survival controller.

A scenario is a list of periodic feeds (a sensor reporting a value every ``every_s`` seconds,
with optional gaps = outages and value overrides over time windows) and one-off actions
(a reading, ``kill``, ``rearm``). The replay drives a ManualClock, ticks the controller every
``tick_s`` and records R_total, the five categories, every layer and the posture per tick,
plus the event log and the posture-machine step trace (for trace validation).
"""

from __future__ import annotations

import heapq
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from dolphin.survival.clock import NS_PER_S, ManualClock
from dolphin.survival.config import SurvivalConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.events import EventLog, StepRecord
from dolphin.survival.layers.base import Category
from dolphin.survival.posture import Posture

__all__ = [
    "BUILTIN_SCENARIOS", "Feed", "ReplayResult", "Scenario", "load_scenario", "run_replay", "validate_scenario",
    "write_outputs",
]  # fmt: skip


class Window(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """From ``from_s`` (inclusive) to ``until_s`` (exclusive) a feed reports ``value``
    (or ramps linearly from ``value`` to ``to_value`` when that is given)."""

    from_s: float
    until_s: float
    value: float
    to_value: float | None = None


class Feed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sensor: str
    value: float
    every_s: float
    from_s: float = 0.0
    until_s: float = float("inf")
    gaps: tuple[tuple[float, float], ...] = ()  # (from_s, until_s): no readings (an outage)
    windows: tuple[Window, ...] = ()


class Action(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at_s: float
    kind: Literal["observe", "kill", "rearm"] = "observe"
    sensor: str = ""
    value: float = 0.0
    reason: str = ""


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    duration_s: float
    tick_s: float = 10.0
    description: str = ""
    feeds: tuple[Feed, ...] = ()
    actions: tuple[Action, ...] = ()
    initial_posture: Literal["APEX", "STALKER", "TURTLE", "HIBERNATE"] = "HIBERNATE"


def _feed_value(feed: Feed, t_s: float) -> float | None:
    """The feed's reading at ``t_s`` or None inside a gap."""
    for a, b in feed.gaps:
        if a <= t_s < b:
            return None
    for w in feed.windows:
        if w.from_s <= t_s < w.until_s:
            if w.to_value is None:
                return w.value
            frac = (t_s - w.from_s) / (w.until_s - w.from_s)
            return w.value + (w.to_value - w.value) * frac
    return feed.value


H = 3600.0
_HEALTHY: tuple[Feed, ...] = (
    Feed(sensor="grid_members", value=3.0, every_s=5.0),
    Feed(sensor="grid_heartbeat", value=0.0, every_s=5.0),
    Feed(sensor="ledger_ok", value=1.0, every_s=60.0),
    Feed(sensor="scan_heartbeat", value=0.0, every_s=5.0),
    Feed(sensor="book_jitter_ms", value=20.0, every_s=10.0),
    Feed(sensor="book_depth_ratio", value=1.0, every_s=10.0),
    Feed(sensor="order_rtt_ms", value=6.0, every_s=10.0),
    Feed(sensor="slippage_drift_bps", value=0.5, every_s=60.0),
    Feed(sensor="acb_funding_lag5d_frac", value=0.0001, every_s=600.0),
    Feed(sensor="acb_taker_ratio_lag1d", value=1.02, every_s=600.0),
    Feed(sensor="acb_dvol_prev", value=50.0, every_s=600.0),
    Feed(sensor="drawdown_frac", value=0.0, every_s=60.0),
)


def _storm() -> Scenario:
    """MC-Forewarner outage (2 h), order-book stall, RTT spike, DVOL shock, drawdown, ledger fault."""
    book = Feed(sensor="book_update", value=0.0, every_s=1.0, gaps=((3.5 * H, 3.5 * H + 600.0),))
    mcf = Feed(sensor="mcf_zone", value=0.0, every_s=300.0, gaps=((1.0 * H, 3.0 * H),))
    rtt = Feed(sensor="order_rtt_ms", value=6.0, every_s=2.0, windows=(Window(from_s=4.0 * H, until_s=4.0 * H + 300.0, value=35.0),))
    dvol = Feed(sensor="acb_dvol", value=50.0, every_s=600.0, windows=(Window(from_s=5.0 * H, until_s=6.5 * H, value=92.0, to_value=60.0),))
    dd = Feed(
        sensor="drawdown_frac",
        value=0.05,
        every_s=60.0,
        windows=(
            Window(from_s=0.0, until_s=6.0 * H, value=0.0),
            Window(from_s=6.0 * H, until_s=7.0 * H, value=0.0, to_value=0.22),
            Window(from_s=7.0 * H, until_s=8.5 * H, value=0.22, to_value=0.05),
        ),
    )
    ledger = Feed(sensor="ledger_ok", value=1.0, every_s=60.0, windows=(Window(from_s=8.5 * H, until_s=8.5 * H + 900.0, value=0.0),))
    base = tuple(f for f in _HEALTHY if f.sensor not in ("order_rtt_ms", "drawdown_frac", "ledger_ok"))
    return Scenario(
        name="storm",
        duration_s=10.0 * H,
        tick_s=10.0,
        description=(
            "1h-3h MC-Forewarner outage; 3h30 order-book stall (10 min); 4h RTT spike to 35 ms (5 min); "
            "5h DVOL shock 50->92 with an external-factor shock; 6h-7h drawdown to 22 %; "
            "8h30 ledger checksum mismatch (kill), 8h45 ledger verified again, 8h50 operator rearm"
        ),
        feeds=base + (book, mcf, rtt, dvol, dd, ledger),
        actions=(
            Action(at_s=5.0 * H, sensor="exf_shock", value=1.0),
            Action(at_s=8.5 * H + 1200.0, kind="rearm", reason="operator: ledger re-verified"),
        ),
    )


def _calm() -> Scenario:
    return Scenario(
        name="calm",
        duration_s=2.0 * H,
        tick_s=10.0,
        description="every feed healthy: HIBERNATE -> TURTLE -> STALKER -> APEX after the start-up dwell, then nothing",
        feeds=_HEALTHY + (
            Feed(sensor="book_update", value=0.0, every_s=1.0),
            Feed(sensor="mcf_zone", value=0.0, every_s=300.0),
            Feed(sensor="acb_dvol", value=50.0, every_s=600.0),
        ),
    )


BUILTIN_SCENARIOS = {"storm": _storm, "calm": _calm}


def _check(ok: bool, scenario: Scenario, key: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"scenario {scenario.name!r}: {key} = {value!r} is not allowed: {rule}")


def validate_scenario(scenario: Scenario) -> Scenario:
    """Reject a scenario the replay cannot run (ValueError naming the key, the value and the rule):
    a tick or a feed period of 0 would never advance the clock (the replay hung), a negative one
    would move it backwards, and times must be finite and not before the start."""
    fin = math.isfinite
    _check(fin(scenario.duration_s) and scenario.duration_s >= 0.0, scenario, "duration_s", scenario.duration_s,
           "must be a finite number >= 0")  # fmt: skip
    _check(fin(scenario.tick_s) and scenario.tick_s >= 0.001, scenario, "tick_s", scenario.tick_s,
           "must be a finite number of seconds >= 0.001 (the controller ticks in whole milliseconds)")  # fmt: skip
    for k, f in enumerate(scenario.feeds):
        where = f"feeds[{k}] ({f.sensor})"
        _check(fin(f.every_s) and round(f.every_s * NS_PER_S) >= 1, scenario, f"{where}.every_s", f.every_s,
               "must be a finite number of seconds > 0 (at least 1 ns)")  # fmt: skip
        _check(fin(f.from_s) and f.from_s >= 0.0, scenario, f"{where}.from_s", f.from_s, "must be a finite number >= 0")
        _check(not f.until_s < f.from_s, scenario, f"{where}.until_s", f.until_s, "must not be before from_s")
    for k, a in enumerate(scenario.actions):
        _check(fin(a.at_s) and a.at_s >= 0.0, scenario, f"actions[{k}].at_s", a.at_s, "must be a finite number >= 0")
    return scenario


def load_scenario(name_or_path: str) -> Scenario:
    """A builtin scenario by name, or a TOML/JSON scenario file."""
    if name_or_path in BUILTIN_SCENARIOS:
        return BUILTIN_SCENARIOS[name_or_path]()
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"scenario {name_or_path!r}: not a builtin ({sorted(BUILTIN_SCENARIOS)}) nor a file")
    raw: Any = tomllib.loads(path.read_text()) if path.suffix == ".toml" else msgspec.json.decode(path.read_bytes())
    return validate_scenario(msgspec.convert(raw, Scenario))


class ReplayResult(msgspec.Struct):
    scenario: str
    start_ns: int
    initial: int
    t_s: list[float]
    r_total: list[float]
    categories: dict[str, list[float]]
    layers: dict[str, list[float]]
    posture: list[int]
    steps: list[StepRecord]
    log: Any  # EventLog


def run_replay(scenario: Scenario, cfg: SurvivalConfig | None = None, *, start_ns: int = 0) -> ReplayResult:
    """Replay ``scenario`` deterministically (same inputs -> byte-identical outputs)."""
    validate_scenario(scenario)
    base = cfg if cfg is not None else SurvivalConfig()
    cfg = msgspec.structs.replace(
        base,
        tick_ms=round(scenario.tick_s * 1000),
        posture=msgspec.structs.replace(base.posture, initial=scenario.initial_posture),
    )
    clock = ManualClock(start_ns)
    log = EventLog()
    steps: list[StepRecord] = []
    ctl = SurvivalController(cfg, clock, log, on_step=steps.append)
    idx = {f.sensor: ctl.sensor_index(f.sensor) for f in scenario.feeds}
    for a in scenario.actions:
        if a.kind == "observe":
            idx[a.sensor] = ctl.sensor_index(a.sensor)
    # A merged, time-ordered stream of (t_ns, order, kind, payload).
    heap: list[tuple[int, int, int, int]] = []
    for fi, f in enumerate(scenario.feeds):
        heap.append((start_ns + round(f.from_s * NS_PER_S), 1, fi, 0))
    for ai, a in enumerate(scenario.actions):
        heap.append((start_ns + round(a.at_s * NS_PER_S), 2, ai, 0))
    tick_ns = round(scenario.tick_s * NS_PER_S)
    end_ns = start_ns + round(scenario.duration_s * NS_PER_S)
    heap.append((start_ns + tick_ns, 3, 0, 0))
    heapq.heapify(heap)
    out = ReplayResult(scenario.name, start_ns, ctl.posture, [], [], {c.name: [] for c in Category},
                       {lay.name: [] for lay in ctl.layers}, [], steps, log)  # fmt: skip
    while heap:
        t_ns, order, i, _ = heapq.heappop(heap)
        if t_ns > end_ns:
            break
        clock.set_ns(t_ns)
        if order == 1:
            f = scenario.feeds[i]
            t_s = (t_ns - start_ns) / NS_PER_S
            v = _feed_value(f, t_s)
            if v is not None:
                ctl.observe_idx(idx[f.sensor], v)
            nxt = t_ns + round(f.every_s * NS_PER_S)
            if (nxt - start_ns) / NS_PER_S < f.until_s:
                heapq.heappush(heap, (nxt, 1, i, 0))
        elif order == 2:
            a = scenario.actions[i]
            if a.kind == "observe":
                ctl.observe_idx(idx[a.sensor], a.value)
            elif a.kind == "kill":
                ctl.kill(a.reason or "scenario kill", source="scenario")
            else:
                ctl.rearm(a.reason or "scenario rearm")
        else:
            ctl.tick()
            out.t_s.append((t_ns - start_ns) / NS_PER_S)
            out.r_total.append(ctl.r_total)
            for c in Category:
                out.categories[c.name].append(ctl.category_mult[c])
            for lay, d in zip(ctl.layers, ctl.damped):
                out.layers[lay.name].append(d)
            out.posture.append(ctl.posture)
            heapq.heappush(heap, (t_ns + tick_ns, 3, 0, 0))
    return out


def write_outputs(result: ReplayResult, cfg: SurvivalConfig, out_dir: Path) -> dict[str, Path]:
    """events.jsonl, trace.jsonl (header + steps), timeline.csv and replay.png in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "events": out_dir / "events.jsonl",
        "trace": out_dir / "trace.jsonl",
        "timeline": out_dir / "timeline.csv",
        "png": out_dir / "replay.png",
    }
    paths["events"].write_bytes(result.log.to_jsonl())
    enc = msgspec.json.Encoder()
    header = {"scenario": result.scenario, "start_ns": result.start_ns, "initial": result.initial,
              "dwell_ns": round(cfg.posture.min_upgrade_dwell_s * 1e9)}  # fmt: skip
    paths["trace"].write_bytes(enc.encode(header) + b"\n" + b"".join(enc.encode(s) + b"\n" for s in result.steps))
    cols = ["t_s", "r_total", *result.categories, *result.layers, "posture"]
    rows = [",".join(cols)]
    for k, t in enumerate(result.t_s):
        vals = [t, result.r_total[k], *(v[k] for v in result.categories.values()), *(v[k] for v in result.layers.values())]
        rows.append(",".join(f"{x:.6g}" for x in vals) + f",{Posture(result.posture[k]).name}")
    paths["timeline"].write_text("\n".join(rows) + "\n")

    hours = [t / 3600.0 for t in result.t_s]
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, gridspec_kw={"height_ratios": [2, 2, 2, 1]})
    ax = axes[0]
    ax.plot(hours, result.r_total, color="black", lw=1.5, label="R_total")
    down, up = cfg.posture.thresholds_pct()
    for b, name in enumerate(("APEX|STALKER", "STALKER|TURTLE", "TURTLE|HIBERNATE")):
        ax.axhspan(down[b] / 100, up[b] / 100, color=f"C{b}", alpha=0.15, label=f"{name} hysteresis")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("R_total")
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.set_title(f"survival replay: {result.scenario}")
    for c, values in result.categories.items():
        axes[1].plot(hours, values, lw=1.2, label=c)
    axes[1].set_ylim(-0.02, 1.05)
    axes[1].set_ylabel("category multiplier")
    axes[1].legend(loc="lower left", fontsize=8, ncol=3)
    for name, values in result.layers.items():
        axes[2].plot(hours, values, lw=1.0, label=name)
    axes[2].set_ylim(-0.02, 1.05)
    axes[2].set_ylabel("layer (damped)")
    axes[2].legend(loc="lower left", fontsize=7, ncol=4)
    axes[3].step(hours, result.posture, where="post", color="black")
    axes[3].set_yticks([0, 1, 2, 3], [p.name for p in Posture])
    axes[3].invert_yaxis()
    axes[3].set_ylabel("posture")
    axes[3].set_xlabel("hours")
    for k in ("kill", "rearm"):
        for e in result.log.of_kind(k):
            for a in axes:
                a.axvline((e.ts_ns - result.start_ns) / 3.6e12, color="red" if k == "kill" else "green", ls="--", lw=0.8)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=90)
    plt.close(fig)
    return paths
