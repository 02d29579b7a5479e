"""Impossible inputs: bad fills, out-of-range readings, unsafe config, negative clock times,
scenarios the replay cannot run. Each is the worst case, a counted event or a named error;
never a healthy reading, a NaN carried forward, or a hang."""

from __future__ import annotations

import math
import re

import msgspec
import pytest
from _survival_support import feed_healthy, make, only
from hypothesis import given
from hypothesis import strategies as st

from dolphin.core.config import ConfigError
from dolphin.survival.clock import NS_PER_S, ManualClock
from dolphin.survival.config import LayerSpec, PostureConfig, SizerConfig, SurvivalConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.kernels import gradient_mult
from dolphin.survival.layers.base import Valid, reading_ok
from dolphin.survival.layers.builtin import SLIPPAGE_INVALID_HOLD_FILLS, SLIPPAGE_MAX_BPS, SlippageTracker
from dolphin.survival.posture import HIBERNATE
from dolphin.survival.replay import Feed, Scenario, load_scenario, run_replay

B = "dolphin.survival.layers.builtin:"


def _l6(reading: float) -> float:  # the shipped L6: deadband 2 bps, span 20 bps, floor 0.3
    return gradient_mult(reading, 2.0, 20.0, 0.3)


# ------------------------------------------------------------------ slippage tracker (L6 feed)

_BAD_FILLS = [
    (1, 1000.0, 100.0),  # expected price 10x off: -9000 bps, "favourable"
    (-1, 0.01, 100.0),  # a bad quote: -1e8 bps
    (1, 100.0, -math.inf),
    (1, 100.0, math.inf),
    (1, 100.0, math.nan),
    (1, math.nan, 100.0),
    (1, 0.0, 100.0),
    (1, 100.0, 0.0),
    (0, 100.0, 100.5),  # no side
    (1, 100.0, 125.0),  # +2500 bps: not slippage, a wrong price
]


@pytest.mark.parametrize("fill", _BAD_FILLS)
def test_an_invalid_fill_never_enters_the_average_and_reads_worst_case_for_a_while(fill: tuple) -> None:
    """One absurd fill used to blind L6 (drift -1800 bps: 16 adverse fills at 50 bps read 1.0) or
    poison it (a realised inf/NaN: L6 1.0 at once, then NaN for good)."""
    tr = SlippageTracker()
    assert tr.on_fill(1, 100.0, 100.02) == pytest.approx(0.4)  # one valid fill, 2 bps adverse
    reading = tr.on_fill(*fill)
    assert reading == SLIPPAGE_MAX_BPS and _l6(reading) == 0.3  # unknown slippage is the worst case
    assert tr.invalid_fills == 1 and tr.fills == 1 and tr.drift_bps == pytest.approx(0.4)
    assert "1 invalid fills" in tr.explain()
    for k in range(SLIPPAGE_INVALID_HOLD_FILLS):  # perfect fills: held at the worst case, then the average
        reading = tr.on_fill(1, 100.0, 100.0)
        assert math.isfinite(tr.drift_bps)
        assert (reading == SLIPPAGE_MAX_BPS) == (k < SLIPPAGE_INVALID_HOLD_FILLS - 1)
    assert reading == tr.drift_bps < 0.4 and _l6(reading) == 1.0
    for _ in range(3):  # adverse fills are seen at once: nothing masks them
        reading = tr.on_fill(1, 100.0, 100.5)
        assert _l6(reading) < 1.0


def test_slippage_tracker_rejects_a_bad_hold() -> None:
    with pytest.raises(ValueError, match="hold_fills"):
        SlippageTracker(hold_fills=0)


_price = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(90.0, 110.0), st.sampled_from([100.0, 0.0, 1e-300]))
_fill = st.tuples(st.sampled_from([1, -1, 0, 2]), _price, _price)


