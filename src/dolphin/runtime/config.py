"""Configuration of the runtime plane: ``dolphin paper`` (the live node on replayed data)."""

from __future__ import annotations

from typing import Literal

from dolphin.core.config import ConfigError, ConfigStruct, NonNegFloat, NonNegInt, PosFloat

__all__ = ["PaperConfig"]


class PaperConfig(ConfigStruct):
    """``dolphin paper``: the agent in a NautilusTrader TradingNode fed by a replay of the catalog.

    ``speed``: replay speed-up (1 = the recorded pace, 300 = one 5-minute bar per second);
    ``max_seconds``: wall-clock bound of the run (0 = until the replay ends);
    ``data``: ``bars`` (the shipped 5-minute perps, ``execution.backtest.symbols``) or ``l2``
    (the shipped BTCUSDT L2 capture: depth deltas and trades);
    ``skip_bars``: bars of the data set not replayed at the start (the Oracle's signal panel
    still sees them as history: its rules are trailing); ``order_ttl_ms``: life of an unfilled
    maker order on the real clock (0 = the backtest's order life in market time divided by the
    speed-up: ``runtime.paper.paper_order_ttl_ms``);
    ``flatten_wait_ms``: how long the end-of-run flatten may take before positions are closed
    with market orders; ``l2_symbol``: the symbol of the L2 capture.
    """

    speed: PosFloat = 300.0
    max_seconds: NonNegFloat = 0.0
    data: Literal["bars", "l2"] = "bars"
    skip_bars: NonNegInt = 0
    order_ttl_ms: NonNegInt = 0
    flatten_wait_ms: NonNegInt = 3_000
    l2_symbol: str = "BTCUSDT"
    progress: bool = True

    def validate(self) -> None:
        if self.speed > 1e7:
            raise ConfigError(f"paper.speed = {self.speed} is not allowed: must be <= 1e7 (a bar per 30 us)")
