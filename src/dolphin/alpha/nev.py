"""Net expected value (NEV) of a candidate order, in basis points of notional.

    NEV_bps = expected_edge_bps - cost(entry order) - cost(exit order, if include_exit)

    cost(order) = fee_bps(liquidity)                       maker or taker rate of the venue
                + half_spread_bps   (taker only)           crossing from mid to the touch
                + slippage_bps      (taker only)           walking the book beyond the touch
                + tax_bps           (if the tax applies)   STT-style tax on the order's side

The expected edge is measured from the mid price. A maker order is assumed to rest at the touch:
it pays no half spread and no slippage, and gets no credit for the half spread either (that is its
fill risk, handled by the execution plane). The entry side follows the trade direction (SHORT ->
sell), the exit side is the opposite. The tax is part of the venue's :class:`FeeSchedule`
(``tax_side``: none/buy/sell/both, ``tax_bps``).

An order is proposed only when NEV > ``min_nev_bps`` (0 by default): NEV <= 0 is rejected with the
reason recorded (:class:`NevReason`). :func:`nev_breakdown` is the scalar pure function (what the
execution plane calls per order); :func:`nev_bps_array` the vectorised variant.

Slippage: :func:`walk_book_slippage_bps` walks real L2 levels; :func:`sqrt_impact_slippage_bps` is
the square-root impact model ``coeff_bps * sqrt(notional / depth)`` for when no book is at hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np
from numba import njit

from dolphin.alpha.config import FeeSchedule, NevConfig

__all__ = [
    "NevBreakdown",
    "NevReason",
    "fee_bps",
    "nev_breakdown",
    "nev_bps",
    "nev_bps_array",
    "nev_fixed_costs",
    "order_cost_bps",
    "sqrt_impact_slippage_bps",
    "tax_bps",
    "walk_book_slippage_bps",
]

BUY = 1
SELL = -1


class NevReason(IntEnum):
    """Why a candidate order is (not) proposed."""

    PROPOSED = 0
    NEV_NON_POSITIVE = 1  # NEV <= min_nev_bps after all costs
    INVALID_INPUT = 2  # NaN edge/spread/slippage (e.g. not enough depth to walk), or FLAT direction


def fee_bps(liquidity: Literal["maker", "taker"], fees: FeeSchedule) -> float:
    """The venue's fee rate in bps for the liquidity role (negative maker fee = rebate)."""
    if liquidity == "maker":
        return fees.maker_bps
    if liquidity == "taker":
        return fees.taker_bps
    raise ValueError(f"liquidity must be 'maker' or 'taker', got {liquidity!r}")


def tax_bps(side: int, fees: FeeSchedule) -> float:
    """STT-style tax in bps for an order on ``side`` (+1 buy, -1 sell)."""
    if side not in (BUY, SELL):
        raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side}")
    ts = fees.tax_side
    if ts == "both" or (ts == "buy" and side == BUY) or (ts == "sell" and side == SELL):
        return fees.tax_bps
    return 0.0


def order_cost_bps(
    side: int,
    liquidity: Literal["maker", "taker"],
    spread_bps: float,
    slippage_bps: float,
    fees: FeeSchedule,
) -> float:
    """All-in cost of one order in bps of notional (see module docstring)."""
    cost = fee_bps(liquidity, fees) + tax_bps(side, fees)
    if liquidity == "taker":
        cost += 0.5 * spread_bps + slippage_bps
    return cost


@dataclass(frozen=True, slots=True)
class NevBreakdown:
    """NEV of one candidate order with every cost term (bps) and the decision with its reason."""

    edge_bps: float
    fee_bps: float
    half_spread_bps: float
    slippage_bps: float
    tax_bps: float
    nev_bps: float
    proposed: bool
    reason: NevReason


def nev_breakdown(
    edge_bps: float,
    direction: int,
    *,
    spread_bps: float,
    slippage_bps: float,
    cfg: NevConfig,
    exit_spread_bps: float | None = None,
    exit_slippage_bps: float | None = None,
) -> NevBreakdown:
    """NEV of a candidate trade's order(s): ``direction`` -1 SHORT (entry sells) or +1 LONG.

    ``spread_bps``/``slippage_bps`` describe the entry; the exit defaults to the same values. The
    exit trades the OTHER side of the book (a SHORT buys back into the asks), so a caller that walks
    the book passes the exit's own ``exit_slippage_bps`` (see :func:`dolphin.alpha.oracle.evaluate_candidate`).
    """
    if direction not in (BUY, SELL):
        return NevBreakdown(edge_bps, 0.0, 0.0, 0.0, 0.0, math.nan, False, NevReason.INVALID_INPUT)
    fees = cfg.fees
    xs = spread_bps if exit_spread_bps is None else exit_spread_bps
    xl = slippage_bps if exit_slippage_bps is None else exit_slippage_bps
    legs = [(direction, cfg.entry_liquidity, spread_bps, slippage_bps)]
    if cfg.include_exit:
        legs.append((-direction, cfg.exit_liquidity, xs, xl))
    f = hs = sl = tx = 0.0
    for side, liq, spr, slip in legs:
        f += fee_bps(liq, fees)
        tx += tax_bps(side, fees)
        if liq == "taker":
            hs += 0.5 * spr
            sl += slip
    nev = edge_bps - f - hs - sl - tx
    if not math.isfinite(nev):
        return NevBreakdown(edge_bps, f, hs, sl, tx, nev, False, NevReason.INVALID_INPUT)
    ok = nev > cfg.min_nev_bps
    return NevBreakdown(edge_bps, f, hs, sl, tx, nev, ok, NevReason.PROPOSED if ok else NevReason.NEV_NON_POSITIVE)


