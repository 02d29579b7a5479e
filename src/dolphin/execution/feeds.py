"""NautilusTrader data for backtests, read from dolphin's Parquet catalog.

The catalog (``dolphin.data.catalog.Catalog``) is the only source: streams are exported with
``dolphin.data.nautilus.export_stream`` into a NautilusTrader ``ParquetDataCatalog`` (again
whenever the stream's fingerprint in the catalog changed: ``ensure_exported``) and read back as NautilusTrader objects. The instrument
is the exporter's (``instrument_for``: precisions from the data) with the backtest's maker / taker
fees (a transaction tax is charged by the venue's fee model on the taxed side: ``execution.fees``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.instruments import CryptoPerpetual

from dolphin.data.catalog import Catalog
from dolphin.execution.instruments import make_usdm_perp

log = logging.getLogger(__name__)

__all__ = ["BarSet", "DepthSet", "TickSet", "catalog_bar_set", "catalog_depth", "catalog_ticks", "ensure_exported",
           "stream_fingerprint"]


@dataclass
class BarSet:
    instrument: CryptoPerpetual
    bar_type: BarType
    bars: list[Bar]


@dataclass
class TickSet:
    instrument: CryptoPerpetual
    quotes: list
    trades: list


@dataclass
class DepthSet:
    instrument: CryptoPerpetual
    deltas: list  # OrderBookDeltas batches: the snapshot, then one batch per diff message
    trades: list
    snapshot_update_id: int
    diffs_applied: int  # diff messages replayed after the snapshot
    diffs_dropped: int  # diff messages already contained in the snapshot (u < lastUpdateId)
    # replayed diffs whose pu is not the previous diff's u, plus one when the first replayed diff
    # does not bracket the snapshot (U <= lastUpdateId <= u)
    chain_breaks: int


def stream_fingerprint(catalog: Catalog, dataset: str, venue: str, symbol: str) -> str:
    """SHA-256 (16 hex digits) over one catalog stream's day files, names and bytes: it changes
    whenever an ingest adds, replaces or merges rows."""
    h = hashlib.sha256()
    for f in catalog.files(dataset, venue, symbol):
        h.update(f.name.encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def ensure_exported(
    catalog: Catalog, nautilus_dir: Path, dataset: str, venue: str, symbol: str, *, force: bool = False
) -> int:
    """Export one catalog stream to the NautilusTrader catalog unless the export there is of the
    stream as it is now (its fingerprint is kept beside the export: new rows ingested since are
    exported again instead of being silently ignored, found in review 2026-12-06). Returns the
    number of data objects written (0: the export was current)."""
    from dolphin.data.nautilus import bar_type_for, export_stream, instrument_for

    sub = {"trades": "trade_tick", "quotes": "quote_tick", "depth": "order_book_deltas"}.get(dataset, "bar")
    if dataset.startswith("bars_"):
        ident = str(bar_type_for(instrument_for(venue, symbol, 1, 1).id, dataset))
    else:
        ident = str(instrument_for(venue, symbol, 1, 1).id)
    fp = stream_fingerprint(catalog, dataset, venue, symbol)
    marker = nautilus_dir / "dolphin_exports" / f"{dataset}__{venue}__{symbol}.sha256"
    current = marker.read_text().strip() if marker.is_file() else None
    if force or current != fp or not (nautilus_dir / "data" / sub / ident).is_dir():
        if current is not None and current != fp:
            log.info("%s/%s/%s changed in the catalog since its export: exported again", dataset, venue, symbol)
        n = export_stream(catalog, nautilus_dir, dataset, venue, symbol)[1]
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(fp + "\n")
        os.replace(tmp, marker)  # written after the export: a crash in between exports again
        return n
    return 0


def _instrument(nc, symbol: str, venue: str, *, maker_fee_bps: float, taker_fee_bps: float):
    from dolphin.data.nautilus import instrument_for

    iid = instrument_for(venue, symbol, 1, 1).id
    found = [i for i in nc.instruments(instrument_ids=[str(iid)])]
    if not found:
        raise FileNotFoundError(f"no instrument {iid} in the NautilusTrader catalog")
    inst = found[-1]
    return make_usdm_perp(
        symbol, inst.price_precision, inst.size_precision,
        maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps,
    )  # fmt: skip


def catalog_bar_set(
    catalog: Catalog, nautilus_dir: Path, dataset: str, venue: str, symbol: str, *,
    maker_fee_bps: float, taker_fee_bps: float,
    start_ns: int | None = None, end_ns: int | None = None, max_bars: int | None = None,
) -> BarSet:  # fmt: skip
    """Bars of one symbol (stamped at the bar's close, when it is known) from the catalog."""
    from dolphin.data.nautilus import bar_type_for, nautilus_catalog

    ensure_exported(catalog, nautilus_dir, dataset, venue, symbol)
    nc = nautilus_catalog(nautilus_dir)
    inst = _instrument(nc, symbol, venue, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps)
    bar_type = bar_type_for(inst.id, dataset)
    bars = nc.bars(bar_types=[str(bar_type)], start=start_ns, end=end_ns)
    if max_bars is not None:
        bars = bars[:max_bars]
    if not bars:
        raise FileNotFoundError(f"no {dataset} bars for {venue}/{symbol} in the catalog")
    return BarSet(inst, bar_type, bars)


def catalog_ticks(
    catalog: Catalog, nautilus_dir: Path, venue: str, symbol: str, *,
    maker_fee_bps: float, taker_fee_bps: float, max_quotes: int | None = None,
) -> TickSet:  # fmt: skip
    """L1 quotes (bookTicker) and trades of one symbol from the catalog (trades after the last
    kept quote are dropped, so both streams end together)."""
    from dolphin.data.nautilus import nautilus_catalog

    ensure_exported(catalog, nautilus_dir, "quotes", venue, symbol)
    ensure_exported(catalog, nautilus_dir, "trades", venue, symbol)
    nc = nautilus_catalog(nautilus_dir)
    inst = _instrument(nc, symbol, venue, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps)
    quotes = nc.quote_ticks(instrument_ids=[str(inst.id)])
    if max_quotes is not None:
        quotes = quotes[:max_quotes]
    if not quotes:
        raise FileNotFoundError(f"no quotes for {venue}/{symbol} in the catalog")
    last = quotes[-1].ts_event
    trades = [t for t in nc.trade_ticks(instrument_ids=[str(inst.id)]) if t.ts_event <= last]
    return TickSet(inst, quotes, trades)


def catalog_depth(
    catalog: Catalog, nautilus_dir: Path, venue: str, symbol: str, *,
    maker_fee_bps: float, taker_fee_bps: float,
) -> DepthSet:  # fmt: skip
    """The L2 capture as NautilusTrader order-book delta batches (snapshot + diffs in Binance's
    sync order, ``dolphin.data.nautilus.depth_in_sync_order``) plus the trades inside its span."""
    import numpy as np
    from nautilus_trader.model.data import OrderBookDeltas
    from nautilus_trader.model.enums import RecordFlag

    from dolphin.data.nautilus import depth_in_sync_order, nautilus_catalog

    ensure_exported(catalog, nautilus_dir, "depth", venue, symbol)
    ensure_exported(catalog, nautilus_dir, "trades", venue, symbol)
    nc = nautilus_catalog(nautilus_dir)
    inst = _instrument(nc, symbol, venue, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps)
    raw = nc.order_book_deltas(instrument_ids=[str(inst.id)])
    if not raw:
        raise FileNotFoundError(f"no depth for {venue}/{symbol} in the catalog")
    batches, cur = [], []
    last_flag = int(RecordFlag.F_LAST)
    for d in raw:
        cur.append(d)
        if d.flags & last_flag:
            batches.append(OrderBookDeltas(inst.id, cur))
            cur = []
    if cur:
        batches.append(OrderBookDeltas(inst.id, cur))
    # Sync statistics from the stored rows (the same rows the export replays).
    table = catalog.read("depth", venue, symbol)
    snap = table.column("is_snapshot").to_numpy(zero_copy_only=False)
    last = table.column("last_update_id").to_numpy()
    prev = table.column("prev_update_id").to_numpy()
    first_id = int(last[np.flatnonzero(snap)[0]]) if snap.any() else -1
    diff_u, idx = np.unique(last[~snap], return_index=True)
    diff_pu = prev[~snap][idx]
    diff_U = table.column("first_update_id").to_numpy()[~snap][idx]
    kept = diff_u >= first_id
    ku, kpu, kU = diff_u[kept], diff_pu[kept], diff_U[kept]
    breaks = int((kpu[1:] != ku[:-1]).sum())
    if snap.any() and ku.size and not (kU[0] <= first_id <= ku[0]):
        # Binance's rule for the first diff applied after the snapshot (U <= lastUpdateId <= u): a
        # stream that connected late or lost its first messages replays a book with a gap
        breaks += 1
    synced = depth_in_sync_order(table)
    assert synced.num_rows <= table.num_rows
    t_first, t_last = batches[0].ts_event, batches[-1].ts_event
    trades = [t for t in nc.trade_ticks(instrument_ids=[str(inst.id)]) if t_first <= t.ts_event <= t_last]
    return DepthSet(inst, batches, trades, first_id, int(kept.sum()), int((~kept).sum()), breaks)
