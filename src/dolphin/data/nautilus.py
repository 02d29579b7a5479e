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
  * Price/size precision per instrument: the fewest decimals that represent every stored value
    exactly (checked on the decimals, so nothing is rounded).
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError
from dolphin.data.schema import bar_interval_ns

__all__ = ["bar_type_for", "decimals_needed", "depth_in_sync_order", "export_stream", "instrument_for", "nautilus_catalog"]

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


def _precisions(dataset: str, table: pa.Table) -> tuple[int, int]:
    def need(cols: tuple[str, ...]) -> int:
        return max(decimals_needed(table.column(c), rel_tol=EXPORT_REL_TOL) for c in cols)

    if dataset.startswith("bars_"):
        return need(("open", "high", "low", "close")), need(("volume",))
    if dataset == "quotes":
        return need(("bid", "ask")), need(("bid_size", "ask_size"))
    return need(("price",)), need(("quantity",))


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

    Returns (instrument, number of data objects written).
    """
    table = catalog.read(dataset, venue, symbol, start_ns, end_ns)
    if table.num_rows == 0:
        raise CatalogError(f"nothing stored for {dataset}/{venue}/{symbol} in the range")
    pp, sp = _precisions(dataset, table)
    inst = instrument_for(venue, symbol, pp, sp, int(table.column("ts_ns")[0].as_py()))
    objs = _to_objects(dataset, table, inst)
    nc = nautilus_catalog(nautilus_dir)
    # Replace, never append: NautilusTrader skips a file whose interval exists already, so a
    # stale export would silently survive a re-ingest.
    ident = str(bar_type_for(inst.id, dataset)) if dataset.startswith("bars_") else str(inst.id)
    sub = {"trades": "trade_tick", "quotes": "quote_tick", "depth": "order_book_deltas"}.get(dataset, "bar")
    for folder in (Path(nautilus_dir) / "data" / sub / ident, Path(nautilus_dir) / "data" / _inst_folder(inst) / str(inst.id)):
        if folder.is_dir():
            shutil.rmtree(folder)
    nc.write_data([inst])
    nc.write_data(objs)
    return inst, len(objs)


def _inst_folder(inst) -> str:
    return "crypto_perpetual" if type(inst).__name__ == "CryptoPerpetual" else "currency_pair"
