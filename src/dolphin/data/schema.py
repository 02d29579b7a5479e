"""Fixed Arrow schemas of the catalog's datasets.

Timestamps are integer nanoseconds since the Unix epoch (UTC), named ``*_ns``. Prices and
quantities are ``decimal128(38, 18)``: exact for every price and size Binance publishes
(at most 8 decimals) and for the float artefacts found in converted files (up to 18
decimals), so a round trip through the catalog never changes a value.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

__all__ = [
    "DECIMAL",
    "DATASETS",
    "SCHEMAS",
    "BARS",
    "TRADES",
    "DEPTH",
    "QUOTES",
    "FUNDING",
    "SERIES",
    "QUARANTINE",
    "PRICE_FIELDS",
    "SIZE_FIELDS",
    "bar_interval_ns",
    "dataset_kind",
]

DECIMAL: Final = pa.decimal128(38, 18)

BARS: Final = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),  # bar open time
        pa.field("open", DECIMAL, nullable=False),
        pa.field("high", DECIMAL, nullable=False),
        pa.field("low", DECIMAL, nullable=False),
        pa.field("close", DECIMAL, nullable=False),
        pa.field("volume", DECIMAL, nullable=False),  # base asset
        pa.field("quote_volume", DECIMAL),  # null where the source has none
        pa.field("trade_count", pa.int64()),
        pa.field("taker_buy_volume", DECIMAL),
    ]
)

TRADES: Final = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("trade_id", pa.int64(), nullable=False),
        pa.field("price", DECIMAL, nullable=False),
        pa.field("quantity", DECIMAL, nullable=False),
        pa.field("buyer_is_maker", pa.bool_(), nullable=False),
    ]
)

# Order-book depth: snapshot rows (is_snapshot) and diff rows. quantity 0 deletes a level.
DEPTH: Final = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),  # exchange event time
        pa.field("local_ts_ns", pa.int64()),  # receive time where recorded
        pa.field("first_update_id", pa.int64(), nullable=False),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("prev_update_id", pa.int64()),  # futures `pu`; null for spot/snapshots
        pa.field("is_bid", pa.bool_(), nullable=False),
        pa.field("is_snapshot", pa.bool_(), nullable=False),
        pa.field("price", DECIMAL, nullable=False),
        pa.field("quantity", DECIMAL, nullable=False),
    ]
)

QUOTES: Final = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("bid", DECIMAL, nullable=False),
        pa.field("bid_size", DECIMAL, nullable=False),
        pa.field("ask", DECIMAL, nullable=False),
        pa.field("ask_size", DECIMAL, nullable=False),
        pa.field("update_id", pa.int64()),  # the venue's book update id where it sends one
    ]
)

FUNDING: Final = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("funding_rate", DECIMAL, nullable=False),  # plain fraction per funding interval
    ]
)

# A generic daily/intraday factor series (DVOL, taker ratio, ...).
SERIES: Final = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("value", DECIMAL, nullable=False),
    ]
)

QUARANTINE: Final = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("line", pa.int64()),  # 1-based line in the source file; null if unknown
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string()),
    ]
)

SCHEMAS: Final = {
    "bars": BARS,
    "trades": TRADES,
    "depth": DEPTH,
    "quotes": QUOTES,
    "funding": FUNDING,
    "series": SERIES,
}

PRICE_FIELDS: Final = {
    "bars": ("open", "high", "low", "close"),
    "trades": ("price",),
    "depth": ("price",),
    "quotes": ("bid", "ask"),
    "funding": (),
    "series": (),
}
SIZE_FIELDS: Final = {
    "bars": ("volume", "quote_volume", "taker_buy_volume"),
    "trades": ("quantity",),
    "depth": ("quantity",),
    "quotes": ("bid_size", "ask_size"),
    "funding": (),
    "series": (),
}

_BAR_UNITS_NS: Final = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}

DATASETS: Final = ("bars_5s", "bars_1m", "bars_5m", "bars_15m", "bars_1h", "trades", "depth", "quotes", "funding")


def bar_interval_ns(spec: str) -> int:
    """``"5s"`` / ``"1m"`` / ``"5m"`` / ``"1h"`` -> nanoseconds. Raises ValueError naming the spec."""
    spec = spec.removeprefix("bars_")
    try:
        n, unit = int(spec[:-1]), spec[-1]
        if n <= 0 or unit not in _BAR_UNITS_NS:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"bad bar size {spec!r}: expected <positive int><s|m|h|d>, e.g. 5s, 1m") from None
    return n * _BAR_UNITS_NS[unit]


def dataset_kind(dataset: str) -> str:
    """``"bars_1m"`` -> ``"bars"``; other dataset names are their own kind."""
    if dataset.startswith("bars_"):
        bar_interval_ns(dataset)
        return "bars"
    if dataset.startswith("series_"):
        return "series"
    if dataset not in SCHEMAS:
        raise ValueError(f"unknown dataset {dataset!r}: expected bars_<size>, series_<name> or one of {sorted(SCHEMAS)}")
    return dataset
