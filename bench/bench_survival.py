"""Survival benchmarks: the sizing call and the invariant-violation -> HIBERNATE decision.

Baseline (same run, interleaved): a naive dict-based implementation of the same maths (string
keyed dicts for sensors, layers, postures and limits; R_total recomputed from every layer on
each call; events as dicts), as one would first write it.

Method: per-call wall time with time.perf_counter_ns around each call, GC off, after warm-up;
dolphin and naive blocks alternate. Per-call timing includes the timer's own cost (reported
as timer_overhead_ns, not subtracted), so the percentiles are conservative. A batched mean
(1,000 calls per sample) is reported beside them.

Run: PYTHONPATH=src python bench/bench_survival.py
"""

from __future__ import annotations

import gc
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, write_results  # noqa: E402

from dolphin.survival.clock import ManualClock  # noqa: E402
from dolphin.survival.config import SurvivalConfig  # noqa: E402
from dolphin.survival.controller import SurvivalController  # noqa: E402
from dolphin.survival.kernels import capital_sigmoid_mult, gradient_mult, structural_mult  # noqa: E402
from dolphin.survival.posture import HIBERNATE  # noqa: E402
from dolphin.survival.sizer import AlphaBetSizer  # noqa: E402

HEALTHY = {"grid_members": 3.0, "grid_heartbeat": 0.0, "ledger_ok": 1.0, "mcf_zone": 0.0, "scan_heartbeat": 0.0,
           "book_update": 0.0, "book_jitter_ms": 10.0, "book_depth_ratio": 1.0, "slippage_drift_bps": 3.0,
           "drawdown_frac": 0.05}  # fmt: skip


# ------------------------------------------------------------------ the naive baseline


def naive_config(cfg: SurvivalConfig) -> dict[str, Any]:
    pc, sc = cfg.posture, cfg.sizer
    return {
        "base_fraction": sc.base_fraction,
        "venue": {"min_notional": sc.venue_min_notional, "max_notional": sc.venue_max_notional, "max_leverage": sc.venue_max_leverage},
        "ceilings": {"APEX": pc.apex_leverage, "STALKER": pc.stalker_leverage, "TURTLE": 0.0, "HIBERNATE": 0.0},
        "rights": {"APEX": {"entries": True, "taker": True}, "STALKER": {"entries": True, "taker": False},
                   "TURTLE": {"entries": False, "taker": False}, "HIBERNATE": {"entries": False, "taker": False}},
        "thresholds": {"APEX": pc.apex_down, "STALKER": pc.stalker_down, "TURTLE": pc.turtle_down},
        "layers": {s.name: {"path": s.path, "decay": s.decay_per_s, "floor": s.floor, "deadbands": dict(s.deadbands)} for s in cfg.layers},
    }  # fmt: skip


def naive_layer_targets(state: dict[str, Any], cfg: dict[str, Any], now_ns: int) -> dict[str, dict[str, float]]:
    s = state["sensors"]

    def age(name: str) -> float:
        return (now_ns - s[name]["ts"]) / 1e9

    L = cfg["layers"]
    return {
        "INVARIANT": {
            "L1_grid_quorum": 1.0 if s["grid_members"]["v"] >= 1 and age("grid_heartbeat") <= 15.0 else 0.0,
            "L2_ledger_integrity": 1.0 if s["ledger_ok"]["v"] >= 0.5 and age("ledger_ok") <= 300.0 else 0.0,
        },
        "STRUCTURAL": {
            "L3_mc_forewarner": structural_mult(age("mcf_zone"), 600.0, L["L3_mc_forewarner"]["decay"]),
            "L4_scan_heartbeat": structural_mult(age("scan_heartbeat"), 5.0, L["L4_scan_heartbeat"]["decay"]),
        },
        "MICROSTRUCTURE": {
            "L5_order_book": gradient_mult(age("book_update"), 0.2, 5.0, 0.3) * gradient_mult(s["book_jitter_ms"]["v"], 50.0, 250.0, 0.3)
            * gradient_mult(1.0 - s["book_depth_ratio"]["v"], 0.3, 0.5, 0.3),
            "L6_slippage_drift": gradient_mult(s["slippage_drift_bps"]["v"], 2.0, 20.0, 0.3),
        },
        "ENVIRONMENTAL": {"L7_external_factors": 1.0, "L8_esoteric_factors": 1.0, "ACB_v6": 1.0},
        "CAPITAL": {"L9_drawdown": capital_sigmoid_mult(s["drawdown_frac"]["v"], 20.0, 0.2, 0.01)},
    }  # fmt: skip


