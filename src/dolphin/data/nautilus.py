"""Export of catalog data into a NautilusTrader ParquetDataCatalog, so its backtests read
exactly what dolphin ingested.

Mapping:
  * ``BINANCE_USDM``/``SYM`` -> ``CryptoPerpetual`` ``SYM-PERP.BINANCE``;
    ``BINANCE_SPOT``/``SYM`` -> ``CurrencyPair`` ``SYM.BINANCE`` (NautilusTrader's Binance naming).
  * bars -> ``Bar`` of ``<id>-<n>-<MINUTE|SECOND|HOUR>-LAST-EXTERNAL``; Nautilus stamps a bar at its
    close, so ``ts_event = ts_ns + bar size`` (dolphin stores the open time).
  * trades -> ``TradeTick`` (aggressor SELLER when the buyer was the maker);
    quotes -> ``QuoteTick``; depth -> ``OrderBookDelta`` (a snapshot is CLEAR + ADDs with
    F_SNAPSHOT; a diff level with quantity 0 is DELETE, else UPDATE; F_LAST ends each message).
  * Price/size precision: one per instrument, the fewest decimals that represent every value of
    every stream stored for it (bars, trades, quotes, depth; checked on the decimals, so nothing is
    rounded). NautilusTrader requires each tick's and bar's precision to equal its instrument's,
    so a stream exported earlier at another precision (a stream needing more decimals was stored
    since) is exported again with the instrument.
"""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dolphin.data.catalog import Catalog, _read_partition
from dolphin.data.errors import CatalogError
from dolphin.data.schema import bar_interval_ns

__all__ = [
    "bar_type_for", "decimals_needed", "depth_in_sync_order", "export_stream", "instrument_for",
    "instrument_precisions", "nautilus_catalog",
]  # fmt: skip

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD", "BTC", "ETH", "BNB")


def decimals_needed(col: pa.ChunkedArray | pa.Array, max_decimals: int = 16, rel_tol: float = 0.0) -> int:
    """The fewest decimals (<= ``max_decimals``) that represent every non-null value exactly, or,
    with ``rel_tol`` > 0, within that relative error (for float artefacts of converted sources)."""
    values = col.drop_null() if isinstance(col, pa.Array) else pa.chunked_array(col.chunks, col.type).drop_null()
    if len(values) == 0:
        return 0
    as_f = pc.cast(values, pa.float64()).to_numpy() if rel_tol else None
    for k in range(0, max_decimals + 1):
        rounded = pc.round(values, ndigits=k)
        if pc.all(pc.equal(rounded, values)).as_py():
            return k
        if rel_tol:
            err = np.abs(pc.cast(rounded, pa.float64()).to_numpy() - as_f)
            if np.all(err <= rel_tol * np.abs(as_f)):
                return k
    raise CatalogError(
        f"values need more than {max_decimals} decimals"
        + (f" even at relative tolerance {rel_tol}" if rel_tol else "")
        + "; NautilusTrader supports at most 16"
    )


# Values past this relative error would be changed by the export; below it they are float
# artefacts of converted sources (e.g. 0.0063289999999999996 for Binance's 0.006329).
EXPORT_REL_TOL = 1e-12


def _currency(code: str):
    from nautilus_trader.model.enums import CurrencyType
    from nautilus_trader.model.objects import Currency

    try:
        return Currency.from_str(code)
    except (ValueError, KeyError):
        return Currency(code, 8, 0, code, CurrencyType.CRYPTO)


def instrument_for(venue: str, symbol: str, price_precision: int, size_precision: int, ts_ns: int = 0):
    """A NautilusTrader instrument for a dolphin (venue, symbol)."""
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair
    from nautilus_trader.model.objects import Price, Quantity

    quote = next((q for q in _QUOTES if symbol.endswith(q) and len(symbol) > len(q)), None)
    if quote is None:
        raise CatalogError(f"cannot split {symbol!r} into base and quote currency")
    base_ccy, quote_ccy = _currency(symbol[: -len(quote)]), _currency(quote)
    p_inc = Price(10.0**-price_precision, price_precision)
    s_inc = Quantity(10.0**-size_precision, size_precision)
    if venue == "BINANCE_USDM":
        return CryptoPerpetual(
            instrument_id=InstrumentId(Symbol(f"{symbol}-PERP"), Venue("BINANCE")),
            raw_symbol=Symbol(symbol), base_currency=base_ccy, quote_currency=quote_ccy,
            settlement_currency=quote_ccy, is_inverse=False, price_precision=price_precision,
            price_increment=p_inc, size_precision=size_precision, size_increment=s_inc,
            max_quantity=None, min_quantity=s_inc, max_notional=None, min_notional=None,
            max_price=None, min_price=None, margin_init=Decimal("0.05"), margin_maint=Decimal("0.025"),
            maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"), ts_event=ts_ns, ts_init=ts_ns,
        )  # fmt: skip
    if venue == "BINANCE_SPOT":
        return CurrencyPair(
            instrument_id=InstrumentId(Symbol(symbol), Venue("BINANCE")), raw_symbol=Symbol(symbol),
            base_currency=base_ccy, quote_currency=quote_ccy, price_precision=price_precision,
            size_precision=size_precision, price_increment=p_inc, size_increment=s_inc,
            lot_size=None, max_quantity=None, min_quantity=s_inc, max_notional=None, min_notional=None,
            max_price=None, min_price=None, margin_init=Decimal(0), margin_maint=Decimal(0),
            maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"), ts_event=ts_ns, ts_init=ts_ns,
        )  # fmt: skip
    raise CatalogError(f"no NautilusTrader instrument mapping for venue {venue!r}")