@given(st.lists(_fill, max_size=40))
def test_property_slippage_reading_is_finite_in_range_and_adverse_fills_are_never_masked(fills: list) -> None:
    """After any fills (NaN, inf, zero, absurd prices, bad sides) the drift is finite, the reading
    is one L6 accepts, and once the hold has passed adverse 50 bps fills are never read as healthy
    unless valid favourable fills really came before them."""
    tr = SlippageTracker()
    for side, exp_px, real_px in fills:
        reading = tr.on_fill(side, exp_px, real_px)
        assert math.isfinite(tr.drift_bps) and abs(tr.drift_bps) <= SLIPPAGE_MAX_BPS
        assert reading_ok(reading, Valid(-SLIPPAGE_MAX_BPS, SLIPPAGE_MAX_BPS))
    for _ in range(SLIPPAGE_INVALID_HOLD_FILLS):
        tr.on_fill(1, 100.0, 100.0)
    assert tr.reading_bps == tr.drift_bps
    adverse = [tr.on_fill(1, 100.0, 100.5) for _ in range(30)]
    assert _l6(adverse[-1]) == 0.3  # 30 adverse fills reach the floor from any valid history
    if tr.drift_bps >= 0.0 and all(not (0.0 < e < math.inf and 0.0 < r < math.inf) for _, e, r in fills):
        assert all(_l6(x) < 1.0 for x in adverse)  # only invalid fills before: nothing masks the first


# ------------------------------------------------------------------ out-of-range readings


def _one(name: str) -> tuple[SurvivalController, ManualClock]:
    specs = tuple(s for s in SurvivalConfig().layers if s.name == name)
    ctl, clock, _ = make(only(*specs), initial="APEX")
    clock.advance_s(0.1)
    return ctl, clock


_GARBAGE = [
    ("L1_grid_quorum", "grid_members", [math.inf, -1.0, -math.inf]),
    ("L2_ledger_integrity", "ledger_ok", [math.inf, 7.3, 0.5, -1.0]),
    ("L3_mc_forewarner", "mcf_zone", [-1.0, -1e300, math.inf, 0.4, 3.0]),
    ("L5_order_book", "book_jitter_ms", [-math.inf, -5.0, math.inf]),
    ("L5_order_book", "book_depth_ratio", [math.inf, -0.5, -math.inf]),
    ("L6_slippage_drift", "slippage_drift_bps", [-math.inf, math.inf, -1e6]),
    ("L7_external_factors", "exf_shock", [-math.inf, -1.0, math.inf]),
    ("L9_drawdown", "drawdown_frac", [-math.inf, -0.1, 1.5, math.inf]),
    ("ACB_v6", "acb_dvol", [-math.inf, -5.0, math.inf]),
    ("ACB_v6", "acb_dvol_prev", [math.inf, -1.0]),
    ("ACB_v6", "acb_taker_ratio_lag1d", [math.inf, -0.2]),
    ("ACB_v6", "acb_funding_lag5d_frac", [math.inf, -math.inf]),
    ("ACB_v6", "acb_fear_greed", [-1.0, 101.0, math.inf]),
]


def _after(name: str, sensor: str, value: float) -> tuple[float, bool, SurvivalController]:
    ctl, clock = _one(name)
    for s in ctl.board.index:  # everything else fresh and healthy
        if s != sensor and s in ("grid_heartbeat", "book_update", "mcf_zone", "ledger_ok", "scan_heartbeat"):
            ctl.observe(s, 1.0 if s == "ledger_ok" else 0.0)
    ctl.observe(sensor, value)
    ctl.tick()
    return ctl.layers[0].target(clock.now_ns()), ctl.killed, ctl


@pytest.mark.parametrize(("name", "sensor", "values"), _GARBAGE)
def test_an_impossible_reading_is_the_worst_case_and_counted(name: str, sensor: str, values: list) -> None:
    """Impossible readings were taken as healthy (inf members, a ledger flag of 7.3, zone -1,
    negative jitter, infinite depth, drift -inf, drawdown -inf, DVOL -5, ...): each now reads as
    NaN, the worst case every layer already had for an unknown reading, and is counted."""
    worst, worst_killed, _ = _after(name, sensor, math.nan)
    for v in values:
        t, killed, ctl = _after(name, sensor, v)
        assert t == worst and killed == worst_killed, (v, t, worst)
        assert t < 1.0 or worst_killed or sensor == "acb_fear_greed"  # (no fear & greed weight by default)
        layer = ctl.layers[0]
        assert layer.invalid_readings == 1 and "1 invalid readings" in layer.explain(ctl._clock.now_ns())