def naive_observe(state: dict[str, Any], cfg: dict[str, Any], sensor: str, value: float, now_ns: int) -> None:
    """Store the reading, recompute every layer, R_total and the posture; kill on an invariant."""
    state["sensors"][sensor] = {"v": value, "ts": now_ns}
    cats = naive_layer_targets(state, cfg, now_ns)
    state["categories"] = cats
    r = 1.0
    for layers in cats.values():
        for m in layers.values():
            r *= m
    state["r_total"] = r
    if any(m == 0.0 for m in cats["INVARIANT"].values()):
        if not state["killed"]:
            state["killed"] = True
            state["events"].append({"ts_ns": now_ns, "kind": "kill", "reason": f"invariant violated by {sensor}"})
        if state["posture"] != "HIBERNATE":
            state["events"].append({"ts_ns": now_ns, "kind": "posture", "old": state["posture"], "new": "HIBERNATE"})
            state["posture"] = "HIBERNATE"
            state["events"].append({"ts_ns": now_ns, "kind": "cancel_all"})


def naive_size(state: dict[str, Any], cfg: dict[str, Any], capital: float, taker: bool) -> float:
    posture = state["posture"]
    rights = cfg["rights"][posture]
    if state["killed"] or not rights["entries"] or (taker and not rights["taker"]):
        state["events"].append({"kind": "denial", "reason": f"posture {posture}"})
        return 0.0
    r = 1.0
    for layers in state["categories"].values():
        for m in layers.values():
            r *= m
    n = capital * cfg["base_fraction"] * r * cfg["ceilings"][posture]
    n = min(n, capital * cfg["venue"]["max_leverage"], cfg["venue"]["max_notional"])
    if n < cfg["venue"]["min_notional"]:
        state["events"].append({"kind": "denial", "reason": "below venue minimum"})
        return 0.0
    return n


# ------------------------------------------------------------------ set-up


def apex_controller(cfg: SurvivalConfig) -> tuple[SurvivalController, ManualClock]:
    clock = ManualClock(0)
    ctl = SurvivalController(cfg, clock)
    for _ in range(200):
        clock.advance_ns(1_000_000_000)
        for k, v in HEALTHY.items():
            ctl.observe(k, v)
        ctl.tick()
    assert ctl.posture == 0, ctl.posture_name
    return ctl, clock


def naive_state(cfg: dict[str, Any], now_ns: int) -> dict[str, Any]:
    state: dict[str, Any] = {"sensors": {k: {"v": v, "ts": now_ns} for k, v in HEALTHY.items()},
                             "posture": "APEX", "killed": False, "events": []}  # fmt: skip
    naive_observe(state, cfg, "ledger_ok", 1.0, now_ns)
    return state


def timer_overhead_ns(n: int = 20_000) -> float:
    pc = time.perf_counter_ns
    out = np.empty(n)
    for i in range(n):
        t0 = pc()
        out[i] = pc() - t0
    return float(np.median(out))


def per_call_ns(fn: Any, args: tuple, n: int) -> np.ndarray:
    pc = time.perf_counter_ns
    out = np.empty(n)
    for i in range(n):
        t0 = pc()
        fn(*args)
        out[i] = pc() - t0
    return out


def batched_ns(fn: Any, args: tuple, batches: int, per: int = 1000) -> np.ndarray:
    pc = time.perf_counter_ns
    out = np.empty(batches)
    for b in range(batches):
        t0 = pc()
        for _ in range(per):
            fn(*args)
        out[b] = (pc() - t0) / per
    return out


