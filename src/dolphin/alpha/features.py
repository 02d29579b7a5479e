"""Order-book features from L2 levels: pure kernels over arrays (numba), no I/O.

Conventions (units in names):

- ``*_ticks``: integer price ticks (``price / tick_size``, see :mod:`dolphin.alpha.ticks`);
  ``*_qty``: base-asset quantity; ``*_quote``: quote-currency notional (``qty * price``);
  ``*_bps``: basis points (1e-4 of the mid price); ``*_pct``: percent; ``*_frac``: a fraction
  in [0, 1]; ``*_ns``: nanoseconds.
- Level arrays are BEST-FIRST: index 0 is the best bid (highest) / best ask (lowest). Missing levels
  (a side shorter than the weight vector) count as zero quantity.

Definitions:

- WOBI (weighted order-book imbalance) = sum_l w_l (b_l - a_l) / sum_l w_l (b_l + a_l), in [-1, 1];
  0 when the weighted depth is 0. Mirroring the book (swap bid and ask quantities) negates it.
- Liquidity imbalance % = 100 (B - A) / (B + A) with B, A the quote depth within N bps of mid.
- Microprice (Stoikov's weighted mid) = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty), in
  ticks, always within [bid, ask].
- Spread in ticks (ask - bid) and in bps of mid.
- Depth decay ratio = depth within ``near_bps`` / depth within ``far_bps`` (same side(s)), in [0, 1]:
  near 1 means the liquidity sits at the touch and decays fast away from it; near 0 means a thin
  touch with depth far away.
- Book age (ns since the book last changed) and update jitter (EWMA standard deviation of the
  interval between book updates, ns) are kept by :class:`UpdateClock`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "UpdateClock",
    "depth_decay_ratio",
    "depth_within_bps_quote",
    "liquidity_imbalance_pct",
    "microprice_ticks",
    "mid_ticks",
    "spread_bps",
    "spread_ticks",
    "wobi",
    "wobi_weights",
]


def wobi_weights(n_levels: int, decay: float) -> np.ndarray:
    """Geometric level weights ``decay**l`` for l = 0..n_levels-1 (decay in (0, 1]; 1 = equal)."""
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    if not (0.0 < decay <= 1.0):
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    return decay ** np.arange(n_levels, dtype=np.float64)


@njit(cache=True, nogil=True)
def wobi(bid_qty: np.ndarray, ask_qty: np.ndarray, weights: np.ndarray) -> float:
    """Weighted order-book imbalance over ``len(weights)`` levels, in [-1, 1] (unitless).

    ``bid_qty``/``ask_qty`` are best-first level quantities (>= 0); ``weights`` are >= 0.
    """
    nb = bid_qty.shape[0]
    na = ask_qty.shape[0]
    num = 0.0
    den = 0.0
    for lvl in range(weights.shape[0]):
        b = bid_qty[lvl] if lvl < nb else 0.0
        a = ask_qty[lvl] if lvl < na else 0.0
        w = weights[lvl]
        num += w * (b - a)
        den += w * (b + a)
    if den <= 0.0:
        return 0.0
    x = num / den
    # Guard against rounding pushing |x| a hair above 1.
    return min(1.0, max(-1.0, x))


@njit(cache=True, nogil=True)
def liquidity_imbalance_pct(bid_depth_quote: float, ask_depth_quote: float) -> float:
    """100 (B - A) / (B + A), in [-100, 100] percent; 0 when both sides are empty."""
    den = bid_depth_quote + ask_depth_quote
    if den <= 0.0:
        return 0.0
    return min(100.0, max(-100.0, 100.0 * (bid_depth_quote - ask_depth_quote) / den))


@njit(cache=True, nogil=True)
def mid_ticks(best_bid_ticks: float, best_ask_ticks: float) -> float:
    """Mid price in ticks (may be half a tick)."""
    return 0.5 * (best_bid_ticks + best_ask_ticks)


@njit(cache=True, nogil=True)
def spread_ticks(best_bid_ticks: int, best_ask_ticks: int) -> int:
    """Quoted spread in ticks (ask - bid); <= 0 means a crossed or locked book."""
    return best_ask_ticks - best_bid_ticks


@njit(cache=True, nogil=True)
def spread_bps(best_bid_ticks: float, best_ask_ticks: float) -> float:
    """Quoted spread in basis points of the mid (the tick size cancels out)."""
    mid = 0.5 * (best_bid_ticks + best_ask_ticks)
    if mid <= 0.0:
        return math.nan
    return (best_ask_ticks - best_bid_ticks) / mid * 1e4


@njit(cache=True, nogil=True)
def microprice_ticks(best_bid_ticks: float, best_ask_ticks: float, bid_qty: float, ask_qty: float) -> float:
    """Stoikov microprice in ticks: queue-weighted mid, within [bid, ask]; the mid when both queues are 0."""
    den = bid_qty + ask_qty
    if den <= 0.0:
        return 0.5 * (best_bid_ticks + best_ask_ticks)
    x = (best_bid_ticks * ask_qty + best_ask_ticks * bid_qty) / den
    return min(best_ask_ticks, max(best_bid_ticks, x))


@njit(cache=True, nogil=True)
def depth_within_bps_quote(
    level_ticks: np.ndarray, level_qty: np.ndarray, n: int, mid_ticks_: float, within_bps: float, tick_size: float
) -> float:
    """Quote notional of the first ``n`` best-first levels priced within ``within_bps`` of the mid.

    ``level_ticks`` are positive prices in ticks (bids descending or asks ascending); the scan
    stops at the first level beyond the band.
    """
    if mid_ticks_ <= 0.0:
        return 0.0
    limit = within_bps * 1e-4 * mid_ticks_
    total = 0.0
    for i in range(n):
        t = level_ticks[i]
        if abs(t - mid_ticks_) > limit:
            break
        total += level_qty[i] * t * tick_size
    return total


@njit(cache=True, nogil=True)
def depth_decay_ratio(near_depth_quote: float, far_depth_quote: float) -> float:
    """Depth within the near band / depth within the far band, in [0, 1]; 0 when the far band is empty."""
    if far_depth_quote <= 0.0:
        return 0.0
    return min(1.0, max(0.0, near_depth_quote / far_depth_quote))


class UpdateClock:
    """Book age and update jitter from the local receive times of book updates.

    ``jitter_ns`` is the EWMA standard deviation of inter-update intervals (smoothing ``alpha`` per
    update); ``mean_interval_ns`` the EWMA mean. Both are NaN until two intervals were seen.
    """

    __slots__ = ("alpha", "last_ts_ns", "mean_interval_ns", "var_interval_ns2", "n_intervals")

    def __init__(self, alpha: float = 0.05) -> None:
        if not (0.0 < alpha <= 1.0):
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.last_ts_ns = -1
        self.mean_interval_ns = math.nan
        self.var_interval_ns2 = math.nan
        self.n_intervals = 0

    def reset(self) -> None:
        self.last_ts_ns = -1
        self.mean_interval_ns = math.nan
        self.var_interval_ns2 = math.nan
        self.n_intervals = 0

    def on_update(self, local_ts_ns: int) -> None:
        """Record a book update received at ``local_ts_ns`` (out-of-order times count as 0 ns)."""
        last = self.last_ts_ns
        self.last_ts_ns = local_ts_ns if local_ts_ns > last else last
        if last < 0:
            return
        dt = float(max(0, local_ts_ns - last))
        if self.n_intervals == 0:
            self.mean_interval_ns = dt
            self.var_interval_ns2 = 0.0
        else:
            a = self.alpha
            diff = dt - self.mean_interval_ns
            incr = a * diff
            self.mean_interval_ns += incr
            self.var_interval_ns2 = (1.0 - a) * (self.var_interval_ns2 + diff * incr)
        self.n_intervals += 1

    def book_age_ns(self, now_ns: int) -> int:
        """Nanoseconds since the last update (-1 when there was none)."""
        if self.last_ts_ns < 0:
            return -1
        return max(0, now_ns - self.last_ts_ns)

    @property
    def jitter_ns(self) -> float:
        if self.n_intervals < 2:
            return math.nan
        return math.sqrt(max(0.0, self.var_interval_ns2))
