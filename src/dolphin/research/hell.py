"""The HELL friction scenario as a NautilusTrader fill model.

Each limit order is decided once, at its first chance to fill: an entry fills with
probability `entry_fill_frac` (48 %), an exit (reduce-only) with `exit_fill_frac` (35 %).
A denied order sees an empty simulated book and rests unfilled until its cancel timer
fires; the agent then re-quotes (entries, while NEV stays positive) or falls back to a
market exit after the passive attempts. Decisions come from a private seeded RNG, in order
of first appearance, so a run is reproducible with its seed.
"""

from __future__ import annotations

import random

from nautilus_trader.backtest.models import FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType, OrderType

__all__ = ["HellFillModel"]


class HellFillModel(FillModel):
    def __init__(
        self,
        *,
        entry_fill_frac: float,
        exit_fill_frac: float,
        prob_fill_on_limit: float = 1.0,
        random_seed: int = 0,
    ) -> None:
        super().__init__(prob_fill_on_limit=prob_fill_on_limit, random_seed=random_seed)
        self.entry_fill_frac = entry_fill_frac
        self.exit_fill_frac = exit_fill_frac
        self._rng = random.Random(random_seed ^ 0x4E11)
        self._decided: dict[str, bool] = {}
        self.denied_entry = 0
        self.denied_exit = 0
        self.allowed_entry = 0
        self.allowed_exit = 0

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
        if order.order_type != OrderType.LIMIT:
            return None
        key = order.client_order_id.value
        allowed = self._decided.get(key)
        if allowed is None:
            exit_order = bool(order.is_reduce_only)
            p = self.exit_fill_frac if exit_order else self.entry_fill_frac
            allowed = self._rng.random() < p
            self._decided[key] = allowed
            if exit_order:
                self.allowed_exit += allowed
                self.denied_exit += not allowed
            else:
                self.allowed_entry += allowed
                self.denied_entry += not allowed
        if allowed:
            return None  # the standard matching logic decides
        return OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
