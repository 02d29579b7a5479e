"""TEMPORARY adapter: NautilusTrader bars from the shared gzipped CSVs.

To be replaced by catalog reads (``dolphin.data``) at merge. Reads
``open_time_ms,open,high,low,close,volume`` files (Binance USDT-M perps) and builds one
`Bar` per row, stamped at the bar's close (open time + interval), which is when the bar is
known. Price precision comes from the data; nothing is filled or resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Price, Quantity

from dolphin.execution.instruments import make_usdm_perp, price_precision_of, size_precision_for

__all__ = ["BarSet", "load_bar_set"]

NS_PER_MS = 1_000_000


@dataclass
class BarSet:
    instrument: CryptoPerpetual
    bar_type: BarType
    bars: list[Bar]


def load_bar_set(
    csv_gz: Path,
    bar_minutes: int,
    *,
    maker_fee_bps: float,
    taker_fee_bps: float,
    tax_bps: float = 0.0,
    max_rows: int | None = None,
) -> BarSet:
    symbol = csv_gz.name.split(".")[0]
    raw = pd.read_csv(csv_gz, dtype=str, nrows=max_rows)
    if raw.empty:
        raise ValueError(f"{csv_gz}: no rows")
    pp = price_precision_of(pd.concat([raw["open"], raw["high"], raw["low"], raw["close"]]).tolist())
    closes = raw["close"].astype(float)
    sp = size_precision_for(float(closes.median()))
    inst = make_usdm_perp(symbol, pp, sp, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps, tax_bps=tax_bps)
    bar_type = BarType.from_str(f"{inst.id}-{bar_minutes}-MINUTE-LAST-EXTERNAL")
    interval_ns = bar_minutes * 60_000 * NS_PER_MS
    vol_prec = sp  # NautilusTrader requires bar volume precision == instrument size precision
    bars: list[Bar] = []
    t = raw["open_time_ms"].astype("int64").to_numpy()
    o, h, lo, c, v = (raw[k].astype(float).to_numpy() for k in ("open", "high", "low", "close", "volume"))
    for i in range(len(raw)):
        ts = int(t[i]) * NS_PER_MS + interval_ns
        bars.append(
            Bar(
                bar_type,
                Price(o[i], pp),
                Price(h[i], pp),
                Price(lo[i], pp),
                Price(c[i], pp),
                Quantity(max(v[i], 0.0), vol_prec),
                ts,
                ts,
            )
        )
    return BarSet(inst, bar_type, bars)