@given(st.sampled_from([(n, s) for n, s, _ in _GARBAGE]), st.floats(allow_nan=True, allow_infinity=True))
def test_property_a_reading_outside_its_range_equals_an_unknown_one(case: tuple, value: float) -> None:
    """For any float: a reading outside the role's valid range gives exactly the NaN (worst case)
    target and counts one invalid reading; a valid one is counted as nothing."""
    name, sensor = case
    t, killed, ctl = _after(name, sensor, value)
    i = ctl.sensor_index(sensor)
    if ctl.board.ok[i]:
        assert ctl.board.invalid[i] == 0
    else:
        assert ctl.board.invalid[i] == 1
        assert (t, killed) == _after(name, sensor, math.nan)[:2]


def test_invalid_invariant_readings_kill_with_a_reason() -> None:
    _, killed, ctl = _after("L2_ledger_integrity", "ledger_ok", 7.3)
    assert killed and "INVALID READING 7.3" in ctl.kill_reason
    _, killed, ctl = _after("L1_grid_quorum", "grid_members", math.inf)
    assert killed and "INVALID READING" in ctl.kill_reason and ctl.posture == HIBERNATE


def test_valid_readings_are_unchanged() -> None:
    assert _after("L2_ledger_integrity", "ledger_ok", 1.0)[0] == 1.0
    assert _after("L3_mc_forewarner", "mcf_zone", 1.0)[0] == 0.75
    assert _after("L3_mc_forewarner", "mcf_zone", 2.0)[0] == 0.35
    assert _after("L9_drawdown", "drawdown_frac", 1.0)[0] > 0.0  # a total drawdown is a valid reading
    assert _after("ACB_v6", "acb_funding_lag5d_frac", -0.00005)[0] == pytest.approx(1.0 - 0.075)


_NO_NUMBER = [None, "high", b"?", object(), [1.0], 1j, 10**400]  # float() raises TypeError / ValueError / OverflowError
_READERS = [(n, s) for n, s, _ in _GARBAGE] + [("RTT_lockdown", "order_rtt_ms"), ("L4_scan_heartbeat", "scan_heartbeat")]


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


@given(st.sampled_from(_READERS), st.one_of(st.none(), st.text(max_size=8), st.binary(max_size=4), st.integers(),
                                           st.booleans(), st.sampled_from(_NO_NUMBER)))  # fmt: skip
def test_property_a_reading_that_is_no_number_is_converted_or_unknown(case: tuple, value: object) -> None:
    """A reading that is not a float: one float() converts reads exactly as that float; any other
    (None, text, an object, an int too large for a float) is stored as NaN, counted as invalid and
    reads as the worst case. None was stored as it was with ok=True; the range check raised
    TypeError and every later tick raised inside the layer (fail-open, 2026-12-06)."""
    name, sensor = case
    t, killed, ctl = _after(name, sensor, value)
    i = ctl.sensor_index(sensor)
    as_float = _float_or_none(value)
    assert type(ctl.board.values[i]) is float
    if as_float is None:
        assert math.isnan(ctl.board.values[i]) and not ctl.board.ok[i] and ctl.board.invalid[i] == 1
        assert (t, killed) == _after(name, sensor, math.nan)[:2]
    else:
        ref_t, ref_killed, ref = _after(name, sensor, as_float)
        assert (t, killed) == (ref_t, ref_killed) and ctl.board.invalid[i] == ref.board.invalid[i]
    ctl._clock.advance_s(1.0)
    ctl.tick()  # the controller keeps working


