"""Streaming reader of raw Binance L2 websocket capture files.

File format (as recorded by hftbacktest's collector): a gzip (or plain) text file, one message per
line, ``<local_receive_ts_ns> <raw JSON>``. The JSON is either

- a combined-stream message ``{"stream": "<sym>@<kind>", "data": {...}}`` where ``<kind>`` is
  ``depth``/``depth@100ms``/``depth@0ms`` (depth DIFFS), ``trade`` or ``bookTicker``; or
- ONE REST depth snapshot ``{"lastUpdateId": ..., "bids": [...], "asks": [...]}`` (futures add
  ``E`` and ``T``), written by the collector a few dozen lines into the file.

:func:`iter_capture` (or :class:`CaptureReader`) turns the lines into typed, immutable messages:
:class:`DepthSnapshot`, :class:`DepthDiff`, :class:`Trade`, :class:`BookTicker`. Prices and
quantities are kept as the ORIGINAL decimal strings (exact; convert them to integer ticks with
:mod:`dolphin.alpha.ticks`). Timestamps are integer nanoseconds: ``local_ts_ns`` is the collector's
receive clock, ``exchange_ts_ns`` is Binance's event time ``E`` (ms -> ns); the two clocks are NOT
synchronised (the shipped captures show the collector ~1.27 s behind ``E``: clock skew, not latency).

Errors: a line that cannot be parsed raises :class:`CaptureFormatError`, whose message names the
file and the 1-based line number. With ``on_error="skip"`` the reader instead records the error in
:attr:`CaptureReader.errors`, counts it, and carries on (the book builder then sees the missing
diff as an update-id gap and resyncs). Blank lines are counted in :attr:`CaptureReader.blank_lines`.

A truncated or corrupt compressed stream (a capture cut off mid-write) raises
:class:`CaptureTruncatedError` (both a :class:`CaptureFormatError` and a
:class:`~dolphin.data.errors.DataFormatError`) naming the file and the last line read. The messages
before it have already been yielded; with ``on_error="skip"`` the truncation is recorded in
:attr:`CaptureReader.errors` (and :attr:`CaptureReader.truncated` is set) and iteration ends.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator, Literal

import msgspec

from dolphin.data.errors import DataFormatError

__all__ = [
    "BookTicker",
    "CaptureFormatError",
    "CaptureTruncatedError",
    "CaptureMessage",
    "CaptureReader",
    "DepthDiff",
    "DepthSnapshot",
    "NO_UPDATE_ID",
    "PriceLevel",
    "Trade",
    "iter_capture",
    "iter_captures",
]

#: Sentinel for an absent update id (spot diffs carry no ``pu``).
NO_UPDATE_ID: int = -1
#: Sentinel for an absent timestamp (spot bookTicker and spot REST snapshots carry no ``E``).
NO_TS: int = -1

_MS_TO_NS = 1_000_000

#: One book level as the venue sent it: ``(price, quantity)``, both decimal strings.
PriceLevel = tuple[str, str]


class CaptureFormatError(ValueError):
    """A capture line could not be parsed; ``path`` and 1-based ``line_no`` say where."""

    def __init__(self, path: str, line_no: int, reason: str, raw: str | None = None) -> None:
        super().__init__(f"{path}:{line_no}: {reason}")
        self.path = path
        self.line_no = line_no
        self.reason = reason
        self.raw = raw  # the line's text (first 500 characters), where known


class CaptureTruncatedError(CaptureFormatError, DataFormatError):
    """The compressed stream ends early or is corrupt after line ``line_no - 1`` (the last line read)."""

    def __init__(self, path: str, line_no: int, reason: str) -> None:
        msg = f"{path}:{line_no}: {reason}"
        Exception.__init__(self, msg)
        self.path = self.source = path
        self.line_no = self.line = line_no
        self.reason = reason
        self.raw = None


class DepthSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """REST depth snapshot: the full book as of update id ``last_update_id``.

    ``symbol`` is not in the REST payload; the reader takes it from the file name (a token such as
    ``btcusdt`` in ``binance_spot_btcusdt_20240808.gz``), else from the stream messages before it
    when they all name one symbol; ``""`` (unknown) when neither tells. ``exchange_ts_ns`` is ``E`` (futures only;
    :data:`NO_TS` on spot). Levels are best-first, as Binance sends them.
    """

    line_no: int
    local_ts_ns: int
    exchange_ts_ns: int
    symbol: str
    last_update_id: int
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]


class DepthDiff(msgspec.Struct, frozen=True, kw_only=True):
    """Depth diff event covering update ids ``first_update_id`` (U) .. ``final_update_id`` (u).

    ``prev_final_update_id`` is futures' ``pu`` (the previous event's ``u``), :data:`NO_UPDATE_ID`
    on spot (spot chains by ``U == previous u + 1``). A level with quantity ``"0..."`` deletes it.
    """

    line_no: int
    local_ts_ns: int
    exchange_ts_ns: int
    symbol: str
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """A public trade; ``buyer_is_maker`` True means the aggressor sold."""

    line_no: int
    local_ts_ns: int
    exchange_ts_ns: int
    trade_ts_ns: int
    symbol: str
    trade_id: int
    price: str
    qty: str
    buyer_is_maker: bool


class BookTicker(msgspec.Struct, frozen=True, kw_only=True):
    """Best bid/ask update (``exchange_ts_ns`` is :data:`NO_TS` on spot, which sends no ``E``)."""

    line_no: int
    local_ts_ns: int
    exchange_ts_ns: int
    symbol: str
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str


CaptureMessage = DepthSnapshot | DepthDiff | Trade | BookTicker

_decoder = msgspec.json.Decoder()


def _levels(raw: object) -> tuple[PriceLevel, ...]:
    if not isinstance(raw, list):
        raise ValueError("levels are not a list")
    out = []
    for lvl in raw:
        if not (isinstance(lvl, list) and len(lvl) >= 2 and isinstance(lvl[0], str) and isinstance(lvl[1], str)):
            raise ValueError(f"bad level {lvl!r}")
        out.append((lvl[0], lvl[1]))
    return tuple(out)


def _int(d: dict, key: str) -> int:
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"field {key!r} is not an integer: {v!r}")
    return v


def _opt_ms(d: dict, key: str) -> int:
    return _int(d, key) * _MS_TO_NS if key in d else NO_TS


def _bool(d: dict, key: str) -> bool:
    v = d[key]
    if not isinstance(v, bool):
        raise ValueError(f"field {key!r} is not a boolean: {v!r}")
    return v


_PAIR_TOKEN = re.compile(r"^[A-Za-z0-9]{2,15}(USDT|USDC|FDUSD|BUSD|USD|BTC|ETH|BNB)$", re.IGNORECASE)


def _symbol_in_name(path: Path) -> str:
    """The one pair-like token of the file name (``binance_spot_btcusdt_20240808.gz`` -> BTCUSDT), else ""."""
    found = {t.upper() for t in re.split(r"[-_.]", path.name) if _PAIR_TOKEN.match(t) and not t.isdigit()}
    return found.pop() if len(found) == 1 else ""


def _parse(line: bytes, line_no: int, snapshot_symbol: str) -> CaptureMessage:
    """Parse one capture line; raises ValueError/KeyError/msgspec.DecodeError on bad input."""
    sep = line.find(b" ")
    if sep <= 0:
        raise ValueError("no '<local_ts_ns> <json>' separator")
    local_ts_ns = int(line[:sep])
    obj = _decoder.decode(line[sep + 1 :])
    if not isinstance(obj, dict):
        raise ValueError("JSON payload is not an object")
    if "stream" not in obj:
        if "lastUpdateId" in obj:
            return DepthSnapshot(
                line_no=line_no,
                local_ts_ns=local_ts_ns,
                exchange_ts_ns=_opt_ms(obj, "E"),
                symbol=snapshot_symbol,
                last_update_id=_int(obj, "lastUpdateId"),
                bids=_levels(obj["bids"]),
                asks=_levels(obj["asks"]),
            )
        raise ValueError("neither a combined-stream message nor a depth snapshot")
    stream = obj["stream"]
    data = obj["data"]
    if not isinstance(stream, str) or not isinstance(data, dict):
        raise ValueError("bad combined-stream envelope")
    sym, _, kind = stream.partition("@")
    symbol = data.get("s", sym.upper())
    if not isinstance(symbol, str) or not symbol:  # ("s": null was stored as symbol "NONE", review 2026-12-06)
        raise ValueError(f"symbol {symbol!r} is not a non-empty string")
    if kind.startswith("depth"):
        return DepthDiff(
            line_no=line_no,
            local_ts_ns=local_ts_ns,
            exchange_ts_ns=_opt_ms(data, "E"),
            symbol=symbol,
            first_update_id=_int(data, "U"),
            final_update_id=_int(data, "u"),
            prev_final_update_id=_int(data, "pu") if "pu" in data else NO_UPDATE_ID,
            bids=_levels(data["b"]),
            asks=_levels(data["a"]),
        )
    if kind == "trade":
        return Trade(
            line_no=line_no,
            local_ts_ns=local_ts_ns,
            exchange_ts_ns=_opt_ms(data, "E"),
            trade_ts_ns=_opt_ms(data, "T"),
            symbol=symbol,
            trade_id=_int(data, "t"),
            price=str(data["p"]),
            qty=str(data["q"]),
            buyer_is_maker=_bool(data, "m"),
        )
    if kind == "bookTicker":
        return BookTicker(
            line_no=line_no,
            local_ts_ns=local_ts_ns,
            exchange_ts_ns=_opt_ms(data, "E"),
            symbol=symbol,
            update_id=_int(data, "u"),
            bid_price=str(data["b"]),
            bid_qty=str(data["B"]),
            ask_price=str(data["a"]),
            ask_qty=str(data["A"]),
        )
    raise ValueError(f"unknown stream kind {kind!r}")


def _open(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw))  # type: ignore[arg-type]
    return raw


class CaptureReader:
    """Iterate the typed messages of one capture file, streaming (constant memory).

    Parameters
    ----------
    path
        A ``.gz`` (detected by magic bytes) or plain text capture file.
    on_error
        ``"raise"`` (default): the first bad line raises :class:`CaptureFormatError`.
        ``"skip"``: bad lines are recorded in :attr:`errors`, counted in :attr:`n_errors`, skipped.

    Blank lines are skipped and counted in :attr:`blank_lines`. After iteration, :attr:`counts`
    holds messages per type name. A truncated/corrupt compressed stream raises
    :class:`CaptureTruncatedError` (``"raise"``) or is recorded in :attr:`errors` with
    :attr:`truncated` set (``"skip"``); either way the messages before it were yielded.
    """

    def __init__(self, path: str | Path, *, on_error: Literal["raise", "skip"] = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.path = Path(path)
        self.on_error = on_error
        self.errors: list[CaptureFormatError] = []
        self.counts: dict[str, int] = {}
        self.blank_lines: list[int] = []
        self.truncated = False

    @property
    def n_errors(self) -> int:
        return len(self.errors)

    def __iter__(self) -> Iterator[CaptureMessage]:
        name_symbol = _symbol_in_name(self.path)
        seen_symbols: set[str] = set()
        last_symbol = snapshot_symbol = name_symbol
        counts = self.counts
        line_no = 0
        with _open(self.path) as fh:
            lines = iter(fh)
            while True:
                try:
                    line = next(lines)
                except StopIteration:
                    break
                except (EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
                    err = CaptureTruncatedError(
                        str(self.path), line_no + 1,
                        f"truncated or corrupt compressed stream after line {line_no} "
                        f"(the last line read): {type(exc).__name__}: {exc}",
                    )  # fmt: skip
                    self.truncated = True
                    if self.on_error == "raise":
                        raise err from exc
                    self.errors.append(err)
                    break
                line_no += 1
                line = line.strip()
                if not line:
                    self.blank_lines.append(line_no)
                    continue
                try:
                    msg = _parse(line, line_no, snapshot_symbol)
                except (ValueError, KeyError, TypeError, RecursionError, msgspec.DecodeError) as exc:
                    # (RecursionError: JSON nested too deep for the decoder; one line, not the file)
                    err = CaptureFormatError(str(self.path), line_no, f"{type(exc).__name__}: {exc}",
                                             line[:500].decode("utf-8", "replace"))  # fmt: skip
                    if self.on_error == "raise":
                        raise err from exc
                    self.errors.append(err)
                    continue
                if not isinstance(msg, DepthSnapshot) and msg.symbol != last_symbol:
                    last_symbol = msg.symbol
                    seen_symbols.add(last_symbol)
                    if not name_symbol:  # the streams' symbol, while only one has been seen
                        snapshot_symbol = last_symbol if len(seen_symbols) == 1 else ""
                name = type(msg).__name__
                counts[name] = counts.get(name, 0) + 1
                yield msg


def iter_capture(path: str | Path, *, on_error: Literal["raise", "skip"] = "raise") -> Iterator[CaptureMessage]:
    """Yield the typed messages of one capture file (see :class:`CaptureReader`)."""
    return iter(CaptureReader(path, on_error=on_error))


def iter_captures(
    paths: "Iterable[str | Path]", *, on_error: Literal["raise", "skip"] = "raise"
) -> Iterator[CaptureMessage]:
    """Yield the messages of consecutive capture files in order (a stream split across files, e.g.
    the spot ``*_20240808.gz`` then ``*_20240809.gz``); ``line_no`` restarts at 1 in each file."""
    for path in paths:
        yield from CaptureReader(path, on_error=on_error)
