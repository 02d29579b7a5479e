"""SmartPlacer decisions: where a maker order goes and whether a taker entry is allowed.

Pure functions over integer ticks; the agent turns them into NautilusTrader orders.
Maker-first: post-only limits placed from the book, by posture and microstructure
confidence. Join the best price on the order's own side, step one tick inside the spread,
or stand back a few ticks. A post-only price is never on or through the opposite best, so
it can never take liquidity (the venue would reject it rather than fill it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from dolphin.execution.config import PlacerConfig
from dolphin.execution.ports import Posture

__all__ = ["Placement", "PlacementMode", "maker_price_ticks", "taker_allowed"]


class PlacementMode(str, Enum):
    JOIN = "join"
    STEP_IN = "step_in"
    STAND_BACK = "stand_back"


@dataclass(frozen=True, slots=True)
class Placement:
    price_ticks: int
    mode: PlacementMode


def maker_price_ticks(
    side: int,
    best_bid_ticks: int,
    best_ask_ticks: int,
    posture: Posture,
    confidence: float,
    cfg: PlacerConfig,
    *,
    exit_order: bool = False,
) -> Placement:
    """Post-only limit price (ticks) for `side` (+1 buy, -1 sell).

    With no spread known (bid == ask: bar data where only a last price exists, or a locked
    book) the own-side best is taken one tick away from that price; with a crossed quote
    (bid > ask, a transient of a live feed) a buy stays below both prices and a sell above both.
    """
    spread_known = best_ask_ticks > best_bid_ticks
    if not spread_known:  # keep one tick off the last price, or clear of both sides of a crossed quote
        lo, hi = best_ask_ticks, best_bid_ticks  # lo == hi unless crossed
        best_bid_ticks, best_ask_ticks = lo - 1, hi + 1
    spread = best_ask_ticks - best_bid_ticks
    own_best = best_bid_ticks if side > 0 else best_ask_ticks

    if exit_order:
        mode = PlacementMode.JOIN
    elif spread_known and posture == Posture.APEX and confidence >= cfg.step_in_confidence and spread >= 2:
        mode = PlacementMode.STEP_IN
    elif confidence < cfg.stand_back_confidence or posture <= Posture.TURTLE:
        mode = PlacementMode.STAND_BACK
    else:
        mode = PlacementMode.JOIN

    if mode is PlacementMode.STEP_IN:
        price = own_best + side  # one tick inside; spread >= 2 keeps it off the opposite side
    elif mode is PlacementMode.STAND_BACK:
        price = own_best - side * cfg.stand_back_ticks
    else:
        price = own_best
    # Post-only guard: never on or through the opposite best (of either side when crossed; the
    # substituted bests above are one tick outside the real prices).
    if side > 0:
        price = min(price, best_ask_ticks - 1 if spread_known else best_bid_ticks)
    else:
        price = max(price, best_bid_ticks + 1 if spread_known else best_ask_ticks)
    return Placement(price, mode)


def taker_allowed(posture: Posture, nev_taker_bps: float, cfg: PlacerConfig) -> bool:
    """Taker entries only in APEX and only when NEV after taker fees is positive."""
    return cfg.allow_taker_in_apex and posture == Posture.APEX and nev_taker_bps > 0.0
