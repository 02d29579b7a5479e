"""Configuration of the execution plane: SmartPlacer, OTR governor, exits, backtests.

Defaults follow Binance USDT-M futures (order rate 300 / 10 s and 1,200 / 60 s per account;
the "unfilled ratio" rule trips near 99 % unfilled, i.e. an order-to-trade ratio near 100,
so dolphin keeps a margin at 50). Every limit is per venue and configurable.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec

from dolphin.core.config import (
    ConfigError,
    ConfigStruct,
    Fraction,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    require_finite,
)

__all__ = [
    "BacktestConfig",
    "ExecutionConfig",
    "ExitConfig",
    "OtrLimits",
    "PlacerConfig",
    "RateWindow",
]

Leverage = Annotated[float, msgspec.Meta(gt=0.0, le=125.0)]

# What one entry submit costs the OTR governor: the submit and the reservation of its cancel.
SUBMIT_COST = 2
# Fees and taxes a venue can plausibly charge (bps); a rebate is a negative fee.
FEE_BPS_MIN, FEE_BPS_MAX = -100.0, 1_000.0


class RateWindow(ConfigStruct):
    """At most `max_messages` order messages (submit, amend, cancel) in any `window_ms`."""

    window_ms: PosInt
    max_messages: PosInt


class OtrLimits(ConfigStruct):
    """One venue's order-rate and order-to-trade limits, enforced by the OTR governor."""

    venue: str = "BINANCE"
    rate_windows: tuple[RateWindow, ...] = (
        RateWindow(window_ms=10_000, max_messages=300),
        RateWindow(window_ms=60_000, max_messages=1_200),
    )
    # Messages / max(1, fills) over `otr_window_ms`; kept below the venue limit.
    max_otr: PosFloat = 50.0
    otr_window_ms: PosInt = 600_000
    # Entries may use this fraction of every budget; the rest is held for exits and flattening.
    entry_budget_frac: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.8

    def validate(self) -> None:
        if not self.rate_windows:
            raise ConfigError("execution.otr.rate_windows = () is not allowed: at least one window")
        require_finite(self.max_otr, "execution.otr.max_otr")
        frac = self.entry_budget_frac
        for w in self.rate_windows:
            if w.max_messages < SUBMIT_COST:
                raise ConfigError(
                    f"execution.otr.rate_windows max_messages = {w.max_messages} is not allowed: "
                    "needs >= 2 (a submit reserves its cancel)"
                )
            if w.max_messages * frac < SUBMIT_COST:
                raise ConfigError(
                    f"execution.otr.rate_windows max_messages = {w.max_messages} is not allowed with "
                    f"entry_budget_frac = {frac}: the entry budget ({w.max_messages * frac:g}) is below one "
                    f"submit's cost ({SUBMIT_COST}), so no entry could ever be sent"
                )
        if self.max_otr * frac < SUBMIT_COST:
            raise ConfigError(
                f"config key 'execution.otr.max_otr' = {self.max_otr!r} is not allowed with entry_budget_frac = "
                f"{frac}: the entry OTR budget ({self.max_otr * frac:g} per fill) is below one submit's cost "
                f"({SUBMIT_COST}), so no entry could ever be sent"
            )


class PlacerConfig(ConfigStruct):
    """SmartPlacer: maker-first placement and the unfilled-order cancel timer."""

    cancel_after_ms: PosInt = 200
    max_requotes: NonNegInt = 5
    # Microstructure confidence thresholds (0..1): above `step_in_confidence` APEX steps inside
    # the spread; below `stand_back_confidence` the placer stands `stand_back_ticks` behind best.
    step_in_confidence: Fraction = 0.7
    stand_back_confidence: Fraction = 0.3
    stand_back_ticks: PosInt = 2
    allow_taker_in_apex: bool = True
    max_working_orders_per_instrument: PosInt = 1

    def validate(self) -> None:
        if self.stand_back_confidence > self.step_in_confidence:
            raise ConfigError(
                f"execution.placer.stand_back_confidence = {self.stand_back_confidence} is not allowed: "
                f"must be <= step_in_confidence ({self.step_in_confidence})"
            )


class ExitConfig(ConfigStruct):
    """Exit rules; exits are allowed in every posture except when the kill flag is raised."""

    take_profit_bps: PosFloat = 60.0
    stop_loss_bps: PosFloat = 80.0
    max_hold_bars: PosInt = 120
    # Trade permanence from the order book (WOBI seen from the position's side).
    contradict_exit_bars: PosInt = 60
    favourable_max_hold_bars: PosInt = 180
    wobi_threshold: Fraction = 0.2
    # Passive exit attempts (post-only, reduce-only) before a reduce-only market order.
    passive_exit_attempts: NonNegInt = 2
    # A stop-loss exit goes straight to a reduce-only market order (no passive attempts).
    stop_exit_market: bool = True
    hibernate_flatten: Literal["passive_then_market", "market", "none"] = "passive_then_market"
    hibernate_market_after_ms: PosInt = 2_000

    def validate(self) -> None:
        require_finite(self.take_profit_bps, "execution.exits.take_profit_bps")
        require_finite(self.stop_loss_bps, "execution.exits.stop_loss_bps")
        if self.contradict_exit_bars > self.favourable_max_hold_bars:
            raise ConfigError(
                f"execution.exits.contradict_exit_bars = {self.contradict_exit_bars} is not allowed: "
                f"must be <= favourable_max_hold_bars ({self.favourable_max_hold_bars})"
            )
        # A favourable book may hold longer than a neutral one, never shorter (a max_hold_bars below
        # contradict_exit_bars is coherent: a contradicting book then exits at max_hold_bars too).
        if self.max_hold_bars > self.favourable_max_hold_bars:
            raise ConfigError(
                f"execution.exits.max_hold_bars = {self.max_hold_bars} is not allowed: must be <= "
                f"favourable_max_hold_bars ({self.favourable_max_hold_bars}; a favourable book holds longer)"
            )


