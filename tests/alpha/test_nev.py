"""Net expected value: every cost term, the STT-style tax side, the decision and its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolphin.alpha.config import FeeSchedule, NevConfig
from dolphin.alpha.nev import (
    NevReason,
    fee_bps,
    nev_breakdown,
    nev_bps,
    nev_bps_array,
    order_cost_bps,
    sqrt_impact_slippage_bps,
    tax_bps,
    walk_book_slippage_bps,
)

bps = st.floats(0.0, 50.0, allow_nan=False)
edge = st.floats(-50.0, 100.0, allow_nan=False)
direction = st.sampled_from([-1, 1])
tax_side = st.sampled_from(["none", "buy", "sell", "both"])
liq = st.sampled_from(["maker", "taker"])


def _cfg(tax_side="sell", tax=0.0, entry="maker", exit_="taker", include_exit=True, maker=2.0, taker=5.0):
    return NevConfig(
        fees=FeeSchedule(maker_bps=maker, taker_bps=taker, tax_bps=tax, tax_side=tax_side),
        entry_liquidity=entry,
        exit_liquidity=exit_,
        include_exit=include_exit,
    )


def test_defaults_are_binance_usdm_regular_tier() -> None:
    f = FeeSchedule()
    assert (f.maker_bps, f.taker_bps, f.tax_bps) == (2.0, 5.0, 0.0)


def test_hand_computed_round_trip() -> None:
    # SHORT: maker entry (2) + taker exit (5 + half spread 1 + slippage 0.5) + 10 bps tax on the sell.
    b = nev_breakdown(20.0, -1, spread_bps=2.0, slippage_bps=0.5, cfg=_cfg(tax=10.0))
    assert (b.fee_bps, b.half_spread_bps, b.slippage_bps, b.tax_bps) == (7.0, 1.0, 0.5, 10.0)
    assert b.nev_bps == pytest.approx(1.5) and b.proposed and b.reason == NevReason.PROPOSED
    # LONG: the exit is the sell, so the same tax lands on the exit leg.
    assert nev_breakdown(20.0, 1, spread_bps=2.0, slippage_bps=0.5, cfg=_cfg(tax=10.0)).nev_bps == pytest.approx(1.5)
    # Buy-side tax instead: same total for a round trip (one buy, one sell).
    assert nev_breakdown(20.0, 1, spread_bps=2.0, slippage_bps=0.5, cfg=_cfg("buy", 10.0)).tax_bps == 10.0


@given(edge, direction, bps, bps, tax_side, st.floats(0, 20), liq, liq, st.booleans())
def test_nev_is_edge_minus_the_sum_of_costs(e, d, spr, slp, ts, tx, en, ex, inc) -> None:
    cfg = _cfg(ts, tx, en, ex, inc)
    b = nev_breakdown(e, d, spread_bps=spr, slippage_bps=slp, cfg=cfg)
    cost = order_cost_bps(d, en, spr, slp, cfg.fees) + (order_cost_bps(-d, ex, spr, slp, cfg.fees) if inc else 0.0)
    assert b.nev_bps == pytest.approx(e - cost, abs=1e-9)
    assert b.nev_bps == pytest.approx(e - b.fee_bps - b.half_spread_bps - b.slippage_bps - b.tax_bps, abs=1e-9)
    assert nev_bps(e, d, spread_bps=spr, slippage_bps=slp, cfg=cfg) == b.nev_bps
    assert b.proposed == (b.nev_bps > 0)
    assert b.reason == (NevReason.PROPOSED if b.proposed else NevReason.NEV_NON_POSITIVE)


@given(edge, direction, bps, bps, st.floats(0.01, 20), tax_side, liq)
def test_nev_decreases_with_every_cost(e, d, spr, slp, extra, ts, ex) -> None:
    cfg = _cfg(ts, 3.0, "taker", ex)
    base = nev_breakdown(e, d, spread_bps=spr, slippage_bps=slp, cfg=cfg).nev_bps
    assert nev_breakdown(e, d, spread_bps=spr + extra, slippage_bps=slp, cfg=cfg).nev_bps < base
    assert nev_breakdown(e, d, spread_bps=spr, slippage_bps=slp + extra, cfg=cfg).nev_bps < base
    assert nev_breakdown(e + extra, d, spread_bps=spr, slippage_bps=slp, cfg=cfg).nev_bps > base
    higher_tax = _cfg(ts, 3.0 + extra, "taker", ex)
    assert nev_breakdown(e, d, spread_bps=spr, slippage_bps=slp, cfg=higher_tax).nev_bps <= base


@given(edge, bps, bps, tax_side, liq, liq)
def test_round_trip_is_symmetric_in_direction(e, spr, slp, ts, en, ex) -> None:
    # With the same liquidity on both legs, SHORT and LONG pay the same (one buy and one sell each).
    cfg = _cfg(ts, 4.0, en, en)
    s = nev_breakdown(e, -1, spread_bps=spr, slippage_bps=slp, cfg=cfg).nev_bps
    lo = nev_breakdown(e, 1, spread_bps=spr, slippage_bps=slp, cfg=cfg).nev_bps
    assert s == pytest.approx(lo, abs=1e-9)


def test_tax_sides() -> None:
    for side, expect in (("none", (0, 0)), ("buy", (7, 0)), ("sell", (0, 7)), ("both", (7, 7))):
        f = FeeSchedule(tax_bps=7.0, tax_side=side)
        assert (tax_bps(1, f), tax_bps(-1, f)) == expect
    with pytest.raises(ValueError):
        tax_bps(0, FeeSchedule())
    with pytest.raises(ValueError):
        fee_bps("market", FeeSchedule())  # type: ignore[arg-type]


def test_zero_or_negative_nev_is_not_proposed_and_says_why() -> None:
    cfg = _cfg()
    b = nev_breakdown(7.0, -1, spread_bps=0.0, slippage_bps=0.0, cfg=cfg)  # costs exactly 7
    assert b.nev_bps == 0.0 and not b.proposed and b.reason == NevReason.NEV_NON_POSITIVE
    bad = nev_breakdown(10.0, -1, spread_bps=math.nan, slippage_bps=0.0, cfg=_cfg(entry="taker"))
    assert not bad.proposed and bad.reason == NevReason.INVALID_INPUT
    flat = nev_breakdown(10.0, 0, spread_bps=1.0, slippage_bps=0.0, cfg=cfg)
    assert not flat.proposed and flat.reason == NevReason.INVALID_INPUT


@given(st.lists(st.tuples(edge, st.sampled_from([-1, 0, 1]), bps, bps), min_size=1, max_size=40), tax_side, liq, liq)
def test_vectorised_equals_scalar(rows, ts, en, ex) -> None:
    cfg = _cfg(ts, 2.5, en, ex)
    e, d, spr, slp = (np.array(c) for c in zip(*rows))
    nev, reason = nev_bps_array(e, d, spr, slp, cfg)
    for i in range(len(rows)):
        b = nev_breakdown(float(e[i]), int(d[i]), spread_bps=float(spr[i]), slippage_bps=float(slp[i]), cfg=cfg)
        assert reason[i] == b.reason
        if b.reason != NevReason.INVALID_INPUT:
            assert nev[i] == pytest.approx(b.nev_bps, abs=1e-9)


def test_walk_book_slippage() -> None:
    ticks = np.array([1000, 1001, 1003], dtype=np.int64)
    qty = np.array([1.0, 1.0, 2.0])
    assert walk_book_slippage_bps(ticks, qty, 0.5) == 0.0
    # 2 units: avg 1000.5 -> 5 bps of 1000.
    assert walk_book_slippage_bps(ticks, qty, 2.0) == pytest.approx(5.0)
    assert math.isnan(walk_book_slippage_bps(ticks, qty, 5.0))
    # Bid side (descending ticks): selling walks down; slippage is still a positive cost.
    assert walk_book_slippage_bps(ticks[::-1].copy() * 0 + np.array([1003, 1001, 1000]), qty, 2.0) > 0


@given(st.floats(0, 1e7), st.floats(1, 1e9), st.floats(0, 50), st.floats(1.0, 100.0))
def test_sqrt_impact_monotone(notional, depth, coeff, k) -> None:
    s = sqrt_impact_slippage_bps(notional, depth, coeff)
    assert s >= 0
    assert sqrt_impact_slippage_bps(notional * k, depth, coeff) >= s - 1e-12
    assert sqrt_impact_slippage_bps(notional, depth * k, coeff) <= s + 1e-12
    assert math.isnan(sqrt_impact_slippage_bps(notional, 0.0, coeff))


def test_walk_with_a_non_positive_best_price_is_nan() -> None:
    """A zero (or negative) best price has no bps: NaN (-> INVALID_INPUT), not ZeroDivisionError."""
    q = np.array([5.0, 5.0])
    assert math.isnan(walk_book_slippage_bps(np.array([0, 1], dtype=np.int64), q, 1.0))
    assert math.isnan(walk_book_slippage_bps(np.array([-1, 0], dtype=np.int64), q, 1.0))
    assert walk_book_slippage_bps(np.array([0, 1], dtype=np.int64), q, 0.0) == 0.0  # zero order: no walk


def test_fixed_costs_equal_the_breakdown_without_slippage() -> None:
    """The board's cheap NEV (fees, tax, taker legs) is bit-identical to nev_breakdown at zero slippage."""
    from dolphin.alpha.nev import nev_fixed_costs

    for entry in ("maker", "taker"):
        for exit_ in ("maker", "taker"):
            for inc in (True, False):
                cfg = NevConfig(fees=FeeSchedule(tax_bps=3.0, tax_side="sell"), entry_liquidity=entry,
                                exit_liquidity=exit_, include_exit=inc)
                for d in (-1, 1):
                    fee, tax, legs = nev_fixed_costs(d, cfg)
                    for edge, spr in ((30.0, 1.7), (5.0, 0.3), (12.345, 8.9)):
                        ref = nev_breakdown(edge, d, spread_bps=spr, slippage_bps=0.0, cfg=cfg).nev_bps
                        hs = 0.5 * legs * spr if legs else 0.0
                        assert edge - fee - hs - 0.0 - tax == ref

