"""The survival controller: categories, damping, postures, kill path, events, plug-ins.

All inputs are generated (a ManualClock and scripted readings); no real market data here.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import msgspec
import pytest
from _survival_support import HEALTHY, HEARTBEATS, feed_healthy, make, only, run_healthy
from hypothesis import given, settings
from hypothesis import strategies as st

from dolphin.core.config import ConfigError
from dolphin.survival.clock import NS_PER_S, ManualClock, MonotonicClock
from dolphin.survival.config import LayerSpec, PostureConfig, SurvivalConfig
from dolphin.survival.controller import SurvivalController, r_to_pct
from dolphin.survival.kernels import capital_sigmoid_mult
from dolphin.survival.layers.base import Category
from dolphin.survival.posture import APEX, HIBERNATE, STALKER, TURTLE

B = "dolphin.survival.layers.builtin:"


# ------------------------------------------------------------------ basics


def test_r_to_pct_agrees_with_float_threshold_comparisons() -> None:
    assert r_to_pct(float("nan")) == 0 and r_to_pct(-1.0) == 0 and r_to_pct(0.0) == 0
    assert r_to_pct(1.0) == 100 and r_to_pct(0.9999999) == 99
    assert r_to_pct(0.29) == 29  # 0.29 * 100 = 28.999999999999996
    assert r_to_pct(0.049999999999999996) == 4  # r * 100 rounds up to 5.0
    for k in range(1, 100):
        for r in (k / 100, math.nextafter(k / 100, 0.0), math.nextafter(k / 100, 1.0)):
            assert (r_to_pct(r) >= k) == (r >= k / 100)


def test_healthy_start_climbs_one_posture_per_dwell() -> None:
    ctl, clock, _ = make(initial="HIBERNATE", dwell_s=60.0)
    assert ctl.posture == HIBERNATE and ctl.posture_name == "HIBERNATE"
    run_healthy(ctl, clock, 59)
    assert ctl.posture == HIBERNATE
    run_healthy(ctl, clock, 1)
    assert ctl.posture == TURTLE
    run_healthy(ctl, clock, 120)
    assert ctl.posture == APEX and ctl.r_total == 1.0
    reasons = [e.reason for e in ctl.log.of_kind("posture")]
    assert len(reasons) == 3 and all("dwell met" in r for r in reasons)
    snap = ctl.snapshot()
    assert snap["posture"] == "APEX" and snap["categories"]["INVARIANT"] == 1.0  # type: ignore[index]


def test_unknown_sensor_is_named() -> None:
    ctl, _, _ = make()
    with pytest.raises(KeyError, match="no_such_sensor"):
        ctl.observe("no_such_sensor", 1.0)


def test_monotonic_clock_is_monotonic() -> None:
    c = MonotonicClock()
    a = c.now_ns()
    assert c.now_ns() >= a
    m = ManualClock(5)
    with pytest.raises(ValueError):
        m.advance_ns(-1)
    with pytest.raises(ValueError):
        m.set_ns(4)
    assert m.advance_s(1.5) == 5 + 1_500_000_000


# ------------------------------------------------------------------ categories


def test_mc_forewarner_outage_decays_after_grace_and_recovers_slowly() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 10)
    decay = SurvivalConfig().layers[2].decay_per_s
    for _ in range(3600):  # one hour without an MC-Forewarner update
        clock.advance_s(1.0)
        feed_healthy(ctl, **{"mcf_zone": math.nan}) if False else None
        for name in HEARTBEATS:
            if name != "mcf_zone":
                ctl.observe(name, 1.0 if name == "ledger_ok" else 0.0)
        ctl.tick()
    mcf = ctl.layers[2]
    expected = math.exp(-decay * (3600 - 600))  # staleness 3600 s, grace 600 s
    assert math.isclose(ctl.damped[2], expected, rel_tol=1e-9)
    assert math.isclose(ctl.category_mult[Category.STRUCTURAL], expected, rel_tol=1e-9)
    assert "MC-Forewarner GREEN" in mcf.explain(clock.now_ns())
    low = ctl.damped[2]
    run_healthy(ctl, clock, 60)  # back: the target is 1 but recovery is 1 % per minute
    assert math.isclose(ctl.damped[2], low + 0.01, rel_tol=1e-9)


def test_mc_forewarner_zone_scales_the_layer() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 2, mcf_zone=1.0)
    assert ctl.damped[2] == 0.75 and "ORANGE" in ctl.layers[2].explain(clock.now_ns())
    run_healthy(ctl, clock, 2, mcf_zone=2.0)
    assert ctl.damped[2] == 0.35


def test_book_stall_shifts_to_passive_quoting() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 5)
    for _ in range(10):
        clock.advance_s(1.0)
        for name in ("grid_heartbeat", "ledger_ok", "mcf_zone", "scan_heartbeat"):
            ctl.observe(name, 1.0 if name == "ledger_ok" else 0.0)
        ctl.tick()
    assert ctl.layers[4].cap == TURTLE and ctl.posture == TURTLE
    caps = ctl.log.of_kind("cap")
    assert caps[-1].subject == "L5_order_book" and "passive quoting" in caps[-1].reason
    assert "posture cap TURTLE from L5_order_book" in ctl.log.of_kind("posture")[-1].reason


def test_external_shock_impulse_and_reset() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 5)
    ctl.observe("exf_shock", 0.5)  # below the shock level
    run_healthy(ctl, clock, 1)
    assert ctl.damped[6] == 1.0 and "no shock" in ctl.layers[6].explain(clock.now_ns())
    ctl.observe("exf_shock", 1.0)
    run_healthy(ctl, clock, 1)
    assert math.isclose(ctl.damped[6], 0.3 + 0.7 / 3600)
    run_healthy(ctl, clock, 1799)
    assert math.isclose(ctl.damped[6], 0.65, rel_tol=1e-9)
    ctl.observe("exf_shock", 2.0)  # a new shock restarts the impulse
    run_healthy(ctl, clock, 1)
    assert math.isclose(ctl.damped[6], 0.3 + 0.7 / 3600)
    assert "shock 1 s ago" in ctl.layers[6].explain(clock.now_ns())
    run_healthy(ctl, clock, 3600)
    assert ctl.damped[6] == 1.0


def test_esoteric_factors_are_mild() -> None:
    ctl, clock, _ = make()
    ctl.observe("esof_shock", 1.0)
    run_healthy(ctl, clock, 1)
    assert 0.85 <= ctl.damped[7] < 0.86


def test_drawdown_and_slippage_and_acb() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 2, drawdown_frac=0.21, slippage_drift_bps=12.0)
    assert math.isclose(ctl.damped[8], capital_sigmoid_mult(0.21, 20.0, 0.2))  # the model at 21 % (not shifted)
    assert math.isclose(ctl.damped[5], 1.0 - 0.7 * 0.5)
    assert "drawdown 21.0%" in ctl.layers[8].explain(0) and "12.0 bps" in ctl.layers[5].explain(0)
    ctl.observe("acb_dvol_prev", 60.0)
    ctl.observe("acb_dvol", 95.0)  # DVOL stressed and jumped: 2 signals -> 45 % cut
    run_healthy(ctl, clock, 1)
    assert math.isclose(ctl.damped[9], 0.55) and "cut 45%" in ctl.layers[9].explain(0)


@settings(max_examples=80)
@given(st.floats(min_value=0.0, max_value=1.0), st.sampled_from([0.0, 0.01, 0.05]))
def test_property_drawdown_layer_is_the_model_beyond_its_deadband(dd: float, deadband: float) -> None:
    """L9 is 1 up to its deadband, then 1/(1+exp(k(DD - DD_mid))) (normalised at DD = 0) at the
    drawdown itself. It subtracted the deadband first: the curve moved right by it, midpoint 21 %,
    R_total higher than the model at every drawdown past the deadband (2026-12-06)."""
    spec = LayerSpec(name="L9", path=B + "DrawdownLayer", deadbands={"drawdown_frac": deadband})
    ctl, clock, _ = make(only(spec), dwell_s=0.0)
    ctl.observe("drawdown_frac", dd)
    ctl.tick()
    model = (1.0 + math.exp(-20.0 * 0.2)) / (1.0 + math.exp(20.0 * (dd - 0.2)))
    expected = 1.0 if dd <= deadband else min(1.0, model)
    assert math.isclose(ctl.layers[0].target(0), expected, rel_tol=1e-12) and math.isclose(ctl.r_total, expected)


def test_drawdown_posture_boundaries_are_the_models() -> None:
    """The shipped L9 (k = 20, midpoint 20 %, deadband 1 %): at 20 % the multiplier is the model's
    0.509 (TURTLE), not 0.56 (STALKER); 12 % is STALKER, 27.5 % HIBERNATE."""
    for dd, posture in ((0.005, APEX), (0.05, APEX), (0.12, STALKER), (0.20, TURTLE), (0.275, HIBERNATE)):
        ctl, clock, _ = make(only(*(s for s in SurvivalConfig().layers if s.name == "L9_drawdown")), dwell_s=0.0)
        ctl.observe("drawdown_frac", dd)
        ctl.tick()
        assert ctl.posture == posture, (dd, ctl.posture, ctl.r_total)
    assert math.isclose(ctl.layers[0].target(0), (1.0 + math.exp(-4.0)) / (1.0 + math.exp(1.5)))


def test_rtt_lockdown_blocks_entries_until_calm_for_the_hold_time() -> None:
    ctl, clock, steps = make()
    run_healthy(ctl, clock, 5)
    rtt = ctl.layers[10]
    for _ in range(5):
        clock.advance_s(0.5)
        ctl.observe("order_rtt_ms", 30.0)
    assert rtt.cap == TURTLE and rtt.locked  # locked on the samples, before any tick
    assert ctl.posture == TURTLE and steps[-1].cause == 2  # entries stop at once
    assert ctl.log.of_kind("cap")[-1].subject == "RTT_lockdown"
    run_healthy(ctl, clock, 1)
    assert ctl.posture == TURTLE and "LOCKED" in rtt.explain(clock.now_ns())
    for _ in range(30):  # RTT back to 5 ms; the window forgets the slow samples after 5 s
        clock.advance_s(1.0)
        ctl.observe("order_rtt_ms", 5.0)
        feed_healthy(ctl)
        ctl.tick()
    assert rtt.locked
    run_healthy(ctl, clock, 40)
    assert not rtt.locked and rtt.cap == APEX and "clear" in rtt.explain(clock.now_ns())
    run_healthy(ctl, clock, 20)  # no samples at all: the window is empty, no lockdown
    assert rtt.window_mean_ms(clock.now_ns()) == 0.0
    ctl.observe("book_update", 0.0)
    ctl.cap = TURTLE  # another layer already caps at TURTLE: a new RTT lock changes the cap, not the posture
    n_steps = len(steps)
    for _ in range(3):
        ctl.observe("order_rtt_ms", 50.0)
    assert rtt.locked and len(steps) == n_steps


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 9.0e15])
def test_rtt_lockdown_counts_an_invalid_rtt_as_slow_and_recovers_after_it(bad: float) -> None:
    """A NaN / inf / negative / absurdly large RTT reading locks (unknown is not fast), is
    counted, and leaves nothing behind (a huge value's rounding residue in the sum would):
    once it is out of the window and the hold has passed, the layer clears, and later slow RTTs
    lock it again (a NaN in its running sum used to switch the lockdown off for good)."""
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 5)
    rtt = ctl.layers[10]
    ctl.observe("order_rtt_ms", bad)
    assert rtt.locked and rtt.cap == TURTLE and rtt.invalid_samples == 1
    assert "1 invalid readings" in rtt.explain(clock.now_ns())
    for _ in range(70):  # fast RTTs: the bad reading leaves the 5 s window, then 60 s of calm
        clock.advance_s(1.0)
        ctl.observe("order_rtt_ms", 5.0)
        feed_healthy(ctl)
        ctl.tick()
    assert not rtt.locked and rtt.cap == APEX
    assert rtt.window_mean_ms(clock.now_ns()) == pytest.approx(5.0)
    for _ in range(6):
        clock.advance_s(1.0)
        ctl.observe("order_rtt_ms", 50.0)
    assert rtt.locked and rtt.window_mean_ms(clock.now_ns()) > 20.0


@settings(max_examples=40)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(allow_nan=True, allow_infinity=True)), max_size=20))
def test_property_rtt_lockdown_still_protects_after_any_readings(prefix: list) -> None:
    """Whatever RTT readings came before (NaN, inf, negative, huge), once they have left the
    window and the hold has passed, fast RTTs clear the lockdown and slow ones lock it again."""
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 5)
    rtt = ctl.layers[10]
    for dt_s, value in prefix:
        clock.advance_s(dt_s)
        ctl.observe("order_rtt_ms", value)
    for _ in range(70):
        clock.advance_s(1.0)
        ctl.observe("order_rtt_ms", 5.0)
        feed_healthy(ctl)
        ctl.tick()
    assert not rtt.locked and rtt.window_mean_ms(clock.now_ns()) == pytest.approx(5.0)
    for _ in range(6):
        clock.advance_s(1.0)
        ctl.observe("order_rtt_ms", 50.0)
    assert rtt.locked and rtt.cap == TURTLE


def test_slippage_tracker_feeds_the_drift_layer() -> None:
    from dolphin.survival.layers.builtin import SlippageTracker

    tr = SlippageTracker(alpha=0.5)
    assert math.isclose(tr.on_fill(+1, 100.0, 100.1), 0.5 * 10.0)  # bought 10 bps above the expected price
    assert math.isclose(tr.on_fill(-1, 100.0, 100.1), 0.5 * 5.0 + 0.5 * -10.0)  # sold above: favourable
    assert tr.fills == 2
    with pytest.raises(ValueError, match="alpha"):
        SlippageTracker(alpha=0.0)
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 2, slippage_drift_bps=SlippageTracker(1.0).on_fill(+1, 100.0, 100.12))
    assert math.isclose(ctl.damped[5], 1.0 - 0.7 * (12.0 - 2.0) / 20.0)  # 12 bps: 10 past the deadband


# ------------------------------------------------------------------ kill path


def test_invariant_violation_hibernates_in_the_same_call_and_latches() -> None:
    ctl, clock, steps = make()
    run_healthy(ctl, clock, 3)
    assert ctl.posture == APEX
    ctl.observe("ledger_ok", 0.0)
    assert ctl.killed and ctl.posture == HIBERNATE and ctl.r_total == 0.0 and ctl.exposure == 0.0
    assert steps[-1].cause == 1 and steps[-1].after == HIBERNATE
    kinds = [e.kind for e in ctl.log.events[-3:]]
    assert kinds == ["kill", "posture", "cancel_all"]
    assert "CHECKSUM MISMATCH" in ctl.log.of_kind("kill")[0].reason
    run_healthy(ctl, clock, 600)  # ledger healthy again: still latched until rearm
    assert ctl.killed and ctl.r_total == 0.0 and ctl.posture == HIBERNATE
    assert ctl.kill_sources == ["L2_ledger_integrity"]
    ctl.kill("again", source="L2_ledger_integrity")  # the same source again: only counted
    assert ctl.kill_repeats == 1 and len(ctl.log.of_kind("kill")) == 1
    ctl.kill("operator drill", source="operator")  # a new source while latched: recorded, an event
    assert ctl.kill_repeats == 2 and ctl.kill_sources == ["L2_ledger_integrity", "operator"]
    second = ctl.log.of_kind("kill")[-1]
    assert second.subject == "operator" and second.reason == "operator drill" and "L2_ledger_integrity" in second.old
    ctl.kill("operator drill", source="operator")
    assert ctl.kill_repeats == 3 and len(ctl.log.of_kind("kill")) == 2
    assert ctl.rearm("ledger verified, operator done") and ctl.kill_sources == []


def test_grid_quorum_loss_kills_on_observe_and_on_tick() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 3)
    ctl.observe("grid_members", 0.0)
    assert ctl.killed and "quorum" in ctl.kill_reason
    ctl2, clock2, _ = make()
    run_healthy(ctl2, clock2, 3)
    clock2.advance_s(30.0)  # no grid heartbeat for 30 s and a stale ledger: two invariants at once
    ctl2.observe("scan_heartbeat", 0.0)
    ctl2.board.set(ctl2.sensor_index("ledger_ok"), 0.0, clock2.now_ns())
    ctl2.tick()
    assert ctl2.killed and ctl2.posture == HIBERNATE and "heartbeat age" in ctl2.kill_reason


def _l1_l2() -> SurvivalConfig:
    return only(*(s for s in SurvivalConfig().layers if s.name in ("L1_grid_quorum", "L2_ledger_integrity")))


def _feed_invariants(ctl: SurvivalController) -> None:
    for name in ("grid_members", "grid_heartbeat", "ledger_ok"):
        ctl.observe(name, HEALTHY[name])


def test_every_invariant_violated_while_latched_is_a_kill_source_once() -> None:
    """Once latched, a violation of another invariant never reached kill(): it was not a kill source
    and wrote no kill event, so a re-arm keyed on the sources could clear it unseen (2026-12-06)."""
    ctl, clock, _ = make(_l1_l2())
    _feed_invariants(ctl)
    ctl.tick()
    ctl.kill("operator drill", source="operator")
    clock.advance_s(1.0)
    ctl.observe("ledger_ok", 0.0)  # observe(): a new source while latched
    assert ctl.kill_sources == ["operator", "L2_ledger_integrity"] and ctl.kill_repeats == 1
    kill = ctl.log.of_kind("kill")[-1]
    assert kill.subject == "L2_ledger_integrity" and "CHECKSUM" in kill.reason and kill.old == "latched by operator"
    clock.advance_s(30.0)  # the grid heartbeat is stale now: found by tick()
    for _ in range(5):  # and only once: the violations persist, nothing is counted again
        ctl.observe("ledger_ok", 0.0)
        ctl.tick()
        clock.advance_s(1.0)
    assert ctl.kill_sources == ["operator", "L2_ledger_integrity", "L1_grid_quorum"] and ctl.kill_repeats == 2
    assert [k.subject for k in ctl.log.of_kind("kill")] == ctl.kill_sources
    assert ctl.posture == HIBERNATE and ctl.r_total == 0.0
    ctl2, clock2, _ = make(_l1_l2())
    clock2.advance_s(400.0)  # both stale at the first tick: both are sources, one event each
    ctl2.tick()
    assert ctl2.kill_sources == ["L1_grid_quorum", "L2_ledger_integrity"] and len(ctl2.log.of_kind("kill")) == 2


_inv_op = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([0.5, 5.0, 20.0, 400.0])),
    st.tuples(st.just("observe"), st.sampled_from([("ledger_ok", 0.0), ("ledger_ok", 1.0), ("grid_members", 0.0),
                                                   ("grid_members", 3.0), ("grid_heartbeat", 0.0)])),
    st.just(("tick",)), st.just(("rearm",)), st.just(("kill",)),
)  # fmt: skip


@settings(max_examples=80)
@given(st.lists(_inv_op, max_size=40))
def test_property_while_latched_every_violated_invariant_is_a_kill_source(ops: list) -> None:
    """After a tick every violated invariant, after a reading every violated invariant reading it,
    is among ``kill_sources``; each source is written as one kill event; a violation that persists
    is never counted again (``kill_repeats`` counts only the kills from a new source while latched)."""
    ctl, clock, _ = make(_l1_l2())
    _feed_invariants(ctl)
    ctl.tick()
    latched_kills: list[str] = []  # the kill events' subjects since the last rearm
    repeats = 0  # kill() calls while latched: the operator's, and one per new invariant source
    for op in ops:
        checked: tuple = ()
        n = len(ctl.log.events)
        if op[0] == "advance":
            clock.advance_s(op[1])
        elif op[0] == "observe":
            ctl.observe(*op[1])
            checked = tuple(lay for lay in ctl.layers if ctl.sensor_index(op[1][0]) in lay.sensor_idx)
            repeats += sum(1 for e in ctl.log.events[n:] if e.kind == "kill" and e.old)
        elif op[0] == "tick":
            ctl.tick()
            checked = tuple(ctl.layers)
            repeats += sum(1 for e in ctl.log.events[n:] if e.kind == "kill" and e.old)
        elif op[0] == "rearm":
            if ctl.rearm("operator"):
                latched_kills = []
        else:
            repeats += ctl.killed
            ctl.kill("operator", source="operator")
        latched_kills += [e.subject for e in ctl.log.events[n:] if e.kind == "kill"]
        now = clock.now_ns()
        for layer in checked:
            if not layer.target(now) > 0.0:
                assert ctl.killed and layer.name in ctl.kill_sources, (layer.name, ctl.kill_sources)
        assert latched_kills == ctl.kill_sources  # one event per source, in order, none repeated
        assert ctl.kill_repeats == repeats  # a violation that persists is not counted at every tick
        if ctl.killed:
            assert ctl.posture == HIBERNATE and ctl.r_total == 0.0


def test_rearm_needs_a_kill_and_healthy_invariants() -> None:
    ctl, clock, _ = make()
    run_healthy(ctl, clock, 3)
    assert not ctl.rearm("nothing to rearm")
    ctl.kill("operator kill switch")
    assert ctl.killed and ctl.log.of_kind("kill")[0].subject == "kill_switch"
    ctl.observe("ledger_ok", 0.0)
    assert not ctl.rearm("too early")
    denied = ctl.log.of_kind("rearm_denied")
    assert "not killed" in denied[0].reason and "CHECKSUM" in denied[1].reason
    run_healthy(ctl, clock, 1)
    assert ctl.rearm("ledger verified")
    assert not ctl.killed and ctl.posture == HIBERNATE and ctl.r_total > 0.9
    run_healthy(ctl, clock, 3 * 60 + 1)
    assert ctl.posture == APEX


_RAW_INVARIANT = '''
from dolphin.survival.layers import Category, Layer, SensorRole

class RawInvariant(Layer):
    """A plug-in invariant whose target is its reading: NaN or <= 0 means violated."""
    category = Category.INVARIANT
    SENSORS = (SensorRole("x_ok", 1.0),)
    def target(self, now_ns):
        return self.value(0)
    def explain(self, now_ns):
        return f"x_ok {self.value(0)}"
'''


@pytest.mark.parametrize("bad", [math.nan, -1.0, 0.0, -math.inf])
def test_an_invariant_target_nan_or_negative_kills_at_once_and_blocks_rearm(
    bad: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """observe() and rearm() tested ``target == 0.0`` while tick() tested ``not target > 0``: a NaN or
    negative target escaped the synchronous kill, and rearm() returned True and re-killed at once."""
    (tmp_path / "raw_invariant_layer.py").write_text(_RAW_INVARIANT)
    monkeypatch.syspath_prepend(str(tmp_path))
    ctl, clock, _ = make(only(LayerSpec(name="X", path="raw_invariant_layer:RawInvariant")))
    ctl.tick()
    ctl.observe("x_ok", bad)
    assert ctl.killed and ctl.posture == HIBERNATE and ctl.kill_sources == ["X"]  # in the same call
    clock.advance_s(1.0)
    ctl.tick()
    n_kills = len(ctl.log.of_kind("kill"))
    assert not ctl.rearm("operator") and ctl.killed
    assert ctl.log.events[-1].kind == "rearm_denied" and len(ctl.log.of_kind("kill")) == n_kills
    ctl.observe("x_ok", 1.0)
    assert ctl.rearm("operator") and not ctl.killed


def _cap_case(with_rtt: bool) -> tuple[SurvivalController, ManualClock, list]:
    """HIBERNATE with a dwell of 125 s; the scan heartbeat never arrives, so L4 decays through
    turtle_up (0.25) at t = 125 s. At t = 124.9 s R is still 0.2503 (dwell not met yet)."""
    specs = tuple(s for s in SurvivalConfig().layers if s.name in ("L4_scan_heartbeat", "RTT_lockdown"))
    ctl, clock, steps = make(only(*specs), initial="HIBERNATE", dwell_s=125.0)
    for t_ms in range(1000, 125_000, 1000):
        clock.set_ns(t_ms * 1_000_000)
        ctl.tick()
    clock.set_ns(124_900_000_000)
    ctl.tick()
    assert ctl.posture == HIBERNATE and ctl.r_pct == 25
    clock.set_ns(125_500_000_000)  # the dwell is met now, and the true R is 0.2486 (< turtle_up)
    if with_rtt:
        ctl.observe("order_rtt_ms", 50.0)  # a lockdown: cap TURTLE -> a cap step
    return ctl, clock, steps


def test_a_tighter_cap_between_ticks_never_upgrades_on_the_last_ticks_r_total() -> None:
    """The cap step ran the Schmitt trigger with the previous tick's R_total: with the dwell due
    it left HIBERNATE for TURTLE although R_total had dropped below turtle_up meanwhile."""
    ctl, clock, steps = _cap_case(with_rtt=True)
    assert ctl.layers[1].locked and steps[-1].cause == 2 and not steps[-1].dwell_ok
    assert ctl.posture == HIBERNATE
    for t in (126, 130, 140, 150, 200):
        clock.set_ns(t * NS_PER_S)
        ctl.tick()
        assert ctl.posture == HIBERNATE
    ref, ref_clock, _ = _cap_case(with_rtt=False)
    ref_clock.set_ns(126 * NS_PER_S)
    ref.tick()
    assert ref.posture == HIBERNATE


_cap_op = st.one_of(
    st.tuples(st.just("adv"), st.sampled_from([0.1, 1.0, 5.0, 30.0, 61.0])),
    st.tuples(st.just("rtt"), st.sampled_from([5.0, 50.0, math.nan])),
    st.tuples(st.just("dd"), st.floats(0.0, 0.5)),
    st.tuples(st.just("tick")),
)


@given(st.sampled_from(["APEX", "STALKER", "TURTLE", "HIBERNATE"]), st.lists(_cap_op, max_size=60))
def test_property_a_cap_step_only_tightens(initial: str, ops: list) -> None:
    """Whatever the sequence of readings and ticks, a step caused by a tighter cap (cause 2) never
    leaves a less restrictive posture than before it (upgrades need a tick's fresh R_total)."""
    specs = tuple(s for s in SurvivalConfig().layers if s.name in ("L9_drawdown", "RTT_lockdown", "L5_order_book"))
    ctl, clock, steps = make(only(*specs), initial=initial, dwell_s=1.0)
    for op in ops:
        if op[0] == "adv":
            clock.advance_s(op[1])
        elif op[0] == "rtt":
            ctl.observe("order_rtt_ms", op[1])
        elif op[0] == "dd":
            ctl.observe("drawdown_frac", op[1])
        else:
            ctl.observe("book_update", 0.0)
            ctl.tick()
    for rec in steps:
        if rec.cause == 2:
            assert rec.after >= rec.before and not rec.dwell_ok


# ------------------------------------------------------------------ plug-ins and config


def test_a_layer_loaded_by_import_path_needs_no_controller_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_survival_layers.py").write_text(
        textwrap.dedent(
            """
            from dolphin.core.config import ConfigStruct
            from dolphin.survival.layers import Category, Layer, SensorRole

            class FundingSpikeLayer(Layer):
                class Options(ConfigStruct):
                    gain: float = 2.0
                category = Category.ENVIRONMENTAL
                SENSORS = (SensorRole("funding_spike", 0.0),)
                def target(self, now_ns):
                    return 1.0 - self.options.gain * self.value(0)
                def explain(self, now_ns):
                    return f"funding spike {self.value(0)}"

            class NotALayer:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = LayerSpec(name="custom", path="my_survival_layers:FundingSpikeLayer", options={"gain": 4.0})
    ctl, clock, _ = make(only(spec))
    ctl.observe("funding_spike", 0.1)
    clock.advance_s(1.0)
    ctl.tick()
    assert math.isclose(ctl.r_total, 0.6) and math.isclose(ctl.category_mult[Category.ENVIRONMENTAL], 0.6)
    ctl.observe("funding_spike", -1.0)  # target 5.0 is clipped to 1
    clock.advance_s(3600.0)
    ctl.tick()
    assert ctl.r_total == 1.0
    ctl.observe("funding_spike", math.nan)  # NaN target counts as 0
    ctl.tick()
    assert ctl.r_total == 0.0 and ctl.posture == HIBERNATE and not ctl.killed
    with pytest.raises(ConfigError, match="not a Layer subclass"):
        make(only(LayerSpec(name="x", path="my_survival_layers:NotALayer")))
    with pytest.raises(ConfigError, match="No module named"):
        make(only(LayerSpec(name="x", path="no_such_module_zz:X")))
    with pytest.raises(ConfigError, match="options"):
        make(only(LayerSpec(name="x", path="my_survival_layers:FundingSpikeLayer", options={"bogus": 1.0})))
    with pytest.raises(ConfigError, match="sensor role 'nope'"):
        make(only(LayerSpec(name="x", path=B + "DrawdownLayer", deadbands={"nope": 1.0})))


def test_config_rejects_bad_thresholds_and_layers() -> None:
    with pytest.raises(ConfigError, match="multiple of 0.01"):
        PostureConfig(apex_down=0.855).validate()
    with pytest.raises(ConfigError, match="hysteresis"):
        PostureConfig(apex_down=0.9, apex_up=0.9).validate()
    with pytest.raises(ConfigError, match="ordered"):
        PostureConfig(stalker_down=0.86, stalker_up=0.87, apex_down=0.85, apex_up=0.92).validate()
    with pytest.raises(ConfigError, match="stalker_leverage"):
        PostureConfig(stalker_leverage=7.0).validate()
    spec = LayerSpec(name="a", path=B + "DrawdownLayer")
    with pytest.raises(ConfigError, match="duplicate"):
        SurvivalConfig(layers=(spec, spec)).validate()
    with pytest.raises(ConfigError, match="module:ClassName"):
        SurvivalConfig(layers=(LayerSpec(name="a", path="nocolon"),)).validate()


def test_layer_sensor_rename_and_deadband_override() -> None:
    spec = LayerSpec(name="dd", path=B + "DrawdownLayer", sensors={"drawdown_frac": "book_dd"}, deadbands={"drawdown_frac": 0.05})
    ctl, clock, _ = make(only(spec))
    ctl.observe("book_dd", 0.04)
    clock.advance_s(1.0)
    ctl.tick()
    assert ctl.r_total == 1.0


# ------------------------------------------------------------------ properties

_sensor_names = sorted(
    {"grid_members", "grid_heartbeat", "ledger_ok", "mcf_zone", "scan_heartbeat", "book_update", "book_jitter_ms",
     "book_depth_ratio", "slippage_drift_bps", "drawdown_frac", "exf_shock", "esof_shock", "order_rtt_ms",
     "acb_funding_lag5d_frac", "acb_taker_ratio_lag1d", "acb_dvol", "acb_dvol_prev", "acb_fear_greed"}
)  # fmt: skip
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1.0, max_value=2.0),
    st.sampled_from([0.0, 1.0, 3.0]),
)
_event = st.tuples(st.floats(min_value=0.0, max_value=600.0), st.sampled_from(_sensor_names), _values, st.booleans())


@settings(max_examples=60)
@given(st.lists(_event, min_size=1, max_size=60))
def test_property_r_total_in_unit_interval_and_recovery_never_faster_than_configured(events: list) -> None:
    ctl, clock, _ = make(initial="APEX")
    feed_healthy(ctl)
    rates = [spec.recovery_per_min / 60.0 for spec in ctl.cfg.layers]
    for dt_s, name, value, do_tick in events:
        clock.advance_s(dt_s)
        ctl.observe(name, value)
        if not do_tick:
            continue
        before = list(ctl.damped)
        r_before, t_before = ctl.r_total, ctl._last_eval_ns
        ctl.tick()
        dt = (clock.now_ns() - t_before) / NS_PER_S
        assert 0.0 <= ctl.r_total <= 1.0
        for k, layer in enumerate(ctl.layers):
            assert 0.0 <= ctl.damped[k] <= 1.0
            if layer.category != Category.INVARIANT:
                assert ctl.damped[k] - before[k] <= rates[k] * dt + 1e-12
        if not ctl.killed:
            assert ctl.r_total - r_before <= sum(rates) * dt + 1e-9
        else:
            assert ctl.r_total == 0.0


_stale_sensors = ("grid_heartbeat", "ledger_ok", "mcf_zone", "scan_heartbeat", "book_update")


@given(
    st.sampled_from(_stale_sensors),
    st.floats(min_value=0.0, max_value=20_000.0),
    st.floats(min_value=0.0, max_value=20_000.0),
    st.dictionaries(st.sampled_from(["book_jitter_ms", "book_depth_ratio", "drawdown_frac", "mcf_zone", "slippage_drift_bps"]),
                    st.floats(min_value=0.0, max_value=2.0)),
)  # fmt: skip
def test_property_r_total_non_increasing_in_every_staleness(sensor: str, s1: float, s2: float, others: dict) -> None:
    fresh, stale = min(s1, s2), max(s1, s2)
    horizon_s = 30_000.0

    def healthy(name: str) -> float:
        return {"ledger_ok": 1.0, "mcf_zone": others.get("mcf_zone", 0.0)}.get(name, 0.0)

    def r_at(staleness_s: float) -> float:
        ctl, clock, _ = make(initial="APEX")
        feed_healthy(ctl, **others)
        clock.set_ns(round((horizon_s - staleness_s) * NS_PER_S))
        ctl.observe(sensor, healthy(sensor))
        clock.set_ns(round(horizon_s * NS_PER_S))
        for name in _stale_sensors:
            if name != sensor:
                ctl.observe(name, healthy(name))
        ctl.tick()
        return ctl.r_total

    assert r_at(stale) <= r_at(fresh)


@given(st.sampled_from(["ledger_ok", "grid_members"]), st.lists(st.tuples(st.sampled_from(_sensor_names), _values), max_size=10))
def test_property_invariant_violation_gives_exactly_zero(which: str, noise: list) -> None:
    ctl, clock, _ = make(initial="APEX")
    run_healthy(ctl, clock, 2)
    for name, value in noise:
        if name not in ("ledger_ok", "grid_members", "grid_heartbeat"):
            ctl.observe(name, value)
    ctl.observe(which, 0.0)
    assert ctl.r_total == 0.0 and ctl.posture == HIBERNATE and ctl.exposure == 0.0
    clock.advance_s(1.0)
    ctl.tick()
    assert ctl.r_total == 0.0 and ctl.category_mult[Category.INVARIANT] == 0.0


@given(st.lists(st.tuples(st.floats(0.0, 0.2), st.floats(0.0, 50.0), st.floats(0.701, 1.0), st.floats(0.0, 2.0),
                          st.floats(0.0, 0.01), st.floats(0.0, 20.0)), min_size=5, max_size=80))  # fmt: skip
def test_property_noise_inside_every_deadband_changes_nothing(noise: list) -> None:
    ctl, clock, _ = make(initial="APEX")
    feed_healthy(ctl)
    n_events = len(ctl.log.events)
    for age_s, jitter, depth, slip, dd, rtt in noise:
        clock.advance_s(1.0)
        feed_healthy(ctl, book_jitter_ms=jitter, book_depth_ratio=depth, slippage_drift_bps=slip, drawdown_frac=dd)
        ctl.observe("order_rtt_ms", rtt)
        clock.advance_s(age_s)  # book lag inside the 200 ms deadband
        ctl.tick()
        assert ctl.r_total == 1.0 and ctl.posture == APEX
    assert len(ctl.log.events) == n_events


def _dd_for(mult: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if capital_sigmoid_mult(mid, 20.0, 0.2, 0.01) > mult:
            lo = mid
        else:
            hi = mid
    return hi


@given(st.sampled_from([APEX, STALKER]), st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=5, max_size=80))
def test_property_no_posture_change_while_r_stays_inside_the_hysteresis_band(start: int, noise: list) -> None:
    dd_hi, dd_lo = _dd_for(0.851), _dd_for(0.919)  # drawdowns that keep R in [0.851, 0.919]
    ctl, clock, _ = make(initial="APEX", dwell_s=0.0)
    run_healthy(ctl, clock, 1)
    if start == STALKER:
        run_healthy(ctl, clock, 1, drawdown_frac=_dd_for(0.80))
        assert ctl.posture == STALKER
        run_healthy(ctl, clock, 600, drawdown_frac=dd_hi)  # recover into the band
    n_posture = len(ctl.log.of_kind("posture"))
    for u in noise:
        run_healthy(ctl, clock, 7, drawdown_frac=dd_lo + (dd_hi - dd_lo) * u)
        assert 0.85 <= ctl.r_total < 0.92
        assert ctl.posture == start
    assert len(ctl.log.of_kind("posture")) == n_posture


def test_config_round_trips_through_toml_overrides() -> None:
    from dolphin.core.config import load_config

    cfg = load_config(environ={"DOLPHIN__SURVIVAL__POSTURE__APEX_UP": "0.95"})
    assert cfg.survival.posture.apex_up == 0.95 and len(cfg.survival.layers) == 11
    assert msgspec.json.decode(msgspec.json.encode(cfg.survival), type=SurvivalConfig) == cfg.survival


def test_controller_accepts_an_injected_clock_only() -> None:
    clock = ManualClock(123)
    ctl = SurvivalController(SurvivalConfig(), clock)  # no step recorder
    assert ctl.board.start_ns == 123 and ctl.layer_multipliers()["ACB_v6"] == 1.0
    clock.advance_s(1.0)
    ctl.tick()
    assert ctl.posture == HIBERNATE and 0.8 < ctl.r_total < 1.0  # the book feed is 1 s old: past its deadband


# ------------------------------------------------------------------ quiet ticks (skipped evaluation)

_QUIET_LAYERS = ("L1_grid_quorum", "L6_slippage_drift", "L7_external_factors", "ACB_v6", "L9_drawdown", "RTT_lockdown")
_QUIET_SENSORS = ("grid_members", "grid_heartbeat", "slippage_drift_bps", "exf_shock", "acb_dvol", "drawdown_frac",
                  "order_rtt_ms")  # fmt: skip


def _quiet_pair(names: tuple[str, ...], initial: str, dwell_s: float):
    """Two controllers on one clock: ``fast`` may skip quiet ticks, ``ref`` (an on_step observer
    is set) evaluates every tick in full."""
    specs = tuple(s for s in SurvivalConfig().layers if s.name in names)
    cfg = msgspec.structs.replace(only(*specs), posture=msgspec.structs.replace(
        PostureConfig(), initial=initial, min_upgrade_dwell_s=dwell_s))  # fmt: skip
    clock = ManualClock(0)
    fast = SurvivalController(cfg, clock)
    ref = SurvivalController(cfg, clock, on_step=lambda rec: None)
    return fast, ref, clock


def _state(ctl: SurvivalController) -> tuple:
    return (ctl.r_total, ctl.r_pct, ctl.posture, ctl.cap, ctl.killed, ctl.exposure, tuple(ctl.damped),
            tuple(ctl.category_mult), tuple(layer.cap for layer in ctl.layers), ctl._last_eval_ns,
            [msgspec.structs.astuple(e) for e in ctl.log.events])  # fmt: skip


def test_quiet_ticks_are_skipped_and_change_nothing() -> None:
    fast, ref, clock = _quiet_pair(("L6_slippage_drift", "L9_drawdown", "RTT_lockdown"), "APEX", 60.0)
    calls = []
    dd = fast.layers[1]
    dd.target = lambda now, _t=dd.target: calls.append(now) or _t(now)  # type: ignore[method-assign]
    for ctl in (fast, ref):
        ctl.tick()
    assert fast._quiet_until_ns > 0 and len(calls) == 1
    for _ in range(5):  # nothing read, nothing damped: skipped, only the evaluation time moves
        clock.advance_s(300.0)
        fast.tick(), ref.tick()
        assert _state(fast) == _state(ref)
    assert len(calls) == 1 and fast._last_eval_ns == clock.now_ns()
    for ctl in (fast, ref):  # a reading: the next tick is a full one
        ctl.observe("order_rtt_ms", 5.0)
    clock.advance_s(1.0)
    fast.tick(), ref.tick()
    assert len(calls) == 2 and _state(fast) == _state(ref)
    rtt = fast.layers[2]  # quiet until the sample leaves the 5 s window, then quiet for good
    assert fast._quiet_until_ns == rtt._samples[0][0] + 5 * NS_PER_S
    clock.advance_s(3.0)
    fast.tick(), ref.tick()
    assert len(calls) == 2
    clock.advance_s(1.0)  # exactly at the edge (sample time + 5 s): still inside the window
    fast.tick(), ref.tick()
    assert len(calls) == 2
    clock.advance_s(0.5)
    fast.tick(), ref.tick()
    assert len(calls) == 3 and _state(fast) == _state(ref) and not rtt._samples
    fast.on_step = lambda rec: None  # an observer wants every step: no skipping
    clock.advance_s(1.0)
    fast.tick()
    assert len(calls) == 4


def test_no_quiet_tick_while_recovering_killed_or_waiting_for_the_dwell() -> None:
    fast, ref, clock = _quiet_pair(("L1_grid_quorum", "L9_drawdown"), "TURTLE", 60.0)
    for ctl in (fast, ref):
        ctl.observe("grid_members", 3.0)
        ctl.observe("drawdown_frac", 0.3)
        ctl.tick()
    assert fast._quiet_until_ns < 0  # the grid heartbeat ages: L1 is never quiet
    fast, ref, clock = _quiet_pair(("L9_drawdown",), "TURTLE", 60.0)
    for ctl in (fast, ref):
        ctl.tick()  # R = 1 at TURTLE: an upgrade waits for the dwell
    assert not fast._stable and fast._quiet_until_ns < 0
    clock.advance_s(60.0)
    fast.tick(), ref.tick()
    assert fast.posture == STALKER and not fast._stable and _state(fast) == _state(ref)
    for ctl in (fast, ref):
        ctl.observe("drawdown_frac", 0.5)
        ctl.tick()
        ctl.observe("drawdown_frac", 0.0)
    clock.advance_s(1.0)
    fast.tick(), ref.tick()
    assert fast.damped[0] < 1.0 and fast._quiet_until_ns < 0  # recovering slowly: every tick counts
    assert _state(fast) == _state(ref)
    for ctl in (fast, ref):
        ctl.kill("test")
    clock.advance_s(1.0)
    fast.tick(), ref.tick()
    assert fast._quiet_until_ns < 0 and _state(fast) == _state(ref)
    assert fast.rearm("ok") and ref.rearm("ok") and _state(fast) == _state(ref)


_quiet_op = st.one_of(
    st.tuples(st.just("adv"), st.sampled_from([0.0, 0.5, 1.0, 4.9, 5.0, 5.1, 30.0, 60.0, 300.0, 4000.0])),
    st.tuples(st.just("obs"), st.sampled_from(_QUIET_SENSORS),
              st.sampled_from([0.0, 0.5, 1.0, 3.0, 5.0, 12.0, 25.0, 95.0, 0.005, 0.05, 0.15, 0.3, float("nan")])),
    st.tuples(st.just("tick")),
    st.tuples(st.just("kill")),
    st.tuples(st.just("rearm")),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    names=st.sets(st.sampled_from(_QUIET_LAYERS), min_size=1).map(lambda s: tuple(sorted(s))),
    initial=st.sampled_from(["APEX", "STALKER", "TURTLE", "HIBERNATE"]),
    dwell_s=st.sampled_from([0.0, 1.0, 60.0]),
    ops=st.lists(_quiet_op, max_size=60),
)
def test_property_skipping_quiet_ticks_equals_full_evaluation(names: tuple, initial: str, dwell_s: float, ops: list) -> None:
    fast, ref, clock = _quiet_pair(names, initial, dwell_s)
    for op in ops:
        if op[0] == "adv":
            clock.advance_s(op[1])
        for ctl in (fast, ref):
            if op[0] == "obs" and op[1] in ctl.board.index:
                ctl.observe(op[1], op[2])
            elif op[0] == "tick":
                ctl.tick()
            elif op[0] == "kill":
                ctl.kill("generated")
            elif op[0] == "rearm":
                ctl.rearm("generated")
        assert _state(fast) == _state(ref)


def test_a_reading_that_keeps_every_target_keeps_the_controller_quiet() -> None:
    fast, ref, clock = _quiet_pair(("L6_slippage_drift", "L9_drawdown"), "APEX", 60.0)
    calls = []
    dd = fast.layers[1]
    dd.target = lambda now, _t=dd.target: calls.append(now) or _t(now)  # type: ignore[method-assign]
    for ctl in (fast, ref):
        ctl.tick()
    quiet = fast._quiet_until_ns
    for v in (0.005, 0.01, 0.0):  # inside the L9 deadband: the target stays 1.0
        for ctl in (fast, ref):
            ctl.observe("drawdown_frac", v)
        assert fast._quiet_until_ns == quiet
        clock.advance_s(300.0)
        fast.tick(), ref.tick()
        assert _state(fast) == _state(ref)
    assert len(calls) == 1 + 3  # evaluated once per reading, never by a tick
    for ctl in (fast, ref):
        ctl.observe("drawdown_frac", 0.1)  # a new target: the next tick is a full one
    assert fast._quiet_until_ns < 0
    clock.advance_s(300.0)
    fast.tick(), ref.tick()
    assert _state(fast) == _state(ref) and len(calls) == 1 + 3 + 2
    for ctl in (fast, ref):
        ctl.observe("drawdown_frac", float("nan"))  # NaN never compares equal: not quiet
    assert fast._quiet_until_ns < 0
    clock.advance_s(300.0)
    fast.tick(), ref.tick()
    assert _state(fast) == _state(ref)
