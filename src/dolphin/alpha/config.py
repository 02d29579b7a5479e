"""Configuration of the Oracle (``[alpha]`` section): signals, book features, ARS, NEV."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from dolphin.core.config import ConfigError, ConfigStruct, Fraction, NonNegFloat, PosFloat, PosInt, require_finite

__all__ = ["AlphaConfig", "ArsConfig", "BookConfig", "FeeSchedule", "NevConfig", "SignalConfig"]

Percentile = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Window = Annotated[int, msgspec.Meta(ge=2)]


class SignalConfig(ConfigStruct):
    """Entry rule on vel_div, volatility gate, responsiveness filter, signal strength."""

    # SHORT when vel_div <= short_threshold.
    short_threshold: float = -0.02
    # LONG rule (off by default; the reference configuration is short-only): vel_div >= long_threshold.
    long_enabled: bool = False
    long_threshold: float = 0.02
    # Strength = clip(distance beyond the threshold / strength_span, 0, 1) (vel_div units).
    strength_span: PosFloat = 0.03
    # Volatility gate: rolling std of BTC returns over vol_window_bars above its vol_percentile.
    vol_window_bars: Window = 50
    vol_percentile: Percentile = 60.0
    # "static": threshold calibrated once on a calibration sample; "rolling": percentile over the
    # previous vol_rolling_lookback_bars values of the rolling std (no look-ahead).
    vol_gate_mode: Literal["static", "rolling"] = "static"
    vol_rolling_lookback_bars: Window = 1440
    # Responsiveness = rolling correlation of asset returns with the market-mode return, clipped at 0.
    responsiveness_window_bars: Window = 150
    min_responsiveness: Fraction = 0.45
    market_mode: Literal["equal_weight", "pc1"] = "equal_weight"

    def validate(self) -> None:
        require_finite(self, "alpha.signal")
        if self.long_threshold <= self.short_threshold:
            raise ConfigError(
                f"alpha.signal.long_threshold = {self.long_threshold} must be > "
                f"alpha.signal.short_threshold = {self.short_threshold}"
            )


class BookConfig(ConfigStruct):
    """Book building and order-book features."""

    # Exact tick size as a decimal string ("0.10"); "" = infer the finest decimal grid from the snapshot.
    tick_size: str = ""
    # WOBI over wobi_levels levels; weights: explicit list (len == wobi_levels) or geometric wobi_decay**l.
    wobi_levels: PosInt = 10
    wobi_weights: tuple[NonNegFloat, ...] = ()
    wobi_decay: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.8
    # Liquidity imbalance band around mid, bps.
    liquidity_band_bps: PosFloat = 10.0
    # Depth decay ratio: depth within near / depth within far band, bps.
    depth_decay_near_bps: PosFloat = 5.0
    depth_decay_far_bps: PosFloat = 50.0
    # EWMA smoothing (per update) of the inter-update interval for the jitter estimate.
    jitter_alpha: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.05
    # Diffs buffered while waiting for a snapshot before the oldest are dropped (and counted).
    max_buffer_diffs: PosInt = 10_000

    def validate(self) -> None:
        require_finite(self, "alpha.book")
        if self.wobi_weights and len(self.wobi_weights) != self.wobi_levels:
            raise ConfigError(
                f"alpha.book.wobi_weights has {len(self.wobi_weights)} entries; must equal "
                f"alpha.book.wobi_levels = {self.wobi_levels}"
            )
        if self.wobi_weights and sum(self.wobi_weights) <= 0.0:
            raise ConfigError("alpha.book.wobi_weights must not be all zero")
        if self.depth_decay_near_bps >= self.depth_decay_far_bps:
            raise ConfigError(
                f"alpha.book.depth_decay_near_bps = {self.depth_decay_near_bps} must be < "
                f"alpha.book.depth_decay_far_bps = {self.depth_decay_far_bps}"
            )
        if self.tick_size:
            from dolphin.alpha.ticks import TickGrid

            try:
                TickGrid.from_tick_size(self.tick_size)
            except Exception as exc:  # decimal.InvalidOperation or ValueError
                raise ConfigError(f"alpha.book.tick_size = {self.tick_size!r} is not a positive decimal: {exc}")


class ArsConfig(ConfigStruct):
    """Alpha Rank Score: component weights and the depth-quality multiplier."""

    # Component weights (normalised by their sum); every component is in [0, 1].
    w_strength: NonNegFloat = 0.4
    w_responsiveness: NonNegFloat = 0.2
    w_book_alignment: NonNegFloat = 0.2
    w_edge: NonNegFloat = 0.2
    # Edge component = clip(nev_bps / edge_scale_bps, 0, 1).
    edge_scale_bps: PosFloat = 20.0
    # Depth quality q in [0, 1] = weighted mean of depth/(depth+ref), ref_spread/(spread+ref_spread),
    # 2**(-age/half_life).
    depth_band_bps: PosFloat = 10.0
    depth_ref_quote: PosFloat = 250_000.0
    spread_ref_bps: PosFloat = 2.0
    age_half_life_ms: PosFloat = 500.0
    q_w_depth: NonNegFloat = 0.5
    q_w_spread: NonNegFloat = 0.3
    q_w_age: NonNegFloat = 0.2
    # Multiplier = 1 - max_penalty_frac * (1 - 2q) for q < 0.5, 1 + max_reward_frac * (2q - 1) above.
    max_penalty_frac: Fraction = 0.10
    max_reward_frac: Fraction = 0.10

    def validate(self) -> None:
        require_finite(self, "alpha.ars")
        if self.w_strength + self.w_responsiveness + self.w_book_alignment + self.w_edge <= 0.0:
            raise ConfigError("alpha.ars: the component weights w_* must not all be zero")
        if self.q_w_depth + self.q_w_spread + self.q_w_age <= 0.0:
            raise ConfigError("alpha.ars: the depth-quality weights q_w_* must not all be zero")


class FeeSchedule(ConfigStruct):
    """A venue's fee schedule, including an STT-style transaction tax (bps of notional).

    Defaults: Binance USDⓈ-M perpetuals, Regular tier (VIP 0) without BNB discount: maker 0.0200 %
    (2 bps), taker 0.0500 % (5 bps). Binance charges no transaction tax (tax_bps = 0); a venue with
    a securities-transaction-style tax sets tax_bps and the side it applies to.
    """

    venue: str = "binance_usdm"
    # Negative maker_bps is a rebate.
    maker_bps: Annotated[float, msgspec.Meta(ge=-10.0, le=100.0)] = 2.0
    taker_bps: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] = 5.0
    tax_bps: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] = 0.0
    tax_side: Literal["none", "buy", "sell", "both"] = "sell"

    def validate(self) -> None:
        require_finite(self, "alpha.nev.fees")


class NevConfig(ConfigStruct):
    """Net expected value of a candidate order."""

    fees: FeeSchedule = FeeSchedule()
    # Liquidity role assumed for the entry and (if include_exit) the exit order.
    entry_liquidity: Literal["maker", "taker"] = "maker"
    exit_liquidity: Literal["maker", "taker"] = "taker"
    include_exit: bool = True
    # Square-root impact when no book walk is available: slip_bps = coeff * sqrt(notional / depth).
    slippage_coeff_bps: NonNegFloat = 10.0
    # An order is proposed only when NEV > min_nev_bps (0: the "NEV <= 0 is not proposed").
    min_nev_bps: NonNegFloat = 0.0

    def validate(self) -> None:
        require_finite(self, "alpha.nev")
        self.fees.validate()


class AlphaConfig(ConfigStruct):
    """The Oracle: signals, order-book features, Alpha Rank Score, NEV."""

    signal: SignalConfig = SignalConfig()
    book: BookConfig = BookConfig()
    ars: ArsConfig = ArsConfig()
    nev: NevConfig = NevConfig()

    def validate(self) -> None:
        for part in (self.signal, self.book, self.ars, self.nev):
            part.validate()