def nev_fixed_costs(direction: int, cfg: NevConfig) -> tuple[float, float, float]:
    """The book-independent parts of :func:`nev_breakdown` for ``direction``: ``(fee_bps, tax_bps,
    taker_legs)``. With them ``NEV = edge - fee - 0.5 * taker_legs * spread - slippage - tax``
    (bit-identical to :func:`nev_breakdown` with zero slippage) costs a few float operations, which
    is what the Oracle's ranking board uses on every book update."""
    b = nev_breakdown(0.0, direction, spread_bps=0.0, slippage_bps=0.0, cfg=cfg)
    legs = [cfg.entry_liquidity] + ([cfg.exit_liquidity] if cfg.include_exit else [])
    return b.fee_bps, b.tax_bps, float(sum(1 for liq in legs if liq == "taker"))


def nev_bps(edge_bps: float, direction: int, *, spread_bps: float, slippage_bps: float, cfg: NevConfig) -> float:
    """NEV in bps of one candidate trade (see :func:`nev_breakdown` for the terms and the decision)."""
    return nev_breakdown(edge_bps, direction, spread_bps=spread_bps, slippage_bps=slippage_bps, cfg=cfg).nev_bps


def nev_bps_array(
    edge_bps: np.ndarray,
    direction: np.ndarray,
    spread_bps: np.ndarray,
    slippage_bps: np.ndarray,
    cfg: NevConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised NEV: returns ``(nev_bps[float64], reason[int8 NevReason])``, same rules as the scalar."""
    e = np.asarray(edge_bps, dtype=np.float64)
    d = np.asarray(direction)
    spr = np.broadcast_to(np.asarray(spread_bps, dtype=np.float64), e.shape)
    slp = np.broadcast_to(np.asarray(slippage_bps, dtype=np.float64), e.shape)
    fees = cfg.fees
    legs = [(d, cfg.entry_liquidity)]
    if cfg.include_exit:
        legs.append((-d, cfg.exit_liquidity))
    cost = np.zeros(e.shape)
    for side, liq in legs:
        cost = cost + fee_bps(liq, fees)
        tax_buy = tax_bps(BUY, fees)
        tax_sell = tax_bps(SELL, fees)
        cost = cost + np.where(side > 0, tax_buy, np.where(side < 0, tax_sell, 0.0))
        if liq == "taker":
            cost = cost + 0.5 * spr + slp
    nev = e - cost
    reason = np.where(nev > cfg.min_nev_bps, NevReason.PROPOSED, NevReason.NEV_NON_POSITIVE).astype(np.int8)
    invalid = ~np.isfinite(nev) | ((d != BUY) & (d != SELL))
    reason[invalid] = NevReason.INVALID_INPUT
    nev = np.where((d != BUY) & (d != SELL), np.nan, nev)
    return nev, reason


@njit(cache=True, nogil=True)
def walk_book_slippage_bps(level_ticks: np.ndarray, level_qty: np.ndarray, order_qty: float) -> float:
    """Average-fill slippage of a market order of ``order_qty`` against best-first levels, in bps of
    the best price (>= 0; NaN when the levels cannot fill it or the best price is not > 0; 0 for a
    zero order)."""
    if order_qty <= 0.0:
        return 0.0
    n = level_ticks.shape[0]
    if n == 0:
        return math.nan
    best = float(level_ticks[0])
    if not (best > 0.0):  # a non-positive best price has no bps
        return math.nan
    left = order_qty
    notional = 0.0
    for i in range(n):
        take = min(left, level_qty[i])
        notional += take * level_ticks[i]
        left -= take
        if left <= 0.0:
            break
    if left > 1e-12 * order_qty:
        return math.nan
    avg = notional / order_qty
    return abs(avg - best) / best * 1e4


def sqrt_impact_slippage_bps(order_notional_quote: float, depth_quote: float, coeff_bps: float) -> float:
    """Square-root impact: ``coeff_bps * sqrt(order_notional / depth)`` (bps; NaN if depth <= 0)."""
    if order_notional_quote < 0 or coeff_bps < 0:
        raise ValueError("order_notional_quote and coeff_bps must be >= 0")
    if depth_quote <= 0:
        return math.nan
    return coeff_bps * math.sqrt(order_notional_quote / depth_quote)