class BacktestConfig(ConfigStruct):
    """`dolphin backtest`: data from the catalog, venue simulation, which survival layers run."""

    # Report label of the data set; the bars come from the catalog (`bars`, `venue`).
    dataset: str = "binance_usdm_5m_2023-07"
    bars: str = "bars_5m"
    venue: str = "BINANCE_USDM"
    bar_minutes: PosInt = 5
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "ADAUSDT")
    # The scanner and the Oracle's market mode read this universe (empty: every symbol of `bars`).
    scan_universe: tuple[str, ...] = ()
    # The Oracle's volatility gate reads this asset's returns; in its static mode the threshold is
    # calibrated on the first `vol_calibration_bars` bars, which propose no entries.
    btc_symbol: str = "BTCUSDT"
    vol_calibration_bars: PosInt = 864
    # NautilusTrader ParquetDataCatalog the catalog streams are exported to.
    nautilus_dir: str = "var/nautilus"
    starting_usdt: PosFloat = 100_000.0
    seed: NonNegInt = 42
    maker_fee_bps: float = 2.0
    taker_fee_bps: NonNegFloat = 5.0
    tax_bps: NonNegFloat = 0.0
    # The side(s) the venue taxes (execution.fees): must be alpha.nev.fees.tax_side when taxed.
    tax_side: Literal["none", "buy", "sell", "both"] = "sell"
    prob_fill_on_limit: Fraction = 0.5
    latency_ms: NonNegFloat = 5.0
    # Perpetual funding settled on open positions at every funding time of the catalog's
    # `funding` data (research.funding); a symbol without funding rows uses this grid (hours
    # from 00:00 UTC) and its settlements are counted missing.
    funding: bool = True
    funding_interval_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 8
    # On bar data an order lives this many bars at the venue before its cancel arrives (no
    # intra-bar quotes exist, so the live 200 ms cannot apply): it is accepted 5 ms after the bar
    # it was decided on (research.arrivals) and sees the next `bar_order_ttl_bars` bars. (It was 2
    # while NautilusTrader delivered commands only at the next data event, which gave one bar.)
    bar_order_ttl_bars: PosInt = 1
    # Survival layers whose sensors a backtest observes (L5 only where a book stream exists).
    survival_layers: tuple[str, ...] = ("L5_order_book", "L6_slippage_drift", "L9_drawdown", "RTT_lockdown")
    # Candidate edge = signal_edge_bps x signal strength (a configured scale, not a fitted estimate).
    signal_edge_bps: float = 25.0
    hell_entry_fill_frac: Fraction = 0.48
    hell_exit_fill_frac: Fraction = 0.35
    reports_dir: str = "var/reports"
    # A HELL run "shows ruin" when equity ends <= 0 or its drawdown reaches this fraction.
    ruin_drawdown_frac: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.5

    def validate(self) -> None:
        for name in ("maker_fee_bps", "taker_fee_bps", "tax_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and FEE_BPS_MIN <= value <= FEE_BPS_MAX):
                raise ConfigError(
                    f"config key 'execution.backtest.{name}' = {value!r} is not allowed: "
                    f"must be finite and within [{FEE_BPS_MIN:g}, {FEE_BPS_MAX:g}] bps"
                )
        for name in ("starting_usdt", "latency_ms", "signal_edge_bps"):
            require_finite(getattr(self, name), f"execution.backtest.{name}")
        # The simulated venue is Binance USDT-M: its instruments are USDT-quoted, USDT-settled
        # perpetuals (execution.instruments.make_usdm_perp); other venues would get wrong ones.
        if self.venue != "BINANCE_USDM":
            raise ConfigError(
                f"config key 'execution.backtest.venue' = {self.venue!r} is not allowed: backtests simulate "
                "Binance USDT-M perpetuals only ('BINANCE_USDM')"
            )
        bad = [s for s in self.symbols if not s.endswith("USDT") or s == "USDT"]
        if bad:
            raise ConfigError(
                f"config key 'execution.backtest.symbols' = {list(self.symbols)!r} is not allowed: "
                f"{bad} are not USDT-quoted perpetuals"
            )


class ExecutionConfig(ConfigStruct):
    """The execution plane (issue 7)."""

    kill_flag_path: str = "var/run/kill.flag"
    # Paper and live also read the kill flag (and the posture) on a timer of this period, so a kill
    # acts within it even while no market data arrives (5-minute bars); backtests read the flag on
    # every market event and before every submit (a timer per 100 ms of simulated time would cost
    # ~11M events on the sample). 0: no timer.
    kill_poll_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 100
    otr: OtrLimits = OtrLimits()
    placer: PlacerConfig = PlacerConfig()
    exits: ExitConfig = ExitConfig()
    backtest: BacktestConfig = BacktestConfig()

    def validate(self) -> None:
        self.otr.validate()
        self.placer.validate()
        self.exits.validate()
        self.backtest.validate()
