"""Aligned multi-asset bar matrices (assets x time) with an explicit mask of real bars.

A missing bar is never forward-filled: its values are NaN and ``mask[n, t]`` is False. When
the catalog holds a finer bar size than asked for, bars are aggregated (open first, high max,
low min, close last, volume sum) and an aggregated bar is real only when every finer bar in
it is real; the count of such incomplete bars is reported, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError
from dolphin.data.schema import bar_interval_ns

__all__ = ["AlignedBars", "align_bars", "bar_sources", "bars_from_trades", "built_from_trades"]

_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class AlignedBars:
    """Bars of N assets on one clock of T steps. Arrays are (N, T), float64, NaN where missing.

    ``ts_ns[t]`` is the open time of column t. ``mask[n, t]`` is True where the bar is real.
    ``incomplete[n]`` counts aggregated bars dropped because a finer bar inside was missing.
    """

    ts_ns: np.ndarray
    symbols: tuple[str, ...]
    bar_ns: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    mask: np.ndarray
    source_datasets: tuple[str, ...]
    incomplete: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape  # type: ignore[return-value]

    def coverage(self) -> np.ndarray:
        """Fraction of real bars per asset."""
        t = self.mask.shape[1]
        return self.mask.sum(axis=1) / t if t else np.zeros(len(self.symbols))

    def log_returns(self) -> tuple[np.ndarray, np.ndarray]:
        """Close-to-close log returns (N, T-1) and their mask (both neighbouring bars real)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.diff(np.log(self.close), axis=1)
        m = self.mask[:, 1:] & self.mask[:, :-1]
        return np.where(m, r, np.nan), m


def bar_sources(catalog: Catalog, venue: str, bar_ns: int) -> list[tuple[int, str]]:
    """Bar datasets of ``venue`` whose size divides ``bar_ns``, coarsest first: what
    :func:`align_bars` may read (``CatalogError`` when there is none)."""
    out = []
    for ds in catalog.datasets():
        if ds.startswith("bars_") and venue in catalog.venues(ds):
            src_ns = bar_interval_ns(ds)
            if src_ns <= bar_ns and bar_ns % src_ns == 0:
                out.append((src_ns, ds))
    if not out:
        raise CatalogError(
            f"no bar dataset for venue {venue} whose bar size divides {bar_ns} ns "
            f"(catalog has {[d for d in catalog.datasets() if d.startswith('bars_')]})"
        )
    return sorted(out, reverse=True)


