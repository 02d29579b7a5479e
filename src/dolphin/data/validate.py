"""Row validation rules. Each failing row goes to the rejects with its reason code.

Reason codes (parse stage, :mod:`dolphin.data.parse` and :mod:`dolphin.data.capture_ingest`):
  ``column_count``, ``empty_line``, ``unparseable``, ``unparseable_timestamp``, ``nan_or_inf``,
  ``truncated`` (a capture whose compressed stream ends early: the lines before it are kept)
Reason codes (this module, applied in this order, first failing rule wins):
  ``implausible_timestamp``  ``ts_ns`` before :data:`MIN_PLAUSIBLE_TS_NS` (2009-01-01, before any
                          crypto market: catches sentinels, negative values and seconds read as
                          milliseconds) or more than :data:`MAX_FUTURE_NS` (1 day) after now;
                          the same bounds for a recorded receive time ``local_ts_ns``
  ``non_positive_price``  a price field <= 0
  ``negative_volume``     a size/volume field < 0
  ``inconsistent_ohlc``   high below open/close/low, or low above open/close
  ``crossed_book``        quote with bid >= ask; snapshot bid level at or above the best ask
  ``misaligned_bar``      bar open time not on the bar-size grid
  ``duplicate``           the same key again with identical values (first occurrence kept)
  ``duplicate_conflict``  the same key again with different values (first occurrence kept)
  ``out_of_order``        depth: update id earlier than an accepted diff before it; quotes:
                          timestamp earlier than an accepted row before it

Bars, trades, funding and series carry their own timestamps, so their file order means nothing:
the rows are stably sorted by key (``ts_ns``, then ``trade_id`` for trades) before the duplicate
check, and no row of those kinds is ever ``out_of_order`` (a file written newest-first, or one
bad row far in the future, costs nothing). Depth keeps a real sequence check on update ids.

Gaps are not row faults: they are reported (:class:`Gap`) and the rows are kept. For bars a
gap is a step between consecutive accepted bars larger than ``gap_tolerance_bars`` bar sizes;
for depth it is a break in the update-id chain (``pu`` for USDT-M, ``U == u_prev + 1`` for spot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dolphin.data.parse import Rejects
from dolphin.data.schema import PRICE_FIELDS, SIZE_FIELDS

__all__ = ["Gap", "MAX_FUTURE_NS", "MIN_PLAUSIBLE_TS_NS", "REASONS", "key_columns", "typed_raw", "validate_table"]

#: Earliest plausible market timestamp: 2009-01-01T00:00:00Z (before any crypto market existed).
MIN_PLAUSIBLE_TS_NS = 1_230_768_000_000_000_000
#: Latest plausible timestamp, relative to the wall clock at validation: one day ahead.
MAX_FUTURE_NS = 86_400_000_000_000

#: Kinds whose row order in a file is not meaningful (sorted by key before the checks).
_SORTED_KINDS = ("bars", "trades", "funding", "series")

REASONS = (
    "column_count", "empty_line", "unparseable", "unparseable_timestamp", "nan_or_inf", "truncated",
    "implausible_timestamp", "non_positive_price", "negative_volume", "inconsistent_ohlc", "crossed_book", "misaligned_bar",
    "duplicate", "duplicate_conflict", "out_of_order",
)  # fmt: skip


@dataclass(frozen=True)
class Gap:
    """A hole in a series: no data strictly between ``after_ns`` and ``before_ns``."""

    after_ns: int
    before_ns: int
    missing: int  # bars missing (bars), or update ids skipped (depth)


def key_columns(kind: str) -> tuple[str, ...]:
    """The columns that identify a row (two rows with equal keys are duplicates)."""
    return {
        "bars": ("ts_ns",),
        "trades": ("trade_id",),
        "depth": ("last_update_id", "is_snapshot", "is_bid", "price"),
        "quotes": ("ts_ns", "update_id", "bid", "ask", "bid_size", "ask_size"),
        "funding": ("ts_ns",),
        "series": ("ts_ns",),
    }[kind]


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False) if isinstance(col, pa.Array) else col.to_numpy()


def _bool(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def typed_raw(table: pa.Table, idx: np.ndarray) -> list[str]:
    """The typed values of rows ``idx`` joined by commas (quarantine text when no source text is kept)."""
    sub = table.take(pa.array(idx)).drop_columns(["_line"])
    cols = [sub.column(i).to_pylist() for i in range(sub.num_columns)]
    return [",".join("" if v is None else str(v) for v in vals) for vals in zip(*cols)]


def validate_table(
    table: pa.Table,
    kind: str,
    rejects: Rejects,
    *,
    bar_ns: int | None = None,
    gap_tolerance_bars: float = 1.0,
    chained_ids: bool = True,
    raw_text: Callable[[np.ndarray], list[str | None]] | None = None,
    now_ns: int | None = None,
    sequenced_ids: bool = True,
) -> tuple[pa.Table, list[Gap]]:
    """Apply the rules to a typed table (with ``_line``); returns the accepted rows and the gaps.

    ``raw_text(lines)`` gives the source text of rejected lines for the quarantine (when it, or it
    returns, None: the typed values joined by commas). ``now_ns`` is the wall clock for the future-timestamp rule.
    ``sequenced_ids``: trade ids are the venue's sequence (not hashed), so after the sort by time a
    trade id below an earlier row's is a time that disagrees with the venue's order (``out_of_order``).
    """
    if kind in _SORTED_KINDS and table.num_rows > 1:
        table = _sorted(table, kind)
    n = table.num_rows
    keep = np.ones(n, dtype=bool)
    lines = _np(table.column("_line"))

    def reject(mask: np.ndarray, reason: str, detail) -> None:
        idx = np.flatnonzero(mask & keep)
        if len(idx):
            raws = raw_text(lines[idx]) if raw_text is not None else None
            if raws is None:
                raws = typed_raw(table, idx)
            rejects.add(lines[idx], reason, [detail(int(i)) for i in idx], raws)
            keep[idx] = False

    def val(name: str):
        return lambda i: f"{name}={table.column(name)[i].as_py()}"

    ts = _np(table.column("ts_ns")).astype(np.int64)
    latest = (time.time_ns() if now_ns is None else now_ns) + MAX_FUTURE_NS
    reject((ts < MIN_PLAUSIBLE_TS_NS) | (ts > latest), "implausible_timestamp",
           lambda i: f"ts_ns={ts[i]} ({np.datetime64(int(ts[i]), 'ns')}) outside 2009-01-01 .. now + 1 day")  # fmt: skip
    if "local_ts_ns" in table.column_names and table.column("local_ts_ns").null_count < n:
        # The receive time where one is recorded (null: none) obeys the same bounds.
        local = _np(pc.fill_null(table.column("local_ts_ns"), MIN_PLAUSIBLE_TS_NS)).astype(np.int64)
        reject((local < MIN_PLAUSIBLE_TS_NS) | (local > latest), "implausible_timestamp",
               lambda i: f"local_ts_ns={local[i]} ({np.datetime64(int(local[i]), 'ns')}) outside 2009-01-01 .. "
                         "now + 1 day")  # fmt: skip

    for name in PRICE_FIELDS[kind]:
        reject(_bool(pc.less_equal(table.column(name), 0)), "non_positive_price", val(name))
    for name in SIZE_FIELDS[kind]:
        reject(_bool(pc.less(table.column(name), 0)), "negative_volume", val(name))

    if kind == "bars":
        o, h, lo, c = (table.column(x) for x in ("open", "high", "low", "close"))
        bad = _bool(pc.or_(pc.less(h, pc.max_element_wise(o, c, lo)), pc.greater(lo, pc.min_element_wise(o, c))))
        reject(bad, "inconsistent_ohlc", lambda i: f"o/h/l/c={o[i].as_py()}/{h[i].as_py()}/{lo[i].as_py()}/{c[i].as_py()}")
    elif kind == "quotes":
        bad = _bool(pc.greater_equal(table.column("bid"), table.column("ask")))
        reject(bad, "crossed_book", lambda i: f"bid={table.column('bid')[i].as_py()} >= ask={table.column('ask')[i].as_py()}")
    elif kind == "depth" and n:
        _crossed_snapshots(table, keep, reject)

    if kind == "bars" and bar_ns:
        reject(ts % bar_ns != 0, "misaligned_bar", lambda i: f"ts_ns={ts[i]} not a multiple of {bar_ns}")

    _duplicates(table, kind, keep, reject)

    # Out of order: earlier than the running maximum of the accepted rows before it. For depth
    # the key is the update id among diffs; a snapshot is exempt (it legitimately arrives after
    # diffs with later ids, which is why Binance's sync buffers diffs). Sorted kinds are in order.
    order_key = ts if kind != "depth" else _np(table.column("last_update_id")).astype(np.int64)
    candidates = keep if kind != "depth" else keep & ~_bool(table.column("is_snapshot"))
    idx = np.flatnonzero(candidates)
    if len(idx) > 1 and kind not in _SORTED_KINDS:
        k = order_key[idx]
        runmax = np.maximum.accumulate(k)
        late = np.zeros(n, dtype=bool)
        late[idx[1:]] = k[1:] < runmax[:-1]
        reject(late, "out_of_order", lambda i: f"key={order_key[i]} after a later row")

    if kind == "trades" and sequenced_ids:
        # Sorted by (ts, trade id): a trade whose id is below an earlier (in time) trade's id has a
        # timestamp that contradicts the venue's own sequence. (The sort must not hide it.)
        idx = np.flatnonzero(keep)
        if len(idx) > 1:
            ids = _np(table.column("trade_id")).astype(np.int64)
            k = ids[idx]
            runmax = np.maximum.accumulate(k)
            late = np.zeros(n, dtype=bool)
            late[idx[1:]] = k[1:] < runmax[:-1]
            reject(late, "out_of_order", lambda i: f"trade_id={ids[i]} at a later time than a higher trade id")

    accepted = table.filter(pa.array(keep))
    gaps: list[Gap] = []
    if kind == "bars" and bar_ns and accepted.num_rows > 1:
        t = _np(accepted.column("ts_ns")).astype(np.int64)
        step = np.diff(t)
        where = np.flatnonzero(step > bar_ns * gap_tolerance_bars)
        gaps = [Gap(int(t[i]), int(t[i + 1]), int(step[i] // bar_ns) - 1) for i in where]
    elif kind == "depth" and chained_ids and accepted.num_rows > 1:
        gaps = _depth_chain_gaps(accepted)
    return accepted, gaps


def _sorted(table: pa.Table, kind: str) -> pa.Table:
    """``table`` stably sorted by its time key (rows of equal key keep their file order)."""
    ts = _np(table.column("ts_ns"))
    if kind == "trades":
        ids = _np(table.column("trade_id"))
        if np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (ids[1:] >= ids[:-1]))):
            return table
        keys = [("ts_ns", "ascending"), ("trade_id", "ascending"), ("_line", "ascending")]
    else:
        if np.all(ts[1:] >= ts[:-1]):
            return table
        keys = [("ts_ns", "ascending"), ("_line", "ascending")]
    return table.take(pc.sort_indices(table, sort_keys=keys))


def _crossed_snapshots(table: pa.Table, keep: np.ndarray, reject) -> None:
    snap = _bool(table.column("is_snapshot"))
    if not snap.any():
        return
    ids = _np(table.column("last_update_id")).astype(np.int64)
    is_bid = _bool(table.column("is_bid"))
    price = _np(pc.cast(table.column("price"), pa.float64()))
    qty = _np(pc.cast(table.column("quantity"), pa.float64()))
    crossed = np.zeros(len(ids), dtype=bool)
    for sid in np.unique(ids[snap]):
        m = snap & (ids == sid) & (qty > 0) & keep
        asks = price[m & ~is_bid]
        if len(asks):
            crossed |= m & is_bid & (price >= asks.min())
    reject(crossed, "crossed_book", lambda i: f"snapshot {ids[i]} bid {price[i]} >= best ask")


def _duplicates(table: pa.Table, kind: str, keep: np.ndarray, reject) -> None:
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return
    keys = key_columns(kind)
    sub = table.take(pa.array(idx))
    cols = _key_arrays(sub, keys)
    if len(cols) == 1:
        karr = cols[0]
        _, first = np.unique(karr, return_index=True)
        inv = np.unique(karr, return_inverse=True)[1]
    else:
        rec = np.rec.fromarrays([np.asarray(c).astype(str) if c.dtype == object else c for c in cols])
        _, first, inv = np.unique(rec, return_index=True, return_inverse=True)
    dup_local = np.ones(len(idx), dtype=bool)
    dup_local[first] = False
    if not dup_local.any():
        return
    data = sub.drop_columns(["_line"])
    dup_j = np.flatnonzero(dup_local)
    dups = data.take(pa.array(dup_j)).to_pylist()
    firsts = data.take(pa.array(first[inv[dup_j]])).to_pylist()
    identical = np.zeros(len(idx), dtype=bool)
    identical[dup_j] = [a == b for a, b in zip(dups, firsts)]
    same = np.zeros(len(keep), dtype=bool)
    same[idx[dup_local & identical]] = True
    conflict = np.zeros(len(keep), dtype=bool)
    conflict[idx[dup_local & ~identical]] = True
    key_text = lambda i: "key " + ",".join(f"{k}={table.column(k)[i].as_py()}" for k in keys)  # noqa: E731
    reject(same, "duplicate", key_text)
    reject(conflict, "duplicate_conflict", key_text)


def _key_arrays(sub: pa.Table, keys: tuple[str, ...]) -> list[np.ndarray]:
    """NumPy arrays whose rows compare equal exactly when the keys do, nulls included.

    A nullable column (quotes' ``update_id``) becomes two arrays: is-null and the values with nulls
    filled. Converting it directly gives NaN, and NaN != NaN would make every null key unique.
    Decimals are compared by their text (fixed 18 decimals, so equal values have equal text).
    """
    out: list[np.ndarray] = []
    for k in keys:
        col = sub.column(k)
        if pa.types.is_decimal(col.type):
            col = pc.cast(col, pa.string())
        if col.null_count:
            out.append(_np(pc.is_null(col)))
            fill = "" if pa.types.is_string(col.type) else (False if pa.types.is_boolean(col.type) else 0)
            col = pc.fill_null(col, pa.scalar(fill, col.type))
        out.append(_np(col))
    return out


def _depth_chain_gaps(table: pa.Table) -> list[Gap]:
    diff = ~_bool(table.column("is_snapshot"))
    if not diff.any():
        return []
    t = table.filter(pa.array(diff))
    first = _np(t.column("first_update_id")).astype(np.int64)
    last = _np(t.column("last_update_id")).astype(np.int64)
    prev = t.column("prev_update_id")
    ts = _np(t.column("ts_ns")).astype(np.int64)
    # One message per distinct last_update_id (rows of a message share it).
    change = np.r_[True, last[1:] != last[:-1]]
    m_first, m_last, m_ts = first[change], last[change], ts[change]
    has_pu = prev.null_count < len(prev)
    gaps: list[Gap] = []
    if has_pu:
        pu = _np(pc.fill_null(prev, -1)).astype(np.int64)[change]
        broken = np.flatnonzero(pu[1:] != m_last[:-1]) + 1
    else:
        broken = np.flatnonzero(m_first[1:] != m_last[:-1] + 1) + 1
    for j in broken:
        gaps.append(Gap(int(m_ts[j - 1]), int(m_ts[j]), int(max(m_first[j] - m_last[j - 1] - 1, 0))))
    return gaps
