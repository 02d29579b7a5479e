"""ACB v6: the continuous adaptive circuit breaker (pure maths, no I/O).

v5 counted discrete stress signals and cut size by a ladder: 0/1/2/3/4/5+ signals ->
0/15/45/55/75/80 %. v6 makes both sides continuous: each signal contributes a stress in
[0, 1] (a ramp between a calm and a stressed level), the weighted sum is the stress count,
and the cut is the piecewise-linear interpolation of the v5 ladder in that count, clipped at
80 %. Inputs are information-discounted: funding is used at a 5-day lag, the taker ratio at
a 1-day lag (``lagged_values`` applies the lag to a history).

``acb_v6_cut_frac(stress_count: float) -> float`` is the shared reference signature; the
grid's entry processor (dolphin.grid.acb, Java) computes the same function.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "ACB_V5_LADDER_CUT_FRAC",
    "ACB_MAX_CUT_FRAC",
    "FUNDING_LAG_NS",
    "TAKER_LAG_NS",
    "AcbInputs",
    "AcbThresholds",
    "acb_v5_cut_frac",
    "acb_v6_cut_frac",
    "lagged_values",
    "ramp_stress",
    "stress_count",
]

# v5 reference ladder: index = number of stress signals (5 means 5 or more).
ACB_V5_LADDER_CUT_FRAC: tuple[float, ...] = (0.0, 0.15, 0.45, 0.55, 0.75, 0.80)
ACB_MAX_CUT_FRAC = 0.80
NS_PER_DAY = 86_400 * 1_000_000_000
FUNDING_LAG_NS = 5 * NS_PER_DAY
TAKER_LAG_NS = 1 * NS_PER_DAY


def acb_v6_cut_frac(stress_count: float) -> float:
    """Size cut in [0, 0.8] for a (continuous) weighted stress count; NaN -> maximum cut."""
    if stress_count != stress_count:
        return ACB_MAX_CUT_FRAC
    if stress_count <= 0.0:
        return 0.0
    if stress_count >= 5.0:
        return ACB_MAX_CUT_FRAC
    i = int(stress_count)
    lo = ACB_V5_LADDER_CUT_FRAC[i]
    hi = ACB_V5_LADDER_CUT_FRAC[i + 1]
    return lo + (hi - lo) * (stress_count - i)


def acb_v5_cut_frac(signal_count: int) -> float:
    """The v5 reference: a whole number of signals -> ladder cut."""
    return ACB_V5_LADDER_CUT_FRAC[min(max(int(signal_count), 0), 5)]


def ramp_stress(x: float, calm: float, stressed: float) -> float:
    """0 at ``calm``, 1 at ``stressed`` (either direction), linear between; NaN -> 1."""
    if x != x:
        return 1.0
    t = (x - calm) / (stressed - calm)
    return 0.0 if t <= 0.0 else (1.0 if t >= 1.0 else t)


class AcbThresholds(NamedTuple):
    """Calm/stressed levels of each signal and its weight (a weight of 0 disables it)."""

    funding_calm_frac: float = 0.0  # per 8 h, plain fraction (0.0001 = 0.01 %)
    funding_stressed_frac: float = -0.0001  # negative funding: crowded shorts / capitulation
    funding_weight: float = 1.0
    taker_calm: float = 1.0  # taker buy/sell ratio
    taker_stressed: float = 0.8
    taker_weight: float = 1.0
    dvol_calm: float = 55.0  # annualised %
    dvol_stressed: float = 80.0
    dvol_weight: float = 1.0
    dvol_jump_calm_frac: float = 0.05  # day-over-day relative DVOL rise
    dvol_jump_stressed_frac: float = 0.20
    dvol_jump_weight: float = 1.0
    fng_calm: float = 25.0  # fear & greed index
    fng_stressed: float = 10.0
    fng_weight: float = 1.0


class AcbInputs(NamedTuple):
    """Already information-discounted inputs (NaN = missing, counted as fully stressed)."""

    funding_lag5d_frac: float
    taker_ratio_lag1d: float
    dvol: float
    dvol_prev: float
    fear_greed: float = math.nan


def stress_count(inputs: AcbInputs, th: AcbThresholds = AcbThresholds()) -> float:
    """The weighted, continuous stress count (0 .. sum of weights)."""
    total = 0.0
    if th.funding_weight:
        total += th.funding_weight * ramp_stress(inputs.funding_lag5d_frac, th.funding_calm_frac, th.funding_stressed_frac)
    if th.taker_weight:
        total += th.taker_weight * ramp_stress(inputs.taker_ratio_lag1d, th.taker_calm, th.taker_stressed)
    if th.dvol_weight:
        total += th.dvol_weight * ramp_stress(inputs.dvol, th.dvol_calm, th.dvol_stressed)
    if th.dvol_jump_weight:
        jump = (inputs.dvol / inputs.dvol_prev - 1.0) if inputs.dvol_prev > 0.0 else math.nan
        total += th.dvol_jump_weight * ramp_stress(jump, th.dvol_jump_calm_frac, th.dvol_jump_stressed_frac)
    if th.fng_weight:
        total += th.fng_weight * ramp_stress(inputs.fear_greed, th.fng_calm, th.fng_stressed)
    return total


def lagged_values(src_ts_ns: np.ndarray, src_values: np.ndarray, query_ts_ns: np.ndarray, lag_ns: int) -> np.ndarray:
    """For each query time t, the last source value published at or before t - lag (else NaN).

    ``src_ts_ns`` must be sorted ascending. This is the information discount: a value is
    only usable ``lag_ns`` after it was published.
    """
    src_ts = np.asarray(src_ts_ns, dtype=np.int64)
    vals = np.asarray(src_values, dtype=np.float64)
    q = np.asarray(query_ts_ns, dtype=np.int64) - np.int64(lag_ns)
    idx = np.searchsorted(src_ts, q, side="right") - 1
    out = np.full(q.shape, np.nan)
    ok = idx >= 0
    out[ok] = vals[idx[ok]]
    return out