def test_a_none_reading_lowers_r_total_and_leaves_the_kill_path_working() -> None:
    """The review's case: drawdown None at APEX wedged the controller (every tick raised, APEX and
    full size held while every feed went stale). Now L9 reads it as unknown (0) and stale
    invariants still kill; a None heartbeat is counted and still arrived."""
    ctl, clock, _ = make(initial="APEX", dwell_s=0.0)
    feed_healthy(ctl)
    ctl.tick()
    assert ctl.posture_name == "APEX"
    ctl.observe("drawdown_frac", None)  # type: ignore[arg-type]
    i = ctl.sensor_index("drawdown_frac")
    assert math.isnan(ctl.board.values[i]) and not ctl.board.ok[i] and ctl.board.invalid[i] == 1
    assert "1 invalid readings" in ctl.layers[8].explain(clock.now_ns())
    clock.advance_s(1.0)
    ctl.tick()
    assert ctl.damped[8] == 0.0 and ctl.r_total == 0.0 and ctl.posture == HIBERNATE and not ctl.killed
    ctl.observe("scan_heartbeat", None)  # type: ignore[arg-type]
    j = ctl.sensor_index("scan_heartbeat")
    assert ctl.board.invalid[j] == 1 and ctl.board.ts_ns[j] == clock.now_ns()
    clock.advance_s(600.0)  # no feed at all: the stale invariants kill
    ctl.tick()
    assert ctl.killed and ctl.posture == HIBERNATE
    ctl.observe("order_rtt_ms", None)  # type: ignore[arg-type]  # a sample-hungry layer sees NaN, not None
    assert ctl.layers[-1].invalid_samples == 1


# ------------------------------------------------------------------ config that switches protection off


def test_posture_turtle_down_zero_is_rejected() -> None:
    """turtle_down = 0: no R_total reaches HIBERNATE (R_total = 0 stayed TURTLE)."""
    with pytest.raises(ConfigError, match=r"'survival.posture.turtle_down' = 0.0 is not allowed: must be > 0"):
        PostureConfig(turtle_down=0.0, turtle_up=0.01).validate()


@pytest.mark.parametrize(
    ("path", "key", "value", "rule"),
    [
        ("ExternalFactorsLayer", "depth", 5.0, "<= 1.0"),
        ("EsotericFactorsLayer", "depth", 1.5, "<= 1.0"),
        ("McForewarnerLayer", "red_mult", 3.0, "<= 1.0"),
        ("McForewarnerLayer", "orange_mult", 3.0, "<= 1.0"),
        ("GridQuorumLayer", "max_heartbeat_age_s", math.inf, "finite"),
        ("LedgerIntegrityLayer", "max_age_s", math.inf, "finite"),
    ],
)
def test_layer_options_that_switch_protection_off_are_rejected(path: str, key: str, value: float, rule: str) -> None:
    spec = LayerSpec(name="L", path=B + path, options={key: value})
    with pytest.raises(ConfigError, match=rf"config key 'survival.layers.*{key}' = {value!r} is not allowed.*{rule}"):
        SurvivalController(only(spec), ManualClock(0))


@pytest.mark.parametrize(
    "cfg",
    [
        SurvivalConfig(posture=PostureConfig(min_upgrade_dwell_s=math.inf)),
        SurvivalConfig(sizer=SizerConfig(venue_max_notional=math.inf)),
        only(LayerSpec(name="dd", path=B + "DrawdownLayer", deadbands={"drawdown_frac": math.inf})),
        only(LayerSpec(name="dd", path=B + "DrawdownLayer", sensitivity=math.inf)),
    ],
)
def test_infinite_config_values_built_in_code_are_rejected(cfg: SurvivalConfig) -> None:
    with pytest.raises(ConfigError, match="= inf is not allowed: must be a finite number"):
        SurvivalController(cfg, ManualClock(0))


# ------------------------------------------------------------------ negative clock times


@pytest.mark.parametrize("start_ns", [0, -3600 * NS_PER_S, -1])
def test_a_shock_at_a_negative_clock_time_is_a_shock(start_ns: int) -> None:
    """-1 marked "no shock yet": a shock at a negative time counted as no shock."""
    specs = tuple(s for s in SurvivalConfig().layers if s.name == "L7_external_factors")
    ctl, clock, _ = make(only(*specs), initial="APEX", start_ns=start_ns)
    assert "no shock" in ctl.layers[0].explain(clock.now_ns())
    clock.advance_s(10.0)
    ctl.observe("exf_shock", 1.0)
    clock.advance_s(1.0)
    ctl.tick()
    assert ctl.damped[0] == pytest.approx(0.3 + 0.7 / 3600) and ctl.posture != "APEX"


