"""The source formats dolphin ingests, and how a file's format is recognised.

Binance public data (data.binance.vision):
  * klines ``<SYM>-<interval>-<date>.csv[.zip]``: open_time, open, high, low, close, volume,
    close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore
    (with or without header; open_time in ms, or in us for spot files since 2025);
  * trades ``<SYM>-trades-<date>``: id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match];
  * aggTrades ``<SYM>-aggTrades-<date>``: agg_trade_id, price, quantity, first_trade_id,
    last_trade_id, transact_time, is_buyer_maker[, is_best_match];
  * bookTicker (USDT-M): update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty,
    transaction_time, event_time;
  * order-book depth snapshots and diffs: symbol, timestamp, first_update_id, last_update_id,
    side, update_type (snap|set), price, qty, pu.
The real files under ``../shared/data`` (see its README):
  * OHLCV ``open_time_ms, open, high, low, close, volume`` (freqtrade data converted 1:1);
  * funding ``symbol, funding_time_ms, funding_rate`` (long format) and
    ``funding_time_ms, funding_rate_pct`` (percent);
  * factor series ``date_ms, <value>`` (DVOL, taker ratio);
  * NautilusTrader fixtures: trades ``ts_ms, trade_id, price, quantity, buyer_maker`` and quotes
    ``ts_ms, symbol, ask_size, ask, bid_size, bid``.
The raw Binance websocket L2 capture is read by :mod:`dolphin.data.binance_capture`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dolphin.data.errors import DataFormatError, UnknownColumnsError

__all__ = [
    "FORMATS",
    "SourceFormat",
    "detect_format",
    "normalise_symbol",
    "symbol_from_name",
    "venue_from_path",
]


@dataclass(frozen=True)
class SourceFormat:
    """How one source layout maps onto a catalog schema.

    ``fields`` maps catalog field -> source column. ``ts_unit`` is ``ms``, ``us`` or ``auto``
    (decided per file by magnitude). ``scale`` divides a decimal field (percent -> fraction).
    """

    name: str
    kind: str
    columns: tuple[str, ...]
    fields: dict[str, str]
    ts_unit: str = "ms"
    optional: tuple[str, ...] = ()
    symbol_column: str | None = None
    scale: dict[str, int] = field(default_factory=dict)
    filename_hint: str | None = None  # regex on the file name, for header-less files
    # field -> (values meaning True, values meaning False), lower case; overrides the defaults
    bool_values: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    # int fields whose source values may be non-numeric ids (hashed to a stable 63-bit integer)
    hashed_ids: tuple[str, ...] = ()
    # depth: whether first/last update ids are real exchange ids (chain gaps are checked)
    chained_ids: bool = True

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.optional)


_KLINE_COLS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip

FORMATS: Final[tuple[SourceFormat, ...]] = (
    SourceFormat(
        name="ohlcv_ms",
        kind="bars",
        columns=("open_time_ms", "open", "high", "low", "close", "volume"),
        fields={"ts_ns": "open_time_ms", "open": "open", "high": "high", "low": "low", "close": "close",
                "volume": "volume"},
    ),
    SourceFormat(
        name="binance_kline",
        kind="bars",
        columns=_KLINE_COLS,
        fields={"ts_ns": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
                "volume": "volume", "quote_volume": "quote_volume", "trade_count": "count",
                "taker_buy_volume": "taker_buy_volume"},
        ts_unit="auto",
        filename_hint=r"-\d+[smhdwM]-\d{4}-\d{2}",
    ),
    SourceFormat(
        name="binance_trades",
        kind="trades",
        columns=("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
        optional=("is_best_match",),
        fields={"ts_ns": "time", "trade_id": "id", "price": "price", "quantity": "qty",
                "buyer_is_maker": "is_buyer_maker"},
        ts_unit="auto",
        filename_hint=r"-trades-",
    ),
    SourceFormat(
        name="binance_aggtrades",
        kind="trades",
        columns=("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                 "is_buyer_maker", "is_best_match"),
        optional=("is_best_match",),
        fields={"ts_ns": "transact_time", "trade_id": "agg_trade_id", "price": "price", "quantity": "quantity",
                "buyer_is_maker": "is_buyer_maker"},
        ts_unit="auto",
        filename_hint=r"-aggTrades-",
    ),
    SourceFormat(
        name="binance_bookticker",
        kind="quotes",
        columns=("update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
                 "transaction_time", "event_time"),
        fields={"ts_ns": "event_time", "bid": "best_bid_price", "bid_size": "best_bid_qty",
                "ask": "best_ask_price", "ask_size": "best_ask_qty", "update_id": "update_id"},
        filename_hint=r"-bookTicker-",
    ),
    SourceFormat(
        name="binance_depth",
        kind="depth",
        columns=("symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price",
                 "qty", "pu"),
        fields={"ts_ns": "timestamp", "first_update_id": "first_update_id", "last_update_id": "last_update_id",
                "prev_update_id": "pu", "is_bid": "side", "is_snapshot": "update_type", "price": "price",
                "quantity": "qty"},
        symbol_column="symbol",
    ),
    SourceFormat(
        name="funding_long",
        kind="funding",
        columns=("symbol", "funding_time_ms", "funding_rate"),
        fields={"ts_ns": "funding_time_ms", "funding_rate": "funding_rate"},
        symbol_column="symbol",
    ),
    SourceFormat(
        name="funding_pct",
        kind="funding",
        columns=("funding_time_ms", "funding_rate_pct"),
        fields={"ts_ns": "funding_time_ms", "funding_rate": "funding_rate_pct"},
        scale={"funding_rate": 100},
    ),
    SourceFormat(
        name="nautilus_trades",
        kind="trades",
        columns=("ts_ms", "trade_id", "price", "quantity", "buyer_maker"),
        fields={"ts_ns": "ts_ms", "trade_id": "trade_id", "price": "price", "quantity": "quantity",
                "buyer_is_maker": "buyer_maker"},
    ),
    SourceFormat(
        name="nautilus_quotes",
        kind="quotes",
        columns=("ts_ms", "symbol", "ask_size", "ask", "bid_size", "bid"),
        fields={"ts_ns": "ts_ms", "bid": "bid", "bid_size": "bid_size", "ask": "ask", "ask_size": "ask_size"},
        symbol_column="symbol",
    ),
    SourceFormat(
        name="tardis_trades",
        kind="trades",
        columns=("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"),
        fields={"ts_ns": "timestamp", "trade_id": "id", "price": "price", "quantity": "amount",
                "buyer_is_maker": "side"},
        ts_unit="us",
        symbol_column="symbol",
        bool_values={"buyer_is_maker": (("sell",), ("buy",))},  # side is the aggressor
        hashed_ids=("trade_id",),
    ),
    SourceFormat(
        name="tardis_incremental_l2",
        kind="depth",
        columns=("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"),
        fields={"ts_ns": "timestamp", "local_ts_ns": "local_timestamp", "first_update_id": "timestamp",
                "last_update_id": "timestamp", "is_bid": "side", "is_snapshot": "is_snapshot", "price": "price",
                "quantity": "amount"},
        ts_unit="us",
        symbol_column="symbol",
        bool_values={"is_snapshot": (("true",), ("false",))},
        chained_ids=False,  # Tardis has no exchange update ids: the event time stands in
    ),
    SourceFormat(
        name="daily_series",
        kind="series",
        columns=("date_ms", "*"),
        fields={"ts_ns": "date_ms", "value": "*"},
    ),
)  # fmt: skip

_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _looks_like_header(cells: list[str]) -> bool:
    return not any(_NUMERIC.match(c.strip()) for c in cells)


def detect_format(source: str, first_line: str) -> tuple[SourceFormat, list[str], bool]:
    """Return (format, column names, has_header) for a file from its name and first line.

    Raises DataFormatError naming the file when the layout is not recognised, and
    UnknownColumnsError when a header carries columns the matching format does not know.
    """
    cells = [c.strip() for c in first_line.rstrip("\r\n").split(",")]
    name = Path(source).name
    if not first_line.strip():
        raise DataFormatError(source, "empty first line: cannot recognise the format", line=1)
    if _looks_like_header(cells):
        header = cells
        best: tuple[int, SourceFormat] | None = None
        for fmt in FORMATS:
            if fmt.columns[-1] == "*":  # generic series: date_ms plus exactly one value column
                if len(header) == 2 and header[0] == fmt.columns[0]:
                    cols = [header[0], header[1]]
                    return SourceFormat(
                        name=fmt.name, kind="series", columns=tuple(cols),
                        fields={"ts_ns": cols[0], "value": cols[1]},
                    ), header, True  # fmt: skip
                continue
            if not set(fmt.required) <= set(header):
                continue
            score = len(set(fmt.columns) & set(header))
            if best is None or score > best[0]:
                best = (score, fmt)
        if best is None:
            raise DataFormatError(source, f"unrecognised header {header}", line=1)
        fmt = best[1]
        unknown = [c for c in header if c not in fmt.columns]
        if unknown:
            raise UnknownColumnsError(source, unknown, list(fmt.columns))
        return fmt, header, True
    # Header-less: Binance public files. Decide by file-name hint, then by column count.
    n = len(cells)
    for fmt in FORMATS:
        if fmt.filename_hint and re.search(fmt.filename_hint, name):
            if len(fmt.required) <= n <= len(fmt.columns):
                return fmt, list(fmt.columns[:n]), False
            raise DataFormatError(
                source, f"{n} columns, but a {fmt.name} file has {len(fmt.required)}-{len(fmt.columns)}", line=1
            )
    if n == len(_KLINE_COLS):
        fmt = next(f for f in FORMATS if f.name == "binance_kline")
        return fmt, list(fmt.columns), False
    raise DataFormatError(source, f"header-less file with {n} columns and no recognisable file name", line=1)


_PAIR_TOKEN = re.compile(r"^[A-Za-z0-9]{2,15}(USDT|USDC|FDUSD|BUSD|USD|BTC|ETH|BNB)$", re.IGNORECASE)


def symbol_from_name(path: str | Path) -> str:
    """The symbol in a file name.

    ``BTCUSDT-1m-2024-01-01.csv`` / ``BTCUSDT.csv.gz`` -> ``BTCUSDT``;
    ``binance_btcusdt_trades_2021-01-08.csv`` -> ``BTCUSDT`` (a token that ends in a quote currency).
    """
    name = Path(path).name
    for token in re.split(r"[-_.]", name):
        if _PAIR_TOKEN.match(token) and not token.isdigit():
            return token.upper()
    head = re.split(r"[-.]", name, maxsplit=1)[0]
    if re.fullmatch(r"[A-Za-z0-9]{2,30}", head) and not head.isdigit():
        return head.upper()
    raise DataFormatError(str(path), "cannot tell the symbol from the file name; pass --symbol")


def normalise_symbol(raw: str) -> str:
    """``BTC/USDT`` / ``btc-usdt`` / ``BTCUSDT`` -> ``BTCUSDT``."""
    return re.sub(r"[^A-Za-z0-9]", "", raw).upper()


_EXCHANGES = ("deribit", "bitmex", "bybit", "binance")
_SPOT_TOKENS = frozenset({"spot"})
_PERP_TOKENS = frozenset({"usdm", "um", "futures", "future", "perp", "perps", "perpetual", "perpetuals", "swap"})
#: Formats that name their venue (the format is the strongest hint).
_FORMAT_EXCHANGE = {"bybit_orderbook_json": "bybit"}
#: How many folders above the file are read for hints (Binance's ``futures/um/daily/klines/SYM/1m``).
_VENUE_FOLDERS = 6


def _venue_hints(part: str) -> tuple[set[str], set[str]]:
    """(exchanges, market types) named by whole tokens of one path component."""
    tokens = {t for t in re.split(r"[^a-z0-9]+", part.lower()) if t}
    exchanges = {e for e in _EXCHANGES if e in tokens}
    markets = {"spot" for t in tokens if t in _SPOT_TOKENS} | {"usdm" for t in tokens if t in _PERP_TOKENS}
    return exchanges, markets


def venue_from_path(path: str | Path, *, fmt: SourceFormat | None = None) -> str:
    """The venue of a source: ``DERIBIT``/``BITMEX``/``BYBIT``, or ``BINANCE_USDM`` / ``BINANCE_SPOT``.

    Hints, strongest first: the format (a Bybit order-book file is Bybit's), then whole tokens of
    the file name, then of the nearest folders (up to six, nearest first; a folder far up such as
    ``/home/alice/perpetual-research`` only counts when nothing nearer names a venue). Exchange and
    market type (``spot``; ``usdm``/``um``/``futures``/``perp...`` for USDT-M) are taken each from
    the nearest component naming one. Without a market hint a Binance source is spot, except funding
    (only perpetual futures have it), which is USDT-M. Conflicting hints in one component (``spot``
    and ``usdm``) or between the format and the path raise :class:`DataFormatError`; pass ``venue``.
    """
    p = Path(path)
    parts = [p.name] + [q.name for q in list(p.parents)[:_VENUE_FOLDERS] if q.name]
    exchange = _FORMAT_EXCHANGE.get(fmt.name) if fmt is not None else None
    market: str | None = None
    name_exchange: tuple[str, str] | None = None
    for part in parts:
        exchanges, markets = _venue_hints(part)
        if len(exchanges) > 1 or len(markets) > 1:
            raise DataFormatError(str(path), f"conflicting venue hints {sorted(exchanges | markets)} in {part!r}; "
                                             "pass the venue explicitly")  # fmt: skip
        if exchanges and name_exchange is None:
            name_exchange = (exchanges.pop(), part)
        if markets and market is None:
            market = markets.pop()
    if name_exchange is not None:
        if exchange is not None and name_exchange[0] != exchange:
            raise DataFormatError(str(path), f"the {fmt.name} format is {exchange.upper()}'s but {name_exchange[1]!r} "
                                             f"names {name_exchange[0].upper()}; pass the venue explicitly")  # fmt: skip
        exchange = name_exchange[0]
    exchange = exchange or "binance"
    if exchange != "binance":
        return exchange.upper()
    if market is None:
        market = "usdm" if fmt is not None and fmt.kind == "funding" else "spot"
    elif market == "spot" and fmt is not None and fmt.kind == "funding":
        raise DataFormatError(str(path), "a funding file under a spot name: funding exists only for perpetual "
                                         "futures; pass the venue explicitly")  # fmt: skip
    return "BINANCE_USDM" if market == "usdm" else "BINANCE_SPOT"
