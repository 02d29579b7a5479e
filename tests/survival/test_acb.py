"""ACB v6: the continuous cut, the v5 ladder as its reference, lags, and real history."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dolphin.survival.acb import (
    ACB_MAX_CUT_FRAC,
    ACB_V5_LADDER_CUT_FRAC,
    FUNDING_LAG_NS,
    AcbInputs,
    AcbThresholds,
    acb_v5_cut_frac,
    acb_v6_cut_frac,
    lagged_values,
    ramp_stress,
    stress_count,
)

from _survival_data import dvol_daily, funding_8h_frac

DAY_NS = 86_400 * 10**9


def test_v6_equals_the_v5_ladder_at_whole_counts() -> None:
    assert ACB_V5_LADDER_CUT_FRAC == (0.0, 0.15, 0.45, 0.55, 0.75, 0.80)
    for n in range(0, 9):
        assert acb_v6_cut_frac(float(n)) == acb_v5_cut_frac(n)
    assert acb_v5_cut_frac(-3) == 0.0


def test_v6_interpolates_between_rungs() -> None:
    assert math.isclose(acb_v6_cut_frac(1.5), 0.30)
    assert math.isclose(acb_v6_cut_frac(4.5), 0.775)
    assert acb_v6_cut_frac(float("nan")) == ACB_MAX_CUT_FRAC
    assert acb_v6_cut_frac(-1.0) == 0.0


@given(st.floats(min_value=-10, max_value=20), st.floats(min_value=-10, max_value=20))
def test_v6_is_monotone_bounded_and_continuous(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert 0.0 <= acb_v6_cut_frac(lo) <= acb_v6_cut_frac(hi) <= ACB_MAX_CUT_FRAC
    # Lipschitz: the steepest rung is 0.30 per signal.
    assert acb_v6_cut_frac(hi) - acb_v6_cut_frac(lo) <= 0.30 * (hi - lo) + 1e-12


def test_stress_count_counts_each_signal_continuously() -> None:
    calm = AcbInputs(funding_lag5d_frac=0.0001, taker_ratio_lag1d=1.05, dvol=45.0, dvol_prev=45.0, fear_greed=60.0)
    assert stress_count(calm) == 0.0
    storm = AcbInputs(funding_lag5d_frac=-0.0002, taker_ratio_lag1d=0.7, dvol=95.0, dvol_prev=60.0, fear_greed=5.0)
    assert stress_count(storm) == 5.0
    half = AcbInputs(funding_lag5d_frac=-0.00005, taker_ratio_lag1d=1.0, dvol=55.0, dvol_prev=55.0, fear_greed=60.0)
    assert math.isclose(stress_count(half), 0.5)
    missing = AcbInputs(math.nan, math.nan, 45.0, 0.0, math.nan)
    assert stress_count(missing) == 4.0  # NaN counts as stressed; dvol_prev 0 -> unknown jump
    assert stress_count(missing, AcbThresholds(funding_weight=0, taker_weight=0, fng_weight=0, dvol_jump_weight=0)) == 0.0
    assert ramp_stress(0.5, 0.0, 1.0) == 0.5


def test_lagged_values_never_look_ahead() -> None:
    ts = np.array([0, 10, 20, 30], dtype=np.int64)
    vals = np.array([1.0, 2.0, 3.0, 4.0])
    out = lagged_values(ts, vals, np.array([5, 25, 35, 100]), lag_ns=10)
    assert np.isnan(out[0]) and out.tolist()[1:] == [2.0, 3.0, 4.0]


def test_acb_over_real_btc_history(shared_data: Path) -> None:
    """Real data: DVOL (daily) and BTCUSDT funding (8 h) 2022-11 .. 2024-12, funding lagged 5 days.

    The FTX collapse (DVOL 76 -> 115 on 2022-11-09) must produce a deep cut; the quiet 2023 summer
    must not; the lag must make the cut independent of funding published in the last 5 days.
    """
    dvol_ts, dvol = dvol_daily(shared_data)
    f_ts, f = funding_8h_frac(shared_data)
    assert np.nanmax(np.abs(f)) < 0.01  # percent converted to a fraction
    q = dvol_ts[1:]
    funding_lag = lagged_values(f_ts, f, q, FUNDING_LAG_NS)
    th = AcbThresholds(taker_weight=0.0, fng_weight=0.0)  # no taker/fng history here
    cuts = np.array(
        [
            acb_v6_cut_frac(stress_count(AcbInputs(funding_lag[i], 1.0, dvol[i + 1], dvol[i]), th))
            for i in range(len(q))
        ]
    )
    assert np.all((cuts >= 0.0) & (cuts <= ACB_MAX_CUT_FRAC))
    ftx = int(np.searchsorted(q, 1667952000000 * 1_000_000))  # 2022-11-09
    assert dvol[ftx + 1] > 100 and cuts[ftx] >= 0.45
    summer = (q >= 1688169600000 * 1_000_000) & (q < 1690848000000 * 1_000_000)  # 2023-07
    assert summer.sum() >= 28 and np.median(cuts[summer]) <= 0.15
    # Information discount: funding inside the last 5 days does not move today's cut.
    f_future = f.copy()
    recent = f_ts > q[ftx] - FUNDING_LAG_NS
    f_future[recent] = -1.0
    assert lagged_values(f_ts, f_future, q[ftx : ftx + 1], FUNDING_LAG_NS)[0] == funding_lag[ftx]


def test_acb_layer_through_the_controller_on_real_history(shared_data: Path) -> None:
    """Real data, daily, through the controller: the ACB layer equals 1 - cut of the lagged inputs
    every day (a day is long enough for the 1 %/min recovery), and the FTX week is not APEX."""
    from dolphin.survival.clock import ManualClock
    from dolphin.survival.config import LayerSpec, PostureConfig, SurvivalConfig
    from dolphin.survival.controller import SurvivalController
    from dolphin.survival.posture import APEX

    dvol_ts, dvol = dvol_daily(shared_data)
    f_ts, f = funding_8h_frac(shared_data)
    funding_lag = lagged_values(f_ts, f, dvol_ts, FUNDING_LAG_NS)
    spec = LayerSpec(name="ACB_v6", path="dolphin.survival.layers.builtin:AcbV6Layer", options={"taker_weight": 0.0})
    cfg = SurvivalConfig(layers=(spec,), posture=PostureConfig(initial="APEX", min_upgrade_dwell_s=3600.0))
    clock = ManualClock(int(dvol_ts[0]))
    ctl = SurvivalController(cfg, clock)
    th = AcbThresholds(taker_weight=0.0, fng_weight=0.0)
    postures = []
    for i in range(1, len(dvol_ts)):
        clock.set_ns(int(dvol_ts[i]))
        ctl.observe("acb_funding_lag5d_frac", float(funding_lag[i]))
        ctl.observe("acb_dvol_prev", float(dvol[i - 1]))
        ctl.observe("acb_dvol", float(dvol[i]))
        ctl.tick()
        expected = 1.0 - acb_v6_cut_frac(stress_count(AcbInputs(funding_lag[i], 1.0, dvol[i], dvol[i - 1]), th))
        assert math.isclose(ctl.r_total, expected, abs_tol=1e-12), (i, ctl.r_total, expected)
        postures.append(ctl.posture)
    ftx = int(np.searchsorted(dvol_ts, 1667952000000 * 1_000_000))  # 2022-11-09
    assert postures[ftx - 1] != APEX
    assert 0.2 < sum(p == APEX for p in postures) / len(postures) < 1.0