def test_rtt_lockdown_clears_after_the_hold_at_negative_clock_times() -> None:
    """-1 also marked "never calm": at negative times the calm hold restarted on every tick."""
    specs = tuple(s for s in SurvivalConfig().layers if s.name == "RTT_lockdown")
    ctl, clock, _ = make(only(*specs), initial="APEX", start_ns=-7200 * NS_PER_S)
    ctl.observe("order_rtt_ms", 50.0)
    rtt = ctl.layers[0]
    assert rtt.locked
    for _ in range(70):
        clock.advance_s(1.0)
        ctl.observe("order_rtt_ms", 5.0)
        ctl.tick()
    assert not rtt.locked and clock.now_ns() < 0


def test_a_replay_is_the_same_at_any_start_time() -> None:
    sc = load_scenario("storm")
    a, b = run_replay(sc), run_replay(sc, start_ns=-20 * 3600 * NS_PER_S)
    assert a.posture == b.posture and a.r_total == b.r_total and a.layers == b.layers


# ------------------------------------------------------------------ scenarios the replay cannot run


@pytest.mark.timeout(30)  # tick_s / every_s = 0 used to hang forever
@pytest.mark.parametrize(
    ("tick_s", "every_s", "duration_s", "match"),
    [
        (0.0, 1.0, 10.0, r"tick_s = 0.0 is not allowed"),
        (-1.0, 1.0, 10.0, r"tick_s = -1.0 is not allowed"),
        (math.nan, 1.0, 10.0, r"tick_s = nan is not allowed"),
        (1.0, 0.0, 10.0, r"feeds\[0\] \(drawdown_frac\).every_s = 0.0 is not allowed: must be a finite number of seconds > 0"),
        (1.0, -1.0, 10.0, r"every_s = -1.0 is not allowed"),
        (1.0, 1e-12, 10.0, r"every_s = 1e-12 is not allowed"),
        (1.0, 1.0, -5.0, r"duration_s = -5.0 is not allowed"),
        (1.0, 1.0, math.inf, r"duration_s = inf is not allowed"),
    ],
)
def test_a_scenario_that_cannot_run_is_rejected_with_its_key(tick_s: float, every_s: float, duration_s: float, match: str) -> None:
    raw = {"name": "x", "duration_s": duration_s, "tick_s": tick_s,
           "feeds": [{"sensor": "drawdown_frac", "value": 0.0, "every_s": every_s}]}  # fmt: skip
    sc = msgspec.convert(raw, Scenario)
    with pytest.raises(ValueError, match=r"scenario 'x': .*" + match):
        run_replay(sc)


def test_scenario_actions_and_feed_starts_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = Scenario(name="y", duration_s=10.0, feeds=(Feed(sensor="drawdown_frac", value=0.0, every_s=1.0, from_s=-1.0),))
    with pytest.raises(ValueError, match=r"from_s = -1.0 is not allowed"):
        run_replay(bad)
    f = tmp_path / "s.toml"
    f.write_text('name = "z"\nduration_s = 10\ntick_s = 1\nactions = [{ at_s = -3, kind = "kill" }]\n')
    with pytest.raises(ValueError, match=r"actions\[0\].at_s = -3.0 is not allowed"):
        load_scenario(str(f))
    ok = Scenario(name="ok", duration_s=0.0, tick_s=0.001)
    assert run_replay(ok).t_s == []


def test_an_invalid_fill_hold_ends_by_time_as_well_as_by_fills() -> None:
    from dolphin.survival.layers.builtin import SLIPPAGE_MAX_BPS, SlippageTracker

    t = SlippageTracker(hold_fills=5, hold_s=60.0)
    assert t.on_fill(1, 100.0, 1000.0, ts_ns=10**9) == SLIPPAGE_MAX_BPS  # 10x off: invalid
    assert not t.release(10**9 + 59 * 10**9) and t.reading_bps == SLIPPAGE_MAX_BPS
    assert t.release(10**9 + 60 * 10**9) and t.reading_bps == 0.0
    assert not t.release(10**12)  # nothing held any more
    # without a time (tests, tools) only fills end it; a valid fill after the time limit ends it too
    u = SlippageTracker(hold_fills=5, hold_s=60.0)
    u.on_fill(1, 100.0, 1000.0)
    assert not u.release(10**18) and u.reading_bps == SLIPPAGE_MAX_BPS
    v = SlippageTracker(hold_fills=5, hold_s=60.0)
    v.on_fill(1, 100.0, 1000.0, ts_ns=0)
    assert v.on_fill(1, 100.0, 100.01, ts_ns=61 * 10**9) == pytest.approx(0.2 * 1.0)
    with pytest.raises(ValueError, match="hold_s"):
        SlippageTracker(hold_s=float("inf"))


