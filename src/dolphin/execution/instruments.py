"""BINANCE USDT-M perpetual instruments for NautilusTrader, precision taken from the data."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Iterable

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Currency, Price, Quantity

__all__ = ["BINANCE", "instrument_id_for", "make_usdm_perp", "price_precision_of"]

BINANCE = Venue("BINANCE")


def instrument_id_for(symbol: str) -> InstrumentId:
    return InstrumentId(Symbol(f"{symbol}-PERP"), BINANCE)


def price_precision_of(prices: Iterable[str]) -> int:
    """Decimals needed to write every price exactly (trailing zeros ignored)."""
    best = 0
    for text in prices:
        if "." in text:
            frac = text.split(".", 1)[1].rstrip("0")
            best = max(best, len(frac))
    return best


def size_precision_for(price: float) -> int:
    """Size decimals so that one size increment is worth about 1-10 USDT at `price`."""
    if price <= 0 or not math.isfinite(price):
        return 0
    return int(min(8, max(0, math.ceil(math.log10(price / 10.0)))))


def make_usdm_perp(
    symbol: str,
    price_precision: int,
    size_precision: int,
    *,
    maker_fee_bps: float,
    taker_fee_bps: float,
) -> CryptoPerpetual:
    """A linear USDT-settled perpetual with the venue's maker / taker fees (a transaction tax is
    the venue fee model's: execution.fees)."""
    base = symbol[:-4] if symbol.endswith("USDT") else symbol
    maker = Decimal(str(round(maker_fee_bps / 1e4, 10)))
    taker = Decimal(str(round(taker_fee_bps / 1e4, 10)))
    return CryptoPerpetual(
        instrument_id=instrument_id_for(symbol),
        raw_symbol=Symbol(symbol),
        base_currency=Currency.from_str(base) if len(base) <= 16 else USDT,
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=price_precision,
        size_precision=size_precision,
        price_increment=Price(10.0**-price_precision, price_precision),
        size_increment=Quantity(10.0**-size_precision, size_precision),
        ts_event=0,
        ts_init=0,
        margin_init=Decimal("0.05"),
        margin_maint=Decimal("0.025"),
        maker_fee=maker,
        taker_fee=taker,
    )