def align_bars(
    catalog: Catalog,
    venue: str,
    symbols: Sequence[str] | None,
    start_ns: int,
    end_ns: int,
    bar: str = "1m",
) -> AlignedBars:
    """Aligned (N, T) matrices for ``symbols`` on the grid ``[start_ns, end_ns)`` of ``bar`` size."""
    bar_ns = bar_interval_ns(bar)
    if end_ns <= start_ns:
        raise CatalogError(f"empty range: end_ns {end_ns} <= start_ns {start_ns}")
    start = (start_ns // bar_ns) * bar_ns
    t_count = int(-(-(end_ns - start) // bar_ns))
    sources = bar_sources(catalog, venue, bar_ns)
    stored = {ds: set(catalog.symbols(ds, venue)) for _, ds in sources}
    if symbols is None:
        syms = tuple(sorted({s for _, ds in sources for s in stored[ds]}))
    else:
        syms = tuple(symbols)
    if len(set(syms)) != len(syms):
        raise CatalogError(f"symbols repeat: {sorted(s for s in set(syms) if syms.count(s) > 1)}")
    n = len(syms)
    used: set[str] = set()
    out = {f: np.full((n, t_count), np.nan) for f in _FIELDS}
    mask = np.zeros((n, t_count), dtype=bool)
    incomplete = np.zeros(n, dtype=np.int64)
    ts_grid = start + np.arange(t_count, dtype=np.int64) * bar_ns
    # Per asset, the coarsest stored bar size that divides the requested one; one
    # multi-threaded read per source dataset.
    plan: dict[str, list[int]] = {}
    for i, sym in enumerate(syms):
        src = next((ds for _, ds in sources if sym in stored[ds]), None)
        if src is not None:
            plan.setdefault(src, []).append(i)
    for ds, members in plan.items():
        used.add(ds)
        src_ns = bar_interval_ns(ds)
        k = bar_ns // src_ns
        tbl = catalog.read_many(ds, venue, [syms[i] for i in members], start, start + t_count * bar_ns,
                                columns=["ts_ns", *_FIELDS])  # fmt: skip
        if tbl.num_rows == 0:
            continue
        codes_arr = pc.dictionary_encode(tbl.column("symbol")).combine_chunks()
        names = codes_arr.dictionary.to_pylist()
        codes = codes_arr.indices.to_numpy()
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        ts_all = tbl.column("ts_ns").to_numpy()
        vals_all = {f: pc.cast(tbl.column(f), pa.float64()).to_numpy() for f in _FIELDS}
        row_of = {syms[i]: i for i in members}
        for c, name in enumerate(names):
            i = row_of[name]
            sel = order[bounds[c] : bounds[c + 1]]
            ts = ts_all[sel]
            vals = {f: v[sel] for f, v in vals_all.items()}
            _place(out, mask, incomplete, i, ts, vals, start, bar_ns, src_ns, k, t_count)
    return AlignedBars(
        ts_ns=ts_grid, symbols=syms, bar_ns=bar_ns, mask=mask, source_datasets=tuple(sorted(used)),
        incomplete=incomplete,
        **out,
    )  # fmt: skip


def _place(out, mask, incomplete, i, ts, vals, start, bar_ns, src_ns, k, t_count) -> None:
    """Put one asset's bars (already read, float64) on row ``i`` of the grid."""
    if k == 1:
        idx = ((ts - start) // bar_ns).astype(np.int64)
        for f in _FIELDS:
            out[f][i, idx] = vals[f]
        mask[i, idx] = True
        return
    # Aggregate k finer bars into one; real only when all k are present.
    sub = ((ts - start) // src_ns).astype(np.int64)
    fine = {f: np.full(t_count * k, np.nan) for f in _FIELDS}
    present = np.zeros(t_count * k, dtype=bool)
    for f in _FIELDS:
        fine[f][sub] = vals[f]
    present[sub] = True
    pres = present.reshape(t_count, k)
    full = pres.all(axis=1)
    any_ = pres.any(axis=1)
    incomplete[i] = int((any_ & ~full).sum())
    o = fine["open"].reshape(t_count, k)[:, 0]
    c = fine["close"].reshape(t_count, k)[:, -1]
    with np.errstate(invalid="ignore"):
        h = np.nanmax(np.where(pres, fine["high"].reshape(t_count, k), -np.inf), axis=1)
        lo = np.nanmin(np.where(pres, fine["low"].reshape(t_count, k), np.inf), axis=1)
    v = np.where(pres, fine["volume"].reshape(t_count, k), 0.0).sum(axis=1)
    for f, arr in zip(_FIELDS, (o, h, lo, c, v)):
        out[f][i] = np.where(full, arr, np.nan)
    mask[i] = full


def bars_from_trades(trades: pa.Table, bar: str = "5s") -> pa.Table:
    """Aggregate a trades table into bars of ``bar`` size (only bars with at least one trade).

    Prices stay decimal; volume is the summed quantity; trade_count the number of trades;
    taker_buy_volume sums trades where the buyer was the taker (``buyer_is_maker`` False).
    """
    from dolphin.data.schema import BARS

    bar_ns = bar_interval_ns(bar)
    if trades.num_rows == 0:
        return BARS.empty_table()
    ts = trades.column("ts_ns").to_numpy()
    order = np.argsort(ts, kind="stable")
    t = trades.take(pa.array(order))
    bucket = (t.column("ts_ns").to_numpy() // bar_ns) * bar_ns
    n = t.num_rows
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:] - 1, n - 1]
    price, qty = t.column("price"), t.column("quantity")
    zero = pa.scalar(0, qty.type)
    taker_qty = pc.if_else(t.column("buyer_is_maker"), zero, qty)
    g = (
        pa.table({"bucket": pa.array(bucket, pa.int64()), "price": price, "quantity": qty, "taker": taker_qty})
        .group_by("bucket", use_threads=False)
        .aggregate([("price", "max"), ("price", "min"), ("quantity", "sum"), ("taker", "sum"), ("bucket", "count")])
        .sort_by("bucket")
    )
    dec = BARS.field("open").type
    return pa.table(
        [
            pa.array(bucket[starts], pa.int64()), price.take(pa.array(starts)), g.column("price_max").cast(dec),
            g.column("price_min").cast(dec), price.take(pa.array(ends)), g.column("quantity_sum").cast(dec),
            pa.nulls(len(starts), dec), g.column("bucket_count").cast(pa.int64()), g.column("taker_sum").cast(dec),
        ],
        schema=BARS,
    )  # fmt: skip


def built_from_trades(bars: pa.Table) -> np.ndarray:
    """Mask of the bars that look built by :func:`bars_from_trades` (a trade count, no quote
    volume): recomputable from stored trades. Venue klines carry a quote volume, converted OHLCV
    files no trade count; those are never taken for trade-built bars."""
    return np.asarray(
        pc.and_(pc.is_null(bars.column("quote_volume")), pc.is_valid(bars.column("trade_count")))
        .to_numpy(zero_copy_only=False), dtype=bool,
    )  # fmt: skip