# ------------------------------------------------------------------ a controller with no layers


def test_a_config_with_no_layers_is_rejected_naming_the_key() -> None:
    """layers = () passed validate(); the controller then crashed (min() of no layers) once it was
    stable: 3 s in with a 1 s dwell, 182 s into a backtest with execution.backtest.survival_layers = []."""
    with pytest.raises(ConfigError, match=r"config key 'survival.layers' = \(\) is not allowed: at least one layer"):
        SurvivalConfig(layers=()).validate()
    with pytest.raises(ConfigError, match="survival.layers"):
        SurvivalController(SurvivalConfig(layers=()), ManualClock(0))


def test_the_backtest_wiring_with_no_layers_fails_at_once_with_a_config_error() -> None:
    from dolphin.core.config import DolphinConfig, load_config
    from dolphin.runtime.wiring import backtest_survival_config

    # at load time: none, or an unknown one
    for layers, why in (([], "at least one survival layer"), (["L9_drawdown", "L99"], "not among survival.layers")):
        with pytest.raises(ConfigError, match=f"execution.backtest.survival_layers.*{why}"):
            load_config(environ={}, overrides={"execution": {"backtest": {"survival_layers": layers}}})
    # built in code, and a bar run (no book) left with L5 alone: when the run is wired, not minutes in
    cfg = DolphinConfig()
    for layers in ((), ("L5_order_book",)):
        bt = msgspec.structs.replace(cfg.execution.backtest, survival_layers=layers)
        c = msgspec.structs.replace(cfg, execution=msgspec.structs.replace(cfg.execution, backtest=bt))
        with pytest.raises(ConfigError, match="execution.backtest.survival_layers"):
            backtest_survival_config(c, book=False)
    bt = msgspec.structs.replace(cfg.execution.backtest, survival_layers=("L5_order_book",))
    c = msgspec.structs.replace(cfg, execution=msgspec.structs.replace(cfg.execution, backtest=bt))
    assert [s.name for s in backtest_survival_config(c, book=True).layers] == ["L5_order_book"]


