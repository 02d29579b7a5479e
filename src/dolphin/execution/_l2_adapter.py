"""TEMPORARY adapter: quote and trade ticks from the raw Binance L2 websocket capture.

To be replaced by catalog reads (``dolphin.data``) at merge. Reads the hftbacktest capture
(``<local_ts_ns> <json>`` lines, gzip) and keeps ``bookTicker`` (best bid/ask, exchange time
``T`` in ms) and ``trade`` messages (``T`` ms, ``m`` = buyer is maker, so the aggressor is the
seller). Depth diffs are ignored here: the agent trades against L1 quotes plus trades.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Price, Quantity

from dolphin.execution.instruments import make_usdm_perp, price_precision_of

__all__ = ["TickSet", "load_l2_ticks"]

NS_PER_MS = 1_000_000


@dataclass
class TickSet:
    instrument: CryptoPerpetual
    quotes: list[QuoteTick]
    trades: list[TradeTick]


def load_l2_ticks(
    path: Path,
    symbol: str,
    *,
    maker_fee_bps: float,
    taker_fee_bps: float,
    tax_bps: float = 0.0,
    max_quotes: int | None = None,
) -> TickSet:
    dec = msgspec.json.Decoder()
    quotes_raw: list[tuple[int, str, str, str, str]] = []
    trades_raw: list[tuple[int, str, str, bool, int]] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if "@bookTicker" in line:
                d = dec.decode(line.split(" ", 1)[1])["data"]
                quotes_raw.append((int(d["T"]), d["b"], d["B"], d["a"], d["A"]))
                if max_quotes is not None and len(quotes_raw) >= max_quotes:
                    break
            elif "@trade" in line:
                d = dec.decode(line.split(" ", 1)[1])["data"]
                trades_raw.append((int(d["T"]), d["p"], d["q"], bool(d["m"]), int(d["t"])))
    if not quotes_raw:
        raise ValueError(f"{path}: no bookTicker messages")
    pp = price_precision_of([q[1] for q in quotes_raw] + [q[3] for q in quotes_raw] + [t[1] for t in trades_raw])
    sp = price_precision_of([q[2] for q in quotes_raw] + [q[4] for q in quotes_raw] + [t[2] for t in trades_raw])
    inst = make_usdm_perp(symbol, pp, sp, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps, tax_bps=tax_bps)
    iid = inst.id
    quotes = []
    last_ts = 0
    for ts_ms, b, bs, a, as_ in quotes_raw:
        ts = max(ts_ms * NS_PER_MS, last_ts)
        last_ts = ts
        if float(bs) <= 0 or float(as_) <= 0:
            continue
        quotes.append(QuoteTick(iid, Price(float(b), pp), Price(float(a), pp), Quantity(float(bs), sp), Quantity(float(as_), sp), ts, ts))
    last_q = quotes[-1].ts_event
    trades = []
    for ts_ms, p, q, buyer_maker, tid in trades_raw:
        ts = ts_ms * NS_PER_MS
        if ts > last_q or float(q) <= 0:
            continue
        side = AggressorSide.SELLER if buyer_maker else AggressorSide.BUYER
        trades.append(TradeTick(iid, Price(float(p), pp), Quantity(float(q), sp), side, TradeId(str(tid)), ts, ts))
    return TickSet(inst, quotes, trades)


@dataclass
class DepthSet:
    instrument: CryptoPerpetual
    deltas: list  # OrderBookDeltas batches (snapshot first, then one batch per diff message)
    trades: list[TradeTick]
    snapshot_update_id: int
    diffs_applied: int
    diffs_dropped: int
    chain_breaks: int


def load_l2_depth(
    path: Path,
    symbol: str,
    *,
    maker_fee_bps: float,
    taker_fee_bps: float,
    tax_bps: float = 0.0,
) -> DepthSet:
    """Order-book deltas (REST snapshot + diff stream, Binance USDT-M sync rules) and trades.

    Diffs are buffered from the start of the file (the one bracketing the snapshot arrives
    before it); those with ``u < lastUpdateId`` are dropped; the first applied one must satisfy
    ``U <= lastUpdateId <= u``; after it each ``pu`` must equal the previous ``u`` (breaks are
    counted). Timestamps are the exchange event times, clamped to be non-decreasing from the
    snapshot on so that NautilusTrader replays the snapshot first.
    """
    from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas
    from nautilus_trader.model.enums import BookAction, OrderSide, RecordFlag

    dec = msgspec.json.Decoder()
    diffs: list[dict] = []
    snapshot: dict | None = None
    trades_raw: list[tuple[int, str, str, bool, int]] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if "@depth" in line:
                diffs.append(dec.decode(line.split(" ", 1)[1])["data"])
            elif "@trade" in line:
                d = dec.decode(line.split(" ", 1)[1])["data"]
                trades_raw.append((int(d["T"]), d["p"], d["q"], bool(d["m"]), int(d["t"])))
            elif snapshot is None and '"lastUpdateId"' in line:
                snapshot = dec.decode(line.split(" ", 1)[1])
    if snapshot is None:
        raise ValueError(f"{path}: no REST depth snapshot line")
    last_id = int(snapshot["lastUpdateId"])
    pp = price_precision_of([p for p, _ in snapshot["bids"][:200]] + [p for p, _ in snapshot["asks"][:200]])
    sp = price_precision_of([q for _, q in snapshot["bids"][:200]] + [q for _, q in snapshot["asks"][:200]])
    inst = make_usdm_perp(symbol, pp, sp, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps, tax_bps=tax_bps)
    iid = inst.id
    snap_ts = int(snapshot["T"]) * NS_PER_MS
    batch = [OrderBookDelta.clear(iid, last_id, snap_ts, snap_ts)]
    levels = [(OrderSide.BUY, p, q) for p, q in snapshot["bids"]] + [(OrderSide.SELL, p, q) for p, q in snapshot["asks"]]
    for i, (side, p, q) in enumerate(levels):
        flags = RecordFlag.F_SNAPSHOT | (RecordFlag.F_LAST if i == len(levels) - 1 else 0)
        order = BookOrder(side, Price(float(p), pp), Quantity(float(q), sp), 0)
        batch.append(OrderBookDelta(iid, BookAction.ADD, order, flags, last_id, snap_ts, snap_ts))
    out = [OrderBookDeltas(iid, batch)]
    applied = dropped = breaks = 0
    prev_u: int | None = None
    last_ts = snap_ts
    for d in diffs:
        U, u, pu = int(d["U"]), int(d["u"]), int(d["pu"])
        if u < last_id:
            dropped += 1
            continue
        if prev_u is None:
            if not (U <= last_id <= u):
                dropped += 1
                continue
        elif pu != prev_u:
            breaks += 1
        prev_u = u
        ts = max(int(d["E"]) * NS_PER_MS, last_ts)
        last_ts = ts
        items = [(OrderSide.BUY, p, q) for p, q in d["b"]] + [(OrderSide.SELL, p, q) for p, q in d["a"]]
        if not items:
            continue
        batch = []
        for i, (side, p, q) in enumerate(items):
            flags = RecordFlag.F_LAST if i == len(items) - 1 else 0
            qty = float(q)
            if qty == 0.0:
                order = BookOrder(side, Price(float(p), pp), Quantity(0, sp), 0)
                batch.append(OrderBookDelta(iid, BookAction.DELETE, order, flags, u, ts, ts))
            else:
                order = BookOrder(side, Price(float(p), pp), Quantity(qty, sp), 0)
                batch.append(OrderBookDelta(iid, BookAction.UPDATE, order, flags, u, ts, ts))
        out.append(OrderBookDeltas(iid, batch))
        applied += 1
    trades = []
    for ts_ms, p, q, buyer_maker, tid in trades_raw:
        ts = ts_ms * NS_PER_MS
        if ts < snap_ts or ts > last_ts or float(q) <= 0:
            continue
        side = AggressorSide.SELLER if buyer_maker else AggressorSide.BUYER
        trades.append(TradeTick(iid, Price(float(p), pp), Quantity(float(q), sp), side, TradeId(str(tid)), ts, ts))
    return DepthSet(inst, out, trades, last_id, applied, dropped, breaks)
