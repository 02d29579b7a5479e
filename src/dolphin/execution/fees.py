"""The simulated venue's commission: the maker / taker fee, plus the transaction tax on the side(s)
the NEV gate taxes.

The instrument carries the venue's maker and taker fees only; NautilusTrader's
`MakerTakerFeeModel` charges them by liquidity side. A transaction tax (STT-style) is charged here
on fills of the taxed side: `alpha.nev.fees.tax_side` (none / buy / sell / both), the side the NEV
gate prices (`alpha.nev.tax_bps`). So the backtest and paper venues charge what the gate assumed,
also for a one-sided tax. Before, the tax was folded into the instrument's fees, which charged it
on every fill, so a one-sided tax had to be refused.
"""

from __future__ import annotations

import math
from decimal import Decimal

from nautilus_trader.backtest.models import FeeModel, MakerTakerFeeModel
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.objects import Money

__all__ = ["SideTaxFeeModel", "TAX_SIDES", "taxes_charged", "venue_fee_model"]

TAX_SIDES = ("none", "buy", "sell", "both")


class SideTaxFeeModel(MakerTakerFeeModel):
    """Maker / taker fee from the instrument, plus ``tax_bps`` of the fill's notional on fills of
    the taxed side. ``taxes_usdt`` and ``taxed_fills`` count what it charged."""

    def __init__(self, tax_bps: float, tax_side: str) -> None:
        super().__init__()
        if tax_side not in TAX_SIDES:
            raise ValueError(f"tax_side must be one of {TAX_SIDES}, got {tax_side!r}")
        if not (math.isfinite(tax_bps) and tax_bps >= 0.0):
            raise ValueError(f"tax_bps must be finite and >= 0, got {tax_bps!r}")
        self.tax_bps = tax_bps
        self.tax_side = tax_side
        self._rate = Decimal(str(tax_bps)) / Decimal(10_000)
        self._buy = tax_side in ("buy", "both")
        self._sell = tax_side in ("sell", "both")
        self.taxes_usdt = 0.0
        self.taxed_fills = 0

    def get_commission(self, order, fill_qty, fill_px, instrument) -> Money:
        fee = MakerTakerFeeModel.get_commission(self, order, fill_qty, fill_px, instrument)
        if not (self._buy if order.side == OrderSide.BUY else self._sell):
            return fee
        notional = instrument.notional_value(fill_qty, fill_px, use_quote_for_inverse=False)
        tax = Money(notional.as_decimal() * self._rate, fee.currency)
        self.taxes_usdt += tax.as_double()
        self.taxed_fills += 1
        return Money(fee.as_decimal() + tax.as_decimal(), fee.currency)


def venue_fee_model(tax_bps: float, tax_side: str) -> FeeModel:
    """The venue's fee model: NautilusTrader's own when there is no tax to charge."""
    if tax_side not in TAX_SIDES:
        raise ValueError(f"tax_side must be one of {TAX_SIDES}, got {tax_side!r}")
    if tax_bps == 0.0 or tax_side == "none":
        return MakerTakerFeeModel()
    return SideTaxFeeModel(tax_bps, tax_side)


def taxes_charged(model: FeeModel | None) -> float:
    """The tax a venue fee model charged (USDT; 0 for a model that charges none)."""
    return model.taxes_usdt if isinstance(model, SideTaxFeeModel) else 0.0