def test_a_controller_with_no_layers_never_crashes_on_the_quiet_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quiet-tick check is safe even where validate() is bypassed: min() has a default."""
    monkeypatch.setattr(SurvivalConfig, "validate", lambda self: None)
    clock = ManualClock(0)
    ctl = SurvivalController(SurvivalConfig(layers=(), posture=PostureConfig(min_upgrade_dwell_s=1.0)), clock)
    for _ in range(6):
        clock.advance_s(1.0)
        ctl.tick()
    assert ctl.posture_name == "APEX" and ctl.r_total == 1.0


# ------------------------------------------------------------------ declared bounds of configs built in code


def _bounded_fields(struct: type) -> list[tuple[str, str, object]]:
    """(field, bound, a value just outside it) for every numeric field of ``struct`` with a
    declared bound (from msgspec's own view of the type: no field is missed)."""
    out = []
    for f in msgspec.inspect.type_info(struct).fields:
        t = f.type.value_type if isinstance(f.type, msgspec.inspect.DictType) else f.type
        if not isinstance(t, (msgspec.inspect.FloatType, msgspec.inspect.IntType)):
            continue
        step = 1 if isinstance(t, msgspec.inspect.IntType) else 1e-9
        for bound, bad in (("ge", lambda b: b - 1.0 * step), ("gt", lambda b: b), ("le", lambda b: b + step),
                           ("lt", lambda b: b)):  # fmt: skip
            b = getattr(t, bound)
            if b is not None:
                value = bad(b)
                out.append((f.name, bound, {"x": value} if isinstance(f.type, msgspec.inspect.DictType) else value))
    return out


_SPEC = LayerSpec(name="dd", path=B + "DrawdownLayer")
_OUT_OF_BOUNDS = (
    [(f"survival.layers[0].{n}", b, SurvivalConfig(layers=(msgspec.structs.replace(_SPEC, **{n: v}),)))
     for n, b, v in _bounded_fields(LayerSpec)]
    + [(f"survival.posture.{n}", b, SurvivalConfig(posture=msgspec.structs.replace(PostureConfig(), **{n: v})))
       for n, b, v in _bounded_fields(PostureConfig)]
    + [(f"survival.sizer.{n}", b, SurvivalConfig(sizer=msgspec.structs.replace(SizerConfig(), **{n: v})))
       for n, b, v in _bounded_fields(SizerConfig)]
    + [(f"survival.{n}", b, msgspec.structs.replace(SurvivalConfig(), **{n: v})) for n, b, v in _bounded_fields(SurvivalConfig)]
)  # fmt: skip


def test_every_bounded_field_is_covered() -> None:
    keys = {k for k, _, _ in _OUT_OF_BOUNDS}
    for key in ("survival.layers[0].sensitivity", "survival.layers[0].floor", "survival.layers[0].deadbands",
                "survival.layers[0].decay_per_s", "survival.layers[0].recovery_per_min", "survival.posture.apex_leverage",
                "survival.posture.turtle_down", "survival.sizer.base_fraction", "survival.tick_ms",
                "survival.layer_event_step"):  # fmt: skip
        assert key in keys, key


@pytest.mark.parametrize(("key", "bound", "cfg"), _OUT_OF_BOUNDS, ids=[f"{k}-{b}" for k, b, _ in _OUT_OF_BOUNDS])
def test_a_config_built_in_code_outside_a_declared_bound_is_rejected(key: str, bound: str, cfg: SurvivalConfig) -> None:
    """The bounds (Fraction, PosFloat, NonNegFloat, Leverage, ...) were checked only when TOML was
    decoded: sensitivity -1, floor 1.5, decay -0.1 or base_fraction 4 built in code switched a
    protection off and passed validate() (2026-12-06)."""
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}' = .* is not allowed: Expected"):
        cfg.validate()
    with pytest.raises(ConfigError, match=re.escape(key)):
        SurvivalController(cfg, ManualClock(0))


def test_the_reviews_code_built_configs_are_rejected_and_valid_ones_unchanged() -> None:
    cases = [
        (only(LayerSpec(name="L9", path=B + "DrawdownLayer", sensitivity=-1.0)), "'survival.layers[0].sensitivity' = -1.0"),
        (only(LayerSpec(name="L6", path=B + "SlippageDriftLayer", floor=1.5)), "'survival.layers[0].floor' = 1.5"),
        (only(LayerSpec(name="L4", path=B + "ScanHeartbeatLayer", decay_per_s=-0.1)), "'survival.layers[0].decay_per_s' = -0.1"),
        (SurvivalConfig(sizer=SizerConfig(base_fraction=4.0)), "'survival.sizer.base_fraction' = 4.0"),
        (SurvivalConfig(posture=PostureConfig(apex_leverage=126.0)), "'survival.posture.apex_leverage' = 126.0"),
        (SurvivalConfig(posture=PostureConfig(initial="BOLD")), "'survival.posture.initial' = 'BOLD'"),  # type: ignore[arg-type]
        (SurvivalConfig(posture=PostureConfig(apex_leverage=True)), "'survival.posture.apex_leverage' = True"),
    ]  # fmt: skip
    for cfg, msg in cases:
        with pytest.raises(ConfigError, match=re.escape(msg)):
            cfg.validate()
    with pytest.raises(ConfigError, match=r"config key 'survival' is not allowed: .*unsupported"):
        SurvivalConfig(tick_ms=object()).validate()  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape("'survival.posture.turtle_up' = 1.5")):
        PostureConfig(turtle_up=1.5).validate()  # the posture alone too
    SurvivalConfig().validate()  # the shipped config, and whole numbers where floats are declared
    SurvivalConfig(posture=PostureConfig(apex_leverage=6, stalker_leverage=2)).validate()
