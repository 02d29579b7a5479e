"""Property tests of the order-book feature formulas (generated inputs, labelled as such)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dolphin.alpha.features import (
    UpdateClock,
    depth_decay_ratio,
    depth_within_bps_quote,
    liquidity_imbalance_pct,
    microprice_ticks,
    spread_bps,
    spread_ticks,
    wobi,
    wobi_weights,
)

qty = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)
qtys = st.lists(qty, min_size=0, max_size=25).map(lambda x: np.array(x, dtype=np.float64))
weights = st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=20).map(np.array)


@given(qtys, qtys, weights)
def test_wobi_is_bounded(b, a, w) -> None:
    x = wobi(b, a, w)
    assert -1.0 <= x <= 1.0


@given(qtys, qtys, weights)
def test_mirrored_book_negates_wobi(b, a, w) -> None:
    assert wobi(a, b, w) == pytest.approx(-wobi(b, a, w), abs=1e-12)


@given(qtys, qtys, weights, st.integers(0, 19), st.floats(0.001, 1e5))
def test_wobi_is_monotone_in_bid_qty(b, a, w, lvl, extra) -> None:
    assume(lvl < w.shape[0] and w[lvl] > 0)
    b2 = np.zeros(max(b.shape[0], lvl + 1))
    b2[: b.shape[0]] = b
    before = wobi(b2, a, w)
    b2[lvl] += extra
    assert wobi(b2, a, w) >= before - 1e-12


@given(qtys, weights)
def test_wobi_of_one_sided_book_is_extreme(b, w) -> None:
    n = min(b.shape[0], w.shape[0])
    assume(float(np.dot(b[:n], w[:n])) > 0)
    assert wobi(b, np.zeros(0), w) == 1.0
    assert wobi(np.zeros(0), b, w) == -1.0


def test_wobi_matches_definition_on_a_hand_case() -> None:
    # sum w(b-a)/sum w(b+a) with w = [1, .5]: (1*(3-1) + .5*(0-2)) / (1*4 + .5*2) = 1/5
    assert wobi(np.array([3.0, 0.0]), np.array([1.0, 2.0]), np.array([1.0, 0.5])) == pytest.approx(0.2)


def test_wobi_weights_validate() -> None:
    assert wobi_weights(3, 0.5).tolist() == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError):
        wobi_weights(0, 0.5)
    with pytest.raises(ValueError):
        wobi_weights(3, 0.0)


@given(qty, qty)
def test_liquidity_imbalance_bounds_and_symmetry(b, a) -> None:
    x = liquidity_imbalance_pct(b, a)
    assert -100.0 <= x <= 100.0
    assert liquidity_imbalance_pct(a, b) == pytest.approx(-x, abs=1e-9)


ticks = st.integers(1, 10_000_000)


@given(ticks, st.integers(0, 1000), qty, qty)
def test_microprice_within_touch_and_mirror(bid, spread, bq, aq) -> None:
    ask = bid + spread
    m = microprice_ticks(float(bid), float(ask), bq, aq)
    assert bid <= m <= ask
    # Mirror: swapping the queues reflects the microprice around the mid.
    m2 = microprice_ticks(float(bid), float(ask), aq, bq)
    assert m + m2 == pytest.approx(bid + ask, rel=1e-12)


@given(ticks, st.integers(0, 1000), qty, qty, st.floats(0.001, 1e5))
def test_microprice_moves_towards_ask_with_more_bids(bid, spread, bq, aq, extra) -> None:
    ask = bid + spread
    assert microprice_ticks(float(bid), float(ask), bq + extra, aq) >= microprice_ticks(
        float(bid), float(ask), bq, aq
    ) - 1e-9 * ask


@given(ticks, st.integers(0, 1000))
def test_spread_is_non_negative_and_tick_free(bid, spread) -> None:
    ask = bid + spread
    assert spread_ticks(bid, ask) == spread
    s = spread_bps(float(bid), float(ask))
    assert s >= 0
    # Scaling both prices (a finer tick grid) leaves the bps spread unchanged.
    assert spread_bps(10.0 * bid, 10.0 * ask) == pytest.approx(s, rel=1e-12)


@given(st.lists(st.tuples(st.integers(0, 500), qty), min_size=0, max_size=30), st.floats(0.1, 100), st.floats(0.1, 100))
def test_depth_within_band_is_monotone_in_band(levels, near, far) -> None:
    """Generated ask side: ticks above a mid of 100_000 ticks, best-first."""
    assume(near <= far)
    lv = sorted({t: q for t, q in levels}.items())
    t = np.array([100_000 + k for k, _ in lv], dtype=np.int64)
    q = np.array([v for _, v in lv], dtype=np.float64)
    dn = depth_within_bps_quote(t, q, t.shape[0], 100_000.0, near, 0.1)
    df = depth_within_bps_quote(t, q, t.shape[0], 100_000.0, far, 0.1)
    assert 0.0 <= dn <= df + 1e-9 * max(1.0, df)
    r = depth_decay_ratio(dn, df)
    assert 0.0 <= r <= 1.0
    # Direct definition.
    inside = np.abs(t - 100_000.0) <= near * 1e-4 * 100_000.0
    assert dn == pytest.approx(float(np.sum(q[inside] * t[inside] * 0.1)), rel=1e-9, abs=1e-9)


def test_depth_decay_ratio_edges() -> None:
    assert depth_decay_ratio(0.0, 0.0) == 0.0
    assert depth_decay_ratio(5.0, 10.0) == 0.5
    assert depth_decay_ratio(10.0, 10.0) == 1.0


@given(st.lists(st.integers(1, 10**9), min_size=3, max_size=60))
def test_update_clock_age_and_jitter(intervals) -> None:
    c = UpdateClock(alpha=0.1)
    ts = np.cumsum([10**12] + intervals)
    for t in ts:
        c.on_update(int(t))
    assert c.book_age_ns(int(ts[-1]) + 5) == 5
    assert c.jitter_ns >= 0
    assert min(intervals) <= c.mean_interval_ns <= max(intervals)
    const = UpdateClock(alpha=0.1)
    for t in range(0, 10 * 1000, 1000):
        const.on_update(t)
    assert const.jitter_ns == 0.0 and const.mean_interval_ns == 1000.0


def test_update_clock_before_updates() -> None:
    c = UpdateClock()
    assert c.book_age_ns(10) == -1 and math.isnan(c.jitter_ns)
    with pytest.raises(ValueError):
        UpdateClock(alpha=0.0)