def bar_type_for(instrument_id, dataset: str):
    from nautilus_trader.model.data import BarType

    ns = bar_interval_ns(dataset)
    for unit_ns, name in ((3_600_000_000_000, "HOUR"), (60_000_000_000, "MINUTE"), (1_000_000_000, "SECOND")):
        if ns % unit_ns == 0:
            return BarType.from_str(f"{instrument_id}-{ns // unit_ns}-{name}-LAST-EXTERNAL")
    raise CatalogError(f"bar size of {dataset} has no NautilusTrader aggregation")


def _f(col: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(col, pa.float64()).to_numpy()


_NT_SUB = {"trades": "trade_tick", "quotes": "quote_tick", "depth": "order_book_deltas"}  # else "bar"


def _price_size_columns(dataset: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if dataset.startswith("bars_"):
        return ("open", "high", "low", "close"), ("volume",)
    if dataset == "quotes":
        return ("bid", "ask"), ("bid_size", "ask_size")
    return ("price",), ("quantity",)


def _precisions(dataset: str, table: pa.Table) -> tuple[int, int]:
    def need(cols: tuple[str, ...]) -> int:
        return max(decimals_needed(table.column(c), rel_tol=EXPORT_REL_TOL) for c in cols)

    price_cols, size_cols = _price_size_columns(dataset)
    return need(price_cols), need(size_cols)


def _exportable(dataset: str) -> bool:
    if dataset in _NT_SUB:
        return True
    if not dataset.startswith("bars_"):
        return False
    try:
        bar_interval_ns(dataset)
    except ValueError:
        return False
    return True


def _stored_streams(catalog: Catalog, venue: str, symbol: str) -> list[str]:
    """The datasets stored for ``venue``/``symbol`` that have a NautilusTrader data type."""
    return [d for d in catalog.datasets() if _exportable(d) and symbol in catalog.symbols(d, venue)]


def instrument_precisions(
    catalog: Catalog, venue: str, symbol: str, *, cache_dir: str | Path | None = None
) -> tuple[int, int]:
    """(price, size) precision of the instrument: the most decimals any stream stored for it needs.

    One instrument has one precision in NautilusTrader, whatever stream is exported first or last:
    a price precision taken per stream (the 2024-08-08 USDT-M capture's trades need 1 decimal, the
    Tardis book of the same instrument 2) made the other stream's ticks fail the engine's check.
    With ``cache_dir`` the precision of each day file is kept there (keyed by its size, time and
    inode; the catalog replaces a file by rename, never in place), so an export does not read
    every stored stream of the instrument again.
    """
    cache_path = Path(cache_dir) / f"precisions__{venue}__{symbol}.json" if cache_dir is not None else None
    cache: dict[str, list[int]] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            cache = {k: list(v) for k, v in json.loads(cache_path.read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            cache = {}  # unreadable: recomputed
    fresh: dict[str, list[int]] = {}
    pp = sp = 0
    for dataset in _stored_streams(catalog, venue, symbol):
        schema = catalog.schema(dataset)
        price_cols, size_cols = _price_size_columns(dataset)
        for f in catalog.files(dataset, venue, symbol):
            st = f.stat()
            key, sig = f"{dataset}/{f.name}", [st.st_size, st.st_mtime_ns, st.st_ino]
            hit = cache.get(key)
            if hit is not None and len(hit) == 5 and hit[:3] == sig:
                fp, fs = hit[3], hit[4]
            else:
                try:
                    fp, fs = _precisions(dataset, _read_partition(f, schema).select(price_cols + size_cols))
                except CatalogError as exc:
                    raise CatalogError(f"{dataset}/{venue}/{symbol} ({f.name}): {exc}") from None
            fresh[key] = sig + [fp, fs]
            pp, sp = max(pp, fp), max(sp, fs)
    if cache_path is not None and fresh != cache:
        tmp = cache_path.with_name(f".{cache_path.name}.tmp-{os.getpid()}")
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(fresh, sort_keys=True))
            os.replace(tmp, cache_path)
        except OSError:  # a cache only: the next export computes again
            tmp.unlink(missing_ok=True)
    return pp, sp


def _to_objects(dataset: str, table: pa.Table, inst) -> list:
    from nautilus_trader.model.data import Bar, BookOrder, OrderBookDelta, QuoteTick, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import Price, Quantity

    pp, sp = inst.price_precision, inst.size_precision
    iid = inst.id
    ts = table.column("ts_ns").to_numpy()
    out: list = []
    if dataset.startswith("bars_"):
        bt = bar_type_for(iid, dataset)
        step = bar_interval_ns(dataset)
        o, h, lo, c, v = (_f(table.column(x)) for x in ("open", "high", "low", "close", "volume"))
        for i in range(table.num_rows):
            t = int(ts[i]) + step
            out.append(Bar(bt, Price(o[i], pp), Price(h[i], pp), Price(lo[i], pp), Price(c[i], pp),
                           Quantity(v[i], sp), t, t))  # fmt: skip
    elif dataset == "trades":
        p, q = _f(table.column("price")), _f(table.column("quantity"))
        ids = table.column("trade_id").to_numpy()
        maker = table.column("buyer_is_maker").to_numpy(zero_copy_only=False)
        for i in range(table.num_rows):
            side = AggressorSide.SELLER if maker[i] else AggressorSide.BUYER
            out.append(TradeTick(iid, Price(p[i], pp), Quantity(q[i], sp), side, TradeId(str(ids[i])),
                                 int(ts[i]), int(ts[i])))  # fmt: skip
    elif dataset == "quotes":
        b, bs, a, as_ = (_f(table.column(x)) for x in ("bid", "bid_size", "ask", "ask_size"))
        for i in range(table.num_rows):
            out.append(QuoteTick(iid, Price(b[i], pp), Price(a[i], pp), Quantity(bs[i], sp), Quantity(as_[i], sp),
                                 int(ts[i]), int(ts[i])))  # fmt: skip
    elif dataset == "depth":
        table = depth_in_sync_order(table)
        ts = np.maximum.accumulate(table.column("ts_ns").to_numpy())  # Nautilus wants non-decreasing time
        p, q = _f(table.column("price")), _f(table.column("quantity"))
        is_bid = table.column("is_bid").to_numpy(zero_copy_only=False)
        snap = table.column("is_snapshot").to_numpy(zero_copy_only=False)
        last_id = table.column("last_update_id").to_numpy()
        n = table.num_rows
        for i in range(n):
            new_msg = i == 0 or last_id[i] != last_id[i - 1] or snap[i] != snap[i - 1]
            end_msg = i == n - 1 or last_id[i + 1] != last_id[i] or snap[i + 1] != snap[i]
            t, seq = int(ts[i]), int(last_id[i])
            flags = RecordFlag.F_SNAPSHOT if snap[i] else 0
            if snap[i] and new_msg:
                out.append(OrderBookDelta.clear(iid, seq, t, t))
            side = OrderSide.BUY if is_bid[i] else OrderSide.SELL
            if q[i] == 0:
                action, size = BookAction.DELETE, Quantity(0, sp)
            else:
                action, size = (BookAction.ADD if snap[i] else BookAction.UPDATE), Quantity(q[i], sp)
            order = BookOrder(side, Price(p[i], pp), size, 0)
            out.append(OrderBookDelta(iid, action, order, flags | (RecordFlag.F_LAST if end_msg else 0), seq, t, t))
    else:
        raise CatalogError(f"dataset {dataset!r} has no NautilusTrader data type")
    return out


def depth_in_sync_order(table: pa.Table) -> pa.Table:
    """Depth rows in the order a book must apply them (Binance's sync rule).

    With a snapshot (id L): the first snapshot, then the diffs with final update id u >= L in
    ascending u; diffs with u < L are already in the snapshot and are left out of the export
    (they stay in the catalog). Later snapshots are left out too (one book, one sync). Without
    a snapshot the diffs are returned in ascending u (a book built from them starts empty).
    """
    snap = table.column("is_snapshot").to_numpy(zero_copy_only=False)
    last = table.column("last_update_id").to_numpy()
    diff_idx = np.flatnonzero(~snap)
    diff_idx = diff_idx[np.argsort(last[diff_idx], kind="stable")]
    if not snap.any():
        return table.take(pa.array(diff_idx))
    first_id = last[np.flatnonzero(snap)[0]]
    snap_idx = np.flatnonzero(snap & (last == first_id))
    keep_diffs = diff_idx[last[diff_idx] >= first_id]
    return table.take(pa.array(np.concatenate([snap_idx, keep_diffs])))


def nautilus_catalog(path: str | Path):
    """Open (creating the folder) a NautilusTrader ParquetDataCatalog."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    Path(path).mkdir(parents=True, exist_ok=True)
    return ParquetDataCatalog(str(path))


def export_stream(
    catalog: Catalog, nautilus_dir: str | Path, dataset: str, venue: str, symbol: str,
    start_ns: int | None = None, end_ns: int | None = None,
):  # fmt: skip
    """Write one catalog stream (and its instrument) into a NautilusTrader catalog.

    The instrument's precision is :func:`instrument_precisions` (all streams stored for it). Other
    streams of the instrument already in the NautilusTrader catalog at another precision are
    exported again, whole, at the instrument's; one that the catalog does not hold (so cannot be
    exported again) raises :class:`CatalogError` naming it, before anything is written.

    Returns (instrument, number of data objects written for this stream).
    """
    table = catalog.read(dataset, venue, symbol, start_ns, end_ns)
    if table.num_rows == 0:
        raise CatalogError(f"nothing stored for {dataset}/{venue}/{symbol} in the range")
    nautilus_dir = Path(nautilus_dir)
    pp, sp = instrument_precisions(catalog, venue, symbol, cache_dir=nautilus_dir / "dolphin_exports")
    inst = instrument_for(venue, symbol, pp, sp, int(table.column("ts_ns")[0].as_py()))
    again = _streams_to_export_again(catalog, nautilus_dir, inst, dataset, venue, symbol)
    objs = _to_objects(dataset, table, inst)
    nc = nautilus_catalog(nautilus_dir)
    # Replace, never append: NautilusTrader skips a file whose interval exists already, so a
    # stale export would silently survive a re-ingest.
    inst_dir = nautilus_dir / "data" / _inst_folder(inst) / str(inst.id)
    for folder in (_stream_folder(nautilus_dir, dataset, inst.id), inst_dir):
        if folder.is_dir():
            shutil.rmtree(folder)
    nc.write_data([inst])
    nc.write_data(objs)
    for other in again:
        other_objs = _to_objects(other, catalog.read(other, venue, symbol), inst)
        shutil.rmtree(_stream_folder(nautilus_dir, other, inst.id))
        nc.write_data(other_objs)
    return inst, len(objs)


def _stream_folder(nautilus_dir: Path, dataset: str, instrument_id) -> Path:
    ident = str(bar_type_for(instrument_id, dataset)) if dataset.startswith("bars_") else str(instrument_id)
    return nautilus_dir / "data" / _NT_SUB.get(dataset, "bar") / ident


def _exported_precision(folder: Path) -> tuple[int, int] | None:
    """(price, size) precision written in the folder's Parquet metadata; None when the files
    disagree or do not say."""
    import pyarrow.parquet as pq

    seen = set()
    for f in sorted(folder.glob("*.parquet")):
        md = pq.read_schema(f).metadata or {}
        try:
            seen.add((int(md[b"price_precision"]), int(md[b"size_precision"])))
        except (KeyError, ValueError):
            return None
    return seen.pop() if len(seen) == 1 else None


def _streams_to_export_again(
    catalog: Catalog, nautilus_dir: Path, inst, dataset: str, venue: str, symbol: str
) -> list[str]:
    """The other streams of ``inst`` in the NautilusTrader catalog at another precision than its."""
    want = (inst.price_precision, inst.size_precision)
    stored = {_stream_folder(nautilus_dir, d, inst.id): d for d in _stored_streams(catalog, venue, symbol)}
    this = _stream_folder(nautilus_dir, dataset, inst.id)
    data = nautilus_dir / "data"
    folders = [data / sub / str(inst.id) for sub in _NT_SUB.values()]
    folders += sorted((data / "bar").glob(f"{inst.id}-*"))
    out = []
    for folder in folders:
        if folder == this or not folder.is_dir():
            continue
        have = _exported_precision(folder)
        if have == want:
            continue
        if folder in stored:
            out.append(stored[folder])
        elif have is not None:
            raise CatalogError(
                f"{folder} holds {inst.id} at price/size precision {have[0]}/{have[1]}, but the instrument "
                f"needs {want[0]}/{want[1]} (the most any stream stored for {venue}/{symbol} in {catalog.root} "
                "needs), and that catalog has no stream to export it again from: remove the folder or export "
                "into another NautilusTrader catalog"
            )
    return out


def _inst_folder(inst) -> str:
    return "crypto_perpetual" if type(inst).__name__ == "CryptoPerpetual" else "currency_pair"
