"""Exit rules: take-profit, stop, max hold and trade permanence from the order book.

Pure function over one position's state; the agent evaluates it once per bar.
Trade permanence: a book contradicting the position (WOBI against it beyond the threshold)
exits after `contradict_exit_bars`; a favourable book holds up to `favourable_max_hold_bars`;
otherwise `max_hold_bars` applies.
"""

from __future__ import annotations

from enum import Enum

from dolphin.execution.config import ExitConfig

__all__ = ["ExitReason", "exit_decision", "stop_breached"]


class ExitReason(str, Enum):
    STOP = "stop_loss"
    TAKE_PROFIT = "take_profit"
    BOOK_CONTRADICTS = "book_contradicts"
    FAVOURABLE_MAX_HOLD = "favourable_max_hold"
    MAX_HOLD = "max_hold"
    HIBERNATE = "hibernate"


def exit_decision(
    side: int,
    entry_price: float,
    price: float,
    bars_held: int,
    wobi: float | None,
    cfg: ExitConfig,
) -> ExitReason | None:
    """The exit that fires now for a position of `side` (+1 long, -1 short), or None."""
    pnl_bps = side * (price / entry_price - 1.0) * 1e4
    if pnl_bps <= -cfg.stop_loss_bps:
        return ExitReason.STOP
    if pnl_bps >= cfg.take_profit_bps:
        return ExitReason.TAKE_PROFIT
    # favourable / contradicting beyond the threshold; a WOBI of exactly 0 is neutral for any
    # threshold, 0 included (as for the book signals)
    s = 0.0 if wobi is None else side * wobi
    book = 1 if (s > 0.0 and s >= cfg.wobi_threshold) else (-1 if (s < 0.0 and s <= -cfg.wobi_threshold) else 0)
    if book < 0 and bars_held >= cfg.contradict_exit_bars:
        return ExitReason.BOOK_CONTRADICTS
    if book > 0:
        if bars_held >= cfg.favourable_max_hold_bars:
            return ExitReason.FAVOURABLE_MAX_HOLD
        return None
    if bars_held >= cfg.max_hold_bars:
        return ExitReason.MAX_HOLD
    return None


def stop_breached(side: int, entry_price: float, price: float, cfg: ExitConfig) -> bool:
    """The stop-loss test of :func:`exit_decision` alone (same formula): a pending non-stop exit
    is overridden by a stop breach."""
    return side * (price / entry_price - 1.0) * 1e4 <= -cfg.stop_loss_bps