def main() -> None:
    cfg = SurvivalConfig()
    ncfg = naive_config(cfg)
    ctl, clock = apex_controller(cfg)
    sizer = AlphaBetSizer(cfg.sizer, ctl, clock)
    nstate = naive_state(ncfg, clock.now_ns())
    # Same maths: identical notional on the same state.
    d_n, n_n = sizer.size_entry(25_000.0, True), naive_size(nstate, ncfg, 25_000.0, True)
    assert math.isclose(d_n, n_n, rel_tol=1e-12), (d_n, n_n)
    assert math.isclose(ctl.r_total, nstate["r_total"], rel_tol=1e-12), (ctl.r_total, nstate["r_total"])

    overhead = timer_overhead_ns()
    gc.disable()
    try:
        # ---- sizing: interleaved blocks
        d_calls, n_calls, d_batch, n_batch = [], [], [], []
        for _ in range(3):
            per_call_ns(sizer.size_entry, (25_000.0, True), 2_000)  # warm-up
            per_call_ns(naive_size, (nstate, ncfg, 25_000.0, True), 2_000)
        for _ in range(20):
            d_calls.append(per_call_ns(sizer.size_entry, (25_000.0, True), 10_000))
            n_calls.append(per_call_ns(naive_size, (nstate, ncfg, 25_000.0, True), 10_000))
            d_batch.append(batched_ns(sizer.size_entry, (25_000.0, True), 20))
            n_batch.append(batched_ns(naive_size, (nstate, ncfg, 25_000.0, True), 20))
        d = np.concatenate(d_calls)
        nv = np.concatenate(n_calls)
        db, nb = np.concatenate(d_batch), np.concatenate(n_batch)

        # ---- invariant violation -> HIBERNATE: fresh APEX controllers, one violation each
        k_d, k_n = [], []
        n_kill = 300
        ctls = [apex_controller(cfg) for _ in range(n_kill)]
        naive_states = [naive_state(ncfg, c[1].now_ns()) for c in ctls]
        pc = time.perf_counter_ns
        for (c, ck), ns in zip(ctls, naive_states):
            idx = c.sensor_index("ledger_ok")
            ck.advance_ns(1_000_000)
            t0 = pc()
            c.observe_idx(idx, 0.0)
            t1 = pc()
            assert c.posture == HIBERNATE and c.killed and c.r_total == 0.0
            k_d.append(t1 - t0)
            t0 = pc()
            naive_observe(ns, ncfg, "ledger_ok", 0.0, ck.now_ns())
            t1 = pc()
            assert ns["posture"] == "HIBERNATE"
            k_n.append(t1 - t0)
        kd, kn = np.array(k_d), np.array(k_n)
        # ---- the tick (stale-heartbeat invariants are detected by the next tick)
        c, ck = apex_controller(cfg)
        ticks = []
        for _ in range(5_000):
            ck.advance_ns(1_000_000_000)
            for name in ("grid_heartbeat", "ledger_ok", "scan_heartbeat", "book_update", "mcf_zone"):
                c.observe(name, HEALTHY[name])
            t0 = pc()
            c.tick()
            ticks.append(pc() - t0)
        tk = np.array(ticks)
    finally:
        gc.enable()

    p = lambda a, q: float(np.percentile(a, q))  # noqa: E731
    figures = [
        figure("sizing_p50_ns", p(d, 50), "ns", baseline_name="naive dict-based sizing", baseline_value=p(nv, 50),
               ratio=p(nv, 50) / p(d, 50)),
        figure("sizing_p99_ns", p(d, 99), "ns", baseline_name="naive dict-based sizing", baseline_value=p(nv, 99),
               ratio=p(nv, 99) / p(d, 99), goal=5000.0, goal_op="<="),
        figure("sizing_p99_ns_stretch", p(d, 99), "ns", goal=1000.0, goal_op="<="),
        figure("sizing_p99_9_ns", p(d, 99.9), "ns", baseline_name="naive dict-based sizing", baseline_value=p(nv, 99.9)),
        figure("sizing_batched_mean_p50_ns", p(db, 50), "ns", baseline_name="naive dict-based sizing", baseline_value=p(nb, 50),
               ratio=p(nb, 50) / p(db, 50)),
        figure("sizing_batched_mean_p99_ns", p(db, 99), "ns", baseline_name="naive dict-based sizing", baseline_value=p(nb, 99)),
        figure("timer_overhead_ns", overhead, "ns", note="median cost of one perf_counter_ns pair; included in per-call figures"),
        figure("invariant_to_hibernate_p50_us", p(kd, 50) / 1e3, "us", baseline_name="naive dict-based recompute",
               baseline_value=p(kn, 50) / 1e3, ratio=p(kn, 50) / p(kd, 50)),
        figure("invariant_to_hibernate_p99_us", p(kd, 99) / 1e3, "us", baseline_name="naive dict-based recompute",
               baseline_value=p(kn, 99) / 1e3, ratio=p(kn, 99) / p(kd, 99), goal=1000.0, goal_op="<="),
        figure("invariant_to_hibernate_max_us_spec", float(kd.max()) / 1e3, "us", goal=10_000.0, goal_op="<",
               note="worst of the sample against the specification's < 10 ms"),
        figure("tick_11_layers_p50_us", p(tk, 50) / 1e3, "us"),
        figure("tick_11_layers_p99_us", p(tk, 99) / 1e3, "us",
               note="a stale-heartbeat invariant is decided by the next tick: latency <= tick_ms + this"),
    ]  # fmt: skip
    notes = [
        f"sizing: {d.size} per-call samples each for dolphin and the naive baseline, in 20 interleaved blocks; "
        f"batched: {db.size} samples of the mean of 1,000 calls",
        f"invariant -> HIBERNATE: {kd.size} fresh controllers in APEX (11 layers), one ledger-checksum violation each "
        "through observe_idx; timed until the call returns with posture HIBERNATE, R_total 0 and the kill, posture and "
        "cancel_all events written; the naive baseline stores the reading and recomputes every layer",
        "generated sensor values (healthy feeds); no market data is involved in these timings",
    ]
    path = write_results("survival", figures, notes=notes)
    for f in figures:
        extra = f" (baseline {f['baseline_value']:.1f}" + (f", ratio {f['ratio']:.1f}x)" if "ratio" in f else ")") if "baseline_value" in f else ""
        goal = f" goal {f['goal_op']} {f['goal']:g}: {'MET' if f['met'] else 'MISSED'}" if "goal" in f else ""
        print(f"{f['name']:38s} {f['value']:10.1f} {f['unit']}{extra}{goal}")
    print("wrote", path)


if __name__ == "__main__":
    main()
