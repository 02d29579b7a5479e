"""Raw Binance websocket L2 captures -> the catalog's depth, trades and quotes datasets.

Reads with :mod:`dolphin.data.binance_capture` (skip mode: an unparseable line becomes one
quarantined row with its line number) and hands the rows to the same conversion and validation
as every CSV source, so the same rules and accounting hold.

Timestamps: ``ts_ns`` is the exchange time (trade time ``T`` for trades, falling back to the event
time ``E`` when ``T`` is absent; a trade with neither is rejected as ``unparseable_timestamp``;
event time ``E`` otherwise); spot snapshots and spot bookTicker carry no exchange time, so their ``ts_ns`` is the
collector's receive time (``local_ts_ns``), which runs ~1.27 s behind the exchange in the
shipped captures. ``local_ts_ns`` is kept for every depth row.

Accounting: blank lines are quarantined as ``empty_line``; a truncated/corrupt compressed stream
keeps the messages before it and adds one ``truncated`` row (line = the line after the last one
read), so a cut-off capture is visible in the report and the quarantine file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from dolphin.data.binance_capture import (
    NO_TS,
    NO_UPDATE_ID,
    BookTicker,
    CaptureReader,
    CaptureTruncatedError,
    DepthDiff,
    DepthSnapshot,
    Trade,
)
from dolphin.data.formats import SourceFormat
from dolphin.data.parse import ParsedFile, Rejects, _finish

__all__ = ["is_capture_file", "parse_capture"]

_DEPTH = SourceFormat(
    name="binance_ws_capture_depth",
    kind="depth",
    columns=("symbol", "ts", "local_ts", "first", "last", "pu", "side", "snap", "price", "qty"),
    fields={"ts_ns": "ts", "local_ts_ns": "local_ts", "first_update_id": "first", "last_update_id": "last",
            "prev_update_id": "pu", "is_bid": "side", "is_snapshot": "snap", "price": "price", "quantity": "qty"},
    ts_unit="ns",
    symbol_column="symbol",
)  # fmt: skip
_TRADES = SourceFormat(
    name="binance_ws_capture_trades",
    kind="trades",
    columns=("symbol", "ts", "id", "price", "qty", "maker"),
    fields={"ts_ns": "ts", "trade_id": "id", "price": "price", "quantity": "qty", "buyer_is_maker": "maker"},
    ts_unit="ns",
    symbol_column="symbol",
)
_QUOTES = SourceFormat(
    name="binance_ws_capture_quotes",
    kind="quotes",
    columns=("symbol", "ts", "bid", "bid_size", "ask", "ask_size", "update_id"),
    fields={"ts_ns": "ts", "bid": "bid", "bid_size": "bid_size", "ask": "ask", "ask_size": "ask_size",
            "update_id": "update_id"},
    ts_unit="ns",
    symbol_column="symbol",
)


def is_capture_file(path: str | Path) -> bool:
    """A gzip or text file whose first line is ``<integer> {...``."""
    import gzip

    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(p, "rb") as fh:  # type: ignore[operator]
            first = fh.readline(4096)
    except (OSError, EOFError):
        return False
    parts = first.split(b" ", 1)
    return len(parts) == 2 and parts[0].isdigit() and parts[1].lstrip().startswith(b"{")


def _table(columns: tuple[str, ...], rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows)) if rows else [() for _ in columns]
    return pa.table({c: pa.array([str(v) for v in col], pa.string()) for c, col in zip(columns, cols)})


def parse_capture(path: str | Path) -> dict[str, ParsedFile]:
    """Parse one capture file into ``{"depth": ..., "trades": ..., "quotes": ...}`` parsed files."""
    path = Path(path)
    reader = CaptureReader(path, on_error="skip")
    depth: list[tuple] = []
    depth_lines: list[int] = []
    trades: list[tuple] = []
    trade_lines: list[int] = []
    trade_rejects = Rejects()
    trade_no_ts: list[Trade] = []
    quotes: list[tuple] = []
    quote_lines: list[int] = []
    snapshot_symbol_missing: list[int] = []
    for msg in reader:
        if isinstance(msg, DepthDiff):
            ts = msg.exchange_ts_ns if msg.exchange_ts_ns != NO_TS else msg.local_ts_ns
            pu = msg.prev_final_update_id if msg.prev_final_update_id != NO_UPDATE_ID else -1
            for side, levels in (("b", msg.bids), ("a", msg.asks)):
                for px, qty in levels:
                    depth.append((msg.symbol, ts, msg.local_ts_ns, msg.first_update_id, msg.final_update_id, pu,
                                  side, "set", px, qty))  # fmt: skip
                    depth_lines.append(msg.line_no)
        elif isinstance(msg, DepthSnapshot):
            if not msg.symbol:
                snapshot_symbol_missing.append(msg.line_no)
                continue
            ts = msg.exchange_ts_ns if msg.exchange_ts_ns != NO_TS else msg.local_ts_ns
            for side, levels in (("b", msg.bids), ("a", msg.asks)):
                for px, qty in levels:
                    depth.append((msg.symbol, ts, msg.local_ts_ns, msg.last_update_id, msg.last_update_id, -1,
                                  side, "snap", px, qty))  # fmt: skip
                    depth_lines.append(msg.line_no)
        elif isinstance(msg, Trade):
            ts = msg.trade_ts_ns if msg.trade_ts_ns != NO_TS else msg.exchange_ts_ns
            if ts == NO_TS:
                trade_no_ts.append(msg)
                continue
            trades.append((msg.symbol, ts, msg.trade_id, msg.price, msg.qty, msg.buyer_is_maker))
            trade_lines.append(msg.line_no)
        elif isinstance(msg, BookTicker):
            ts = msg.exchange_ts_ns if msg.exchange_ts_ns != NO_TS else msg.local_ts_ns
            quotes.append((msg.symbol, ts, msg.bid_price, msg.bid_qty, msg.ask_price, msg.ask_qty, msg.update_id))
            quote_lines.append(msg.line_no)
    # Unreadable lines: quarantined once, with the depth dataset (the stream they most often are).
    depth_rejects = Rejects()
    bad = [e for e in reader.errors if not isinstance(e, CaptureTruncatedError)]
    cut = [e for e in reader.errors if isinstance(e, CaptureTruncatedError)]
    if bad:
        depth_rejects.add(np.array([e.line_no for e in bad]), "unparseable", [e.reason[:300] for e in bad],
                          [e.raw for e in bad])  # fmt: skip
    if cut:
        depth_rejects.add(np.array([e.line_no for e in cut]), "truncated", [e.reason[:300] for e in cut], [None])
    if reader.blank_lines:
        n = len(reader.blank_lines)
        depth_rejects.add(np.array(reader.blank_lines), "empty_line", [None] * n, [""] * n)
    if snapshot_symbol_missing:
        depth_rejects.add(np.array(snapshot_symbol_missing), "unparseable",
                          ["depth snapshot: symbol unknown (not in the file name, and the streams before it "
                           "name no single symbol)"] * len(snapshot_symbol_missing),
                          [None] * len(snapshot_symbol_missing))  # fmt: skip
    if trade_no_ts:
        trade_rejects.add(np.array([m.line_no for m in trade_no_ts]), "unparseable_timestamp",
                          [f"trade {m.trade_id}: neither trade time T nor event time E" for m in trade_no_ts],
                          [None] * len(trade_no_ts))  # fmt: skip
    out = {}
    for name, fmt, rows, lines, rejects in (
        ("depth", _DEPTH, depth, depth_lines, depth_rejects),
        ("trades", _TRADES, trades, trade_lines, trade_rejects),
        ("quotes", _QUOTES, quotes, quote_lines, Rejects()),
    ):
        if not rows and not len(rejects):
            continue
        parsed = _finish(
            dataclasses.replace(fmt), _table(fmt.columns, rows), np.array(lines, dtype=np.int64), rejects,
            len(rows) + len(rejects), str(path),
        )  # fmt: skip
        parsed.ts_unit = "ns"
        out[name] = parsed
    return out
