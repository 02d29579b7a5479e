"""L2 order book in integer ticks and the Binance snapshot + diff-stream synchroniser.

:class:`L2Book` keeps each side as a chunked sorted array of signed integer keys (bids:
``+ticks``, asks: ``-ticks``; see :mod:`dolphin.alpha.ladder`), so one numba kernel updates both
and an update costs O(64 + log n) moves whatever the level's depth. Updates replace the quantity
of a level (quantity 0 deletes it).

:class:`BookBuilder` follows Binance's documented "how to manage a local order book" procedure:

1. buffer depth diffs from the start of the stream (state ``AWAIT_SNAPSHOT``);
2. on a REST snapshot with ``lastUpdateId`` = L, drop buffered diffs with ``u < L``;
3. the first applied diff must bracket the snapshot: ``U <= L + 1`` and ``u >= L`` (futures:
   ``U <= L <= u``; spot: ``U <= L + 1 <= u``; the union is safe because a diff with ``u == L`` only
   re-states values the snapshot already holds);
4. every following diff must chain: futures ``pu == previous u``; spot ``U == previous u + 1``;
   a diff with ``u <=`` the book's update id is stale and ignored (it arrives after a resync);
5. a break in the chain (a gap), a crossed book after an update, a malformed diff, or a snapshot
   older than the buffered stream puts the builder back to ``AWAIT_SNAPSHOT``: the book is
   discarded, the diff that revealed the gap is buffered, and ``needs_snapshot`` asks the owner for
   a fresh REST snapshot. Every such event is counted in :class:`BookCounters`.

Results of :meth:`BookBuilder.on_diff` / :meth:`BookBuilder.on_snapshot` are :class:`BookResult`
codes (expected failures are data, not exceptions).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable, Iterator, Protocol

import numpy as np
from numba import njit

from dolphin.alpha.features import UpdateClock
from dolphin.alpha.ladder import Side, side_best, side_depth_within, side_set, side_top
from dolphin.alpha.ticks import OffGridPriceError, TickGrid, decimals_of, infer_tick_grid, parse_levels
from dolphin.data.binance_capture import NO_UPDATE_ID, CaptureMessage, DepthDiff, DepthSnapshot

__all__ = [
    "BookBuilder",
    "BookCounters",
    "BookResult",
    "BookSnapshot",
    "L2Book",
    "SnapshotSource",
    "SyncState",
    "TOUCH_SIZE",
    "TickDiff",
    "diff_from_message",
    "replay_into_builder",
    "snapshot_from_message",
]

# An inferred grid is refined (a diff or later snapshot shows finer prices) up to 8 decimals, the
# finest tick Binance lists (1e-8); a finer price is a bad diff.
MAX_REFINED_DECIMALS = 8
_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_F = np.empty(0, dtype=np.float64)


# --------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _valid_qty(q: np.ndarray) -> bool:
    for i in range(q.shape[0]):
        if not (q[i] >= 0.0) or q[i] == np.inf:  # rejects NaN, negatives, inf
            return False
    return True


APPLY_OK = 0
APPLY_BAD_QTY = 1
APPLY_CROSSED = 2


@njit(cache=True, nogil=True)
def _apply_diff(
    bk, bq, bc, bo, bf, bfree, bmeta,
    ak, aq, ac, ao, af, afree, ameta,
    dbt: np.ndarray, dbq: np.ndarray, dat: np.ndarray, daq: np.ndarray,
) -> int:
    """Validate and apply one diff to both sides (bids key = +tick, asks key = -tick); report a cross."""
    if not (_valid_qty(dbq) and _valid_qty(daq)):
        return APPLY_BAD_QTY
    for j in range(dbt.shape[0]):
        side_set(bk, bq, bc, bo, bf, bfree, bmeta, dbt[j], dbq[j])
    for j in range(dat.shape[0]):
        side_set(ak, aq, ac, ao, af, afree, ameta, -dat[j], daq[j])
    if bmeta[0] > 0 and ameta[0] > 0 and side_best(bk, bc, bo, bmeta) >= -side_best(ak, ac, ao, ameta):
        return APPLY_CROSSED
    return APPLY_OK


# Layout of the output vector of L2Book.touch().
T_BID_TICKS, T_ASK_TICKS, T_BID_QTY, T_ASK_QTY, T_WOBI, T_BID_DEPTH_QUOTE, T_ASK_DEPTH_QUOTE = range(7)
TOUCH_SIZE = 7


@njit(cache=True, nogil=True)
def _side_weighted(keys, qty, cnt, order, meta, weights) -> float:
    """sum_l w_l q_l over the best len(weights) levels of one side (missing levels count 0)."""
    total = 0.0
    lvl = 0
    n_w = weights.shape[0]
    i = meta[0] - 1
    while i >= 0 and lvl < n_w:
        row = order[i]
        j = cnt[row] - 1
        while j >= 0 and lvl < n_w:
            total += weights[lvl] * qty[row, j]
            lvl += 1
            j -= 1
        i -= 1
    return total


@njit(cache=True, nogil=True)
def _touch(
    bk, bq, bc, bo, bmeta,
    ak, aq, ac, ao, ameta,
    weights: np.ndarray, band_bps: float, tick_size: float, out: np.ndarray,
) -> bool:
    """Best bid/ask, their queues, WOBI over len(weights) levels and the quote depth within
    ``band_bps`` of mid, in one pass (one dispatch on the hot path). False if a side is empty."""
    if bmeta[1] == 0 or ameta[1] == 0:
        return False
    bb = side_best(bk, bc, bo, bmeta)
    ba = -side_best(ak, ac, ao, ameta)
    brow = bo[bmeta[0] - 1]
    arow = ao[ameta[0] - 1]
    out[0] = bb
    out[1] = ba
    out[2] = bq[brow, bc[brow] - 1]
    out[3] = aq[arow, ac[arow] - 1]
    wb = _side_weighted(bk, bq, bc, bo, bmeta, weights)
    wa = _side_weighted(ak, aq, ac, ao, ameta, weights)
    den = wb + wa
    x = (wb - wa) / den if den > 0.0 else 0.0
    out[4] = min(1.0, max(-1.0, x))
    mid = 0.5 * (bb + ba)
    out[5] = side_depth_within(bk, bq, bc, bo, bmeta, 1, mid, band_bps, tick_size)
    out[6] = side_depth_within(ak, aq, ac, ao, ameta, -1, mid, band_bps, tick_size)
    return True


# --------------------------------------------------------------------------- data


class BookSnapshot:
    """A full book image in ticks: ``last_update_id`` plus best-first bid/ask ticks and quantities."""

    __slots__ = ("last_update_id", "bid_ticks", "bid_qty", "ask_ticks", "ask_qty", "local_ts_ns", "grid")

    def __init__(
        self,
        last_update_id: int,
        bid_ticks: np.ndarray,
        bid_qty: np.ndarray,
        ask_ticks: np.ndarray,
        ask_qty: np.ndarray,
        local_ts_ns: int = -1,
        grid: TickGrid | None = None,
    ) -> None:
        # grid: the grid of the ticks when it may differ from the receiving builder's (a snapshot
        # source with its own grid); None = the builder's grid.
        self.grid = grid
        self.last_update_id = int(last_update_id)
        self.bid_ticks = np.asarray(bid_ticks, dtype=np.int64)
        self.bid_qty = np.asarray(bid_qty, dtype=np.float64)
        self.ask_ticks = np.asarray(ask_ticks, dtype=np.int64)
        self.ask_qty = np.asarray(ask_qty, dtype=np.float64)
        self.local_ts_ns = int(local_ts_ns)


class TickDiff:
    """A depth diff in ticks: ``U``..``u`` (``pu`` = previous ``u`` or NO_UPDATE_ID) and level updates."""

    __slots__ = ("U", "u", "pu", "local_ts_ns", "exchange_ts_ns", "bid_ticks", "bid_qty", "ask_ticks", "ask_qty")

    def __init__(
        self,
        U: int,
        u: int,
        pu: int,
        bid_ticks: np.ndarray,
        bid_qty: np.ndarray,
        ask_ticks: np.ndarray,
        ask_qty: np.ndarray,
        local_ts_ns: int = -1,
        exchange_ts_ns: int = -1,
    ) -> None:
        self.U = U
        self.u = u
        self.pu = pu
        self.bid_ticks = bid_ticks
        self.bid_qty = bid_qty
        self.ask_ticks = ask_ticks
        self.ask_qty = ask_qty
        self.local_ts_ns = local_ts_ns
        self.exchange_ts_ns = exchange_ts_ns


def _side_arrays(levels: tuple[tuple[str, str], ...], grid: TickGrid) -> tuple[np.ndarray, np.ndarray]:
    if not levels:
        return _EMPTY_I, _EMPTY_F
    return parse_levels(levels, grid)


def diff_from_message(msg: DepthDiff, grid: TickGrid) -> TickDiff:
    """Convert a capture :class:`DepthDiff` to ticks; raises OffGridPriceError on bad prices/quantities."""
    bt, bq = _side_arrays(msg.bids, grid)
    at, aq = _side_arrays(msg.asks, grid)
    return TickDiff(
        msg.first_update_id,
        msg.final_update_id,
        msg.prev_final_update_id,
        bt,
        bq,
        at,
        aq,
        msg.local_ts_ns,
        msg.exchange_ts_ns,
    )


def snapshot_from_message(msg: DepthSnapshot, grid: TickGrid) -> BookSnapshot:
    """Convert a capture :class:`DepthSnapshot` to ticks."""
    bt, bq = _side_arrays(msg.bids, grid)
    at, aq = _side_arrays(msg.asks, grid)
    return BookSnapshot(msg.last_update_id, bt, bq, at, aq, msg.local_ts_ns)


# --------------------------------------------------------------------------- book


class L2Book:
    """Full-depth L2 book in integer ticks.

    Each side is a :class:`dolphin.alpha.ladder.Side` (chunked sorted keys, best level last; bids
    key = +ticks, asks key = -ticks). Accessors return best-first data.
    """

    __slots__ = ("bids", "asks", "last_update_id", "tick_size", "_bk", "_bq", "_ak", "_aq")

    def __init__(self, tick_size: float, rows: int = 128, view_levels: int = 64) -> None:
        self.tick_size = tick_size
        self.bids = Side(1, rows)
        self.asks = Side(-1, rows)
        self.last_update_id = NO_UPDATE_ID
        self._bk = np.empty(view_levels, dtype=np.int64)
        self._bq = np.empty(view_levels, dtype=np.float64)
        self._ak = np.empty(view_levels, dtype=np.int64)
        self._aq = np.empty(view_levels, dtype=np.float64)

    @property
    def n_bid(self) -> int:
        return int(self.bids.meta[1])

    @property
    def n_ask(self) -> int:
        return int(self.asks.meta[1])

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.last_update_id = NO_UPDATE_ID

    def load(self, snap: BookSnapshot) -> None:
        """Replace the whole book by a snapshot (levels with quantity <= 0 are dropped)."""
        self.clear()
        bm = snap.bid_qty > 0.0
        am = snap.ask_qty > 0.0
        bk = snap.bid_ticks[bm]
        ak = -snap.ask_ticks[am]
        bo = np.argsort(bk, kind="stable")
        ao = np.argsort(ak, kind="stable")
        self.bids.load_sorted(bk[bo], snap.bid_qty[bm][bo])
        self.asks.load_sorted(ak[ao], snap.ask_qty[am][ao])
        self.last_update_id = snap.last_update_id

    def apply(self, bid_ticks: np.ndarray, bid_qty: np.ndarray, ask_ticks: np.ndarray, ask_qty: np.ndarray) -> int:
        """Apply level replacements (quantity 0 deletes); no update-id checks (see BookBuilder).

        Returns APPLY_OK, APPLY_BAD_QTY (nothing applied: NaN/negative/inf quantity) or
        APPLY_CROSSED (applied; the book is now crossed).
        """
        b = self.bids
        a = self.asks
        if b.meta[2] <= bid_ticks.shape[0]:
            b.reserve(bid_ticks.shape[0] + 1)
        if a.meta[2] <= ask_ticks.shape[0]:
            a.reserve(ask_ticks.shape[0] + 1)
        return _apply_diff(
            b.keys, b.qty, b.cnt, b.order, b.firsts, b.free, b.meta,
            a.keys, a.qty, a.cnt, a.order, a.firsts, a.free, a.meta,
            bid_ticks, bid_qty, ask_ticks, ask_qty,
        )

    # ----- views (best-first)

    @property
    def best_bid_ticks(self) -> int:
        """Best bid in ticks, or -1 when the bid side is empty."""
        b = self.bids
        return int(side_best(b.keys, b.cnt, b.order, b.meta)) if b.meta[1] else -1

    @property
    def best_ask_ticks(self) -> int:
        """Best ask in ticks, or -1 when the ask side is empty."""
        a = self.asks
        return int(-side_best(a.keys, a.cnt, a.order, a.meta)) if a.meta[1] else -1

    @property
    def best_bid_qty(self) -> float:
        b = self.bids
        if not b.meta[1]:
            return 0.0
        row = b.order[b.meta[0] - 1]
        return float(b.qty[row, b.cnt[row] - 1])

    @property
    def best_ask_qty(self) -> float:
        a = self.asks
        if not a.meta[1]:
            return 0.0
        row = a.order[a.meta[0] - 1]
        return float(a.qty[row, a.cnt[row] - 1])

    def is_crossed(self) -> bool:
        """True when both sides exist and best bid >= best ask."""
        return bool(self.n_bid and self.n_ask and self.best_bid_ticks >= self.best_ask_ticks)

    def bid_levels(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best-first bid (ticks, qty) copies of up to ``n`` levels."""
        return self.bids.levels(n)

    def ask_levels(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best-first ask (ticks, qty) copies of up to ``n`` levels."""
        k, q = self.asks.levels(n)
        return -k, q

    def bid_qty_view(self, n: int) -> np.ndarray:
        """Best-first quantities of up to ``n`` bid levels in a reused buffer (valid until the next call)."""
        b = self.bids
        if n > self._bq.shape[0]:
            return self.bid_levels(n)[1]
        m = side_top(b.keys, b.qty, b.cnt, b.order, b.meta, n, self._bk, self._bq)
        return self._bq[:m]

    def ask_qty_view(self, n: int) -> np.ndarray:
        """Best-first quantities of up to ``n`` ask levels in a reused buffer (valid until the next call)."""
        a = self.asks
        if n > self._aq.shape[0]:
            return self.ask_levels(n)[1]
        m = side_top(a.keys, a.qty, a.cnt, a.order, a.meta, n, self._ak, self._aq)
        return self._aq[:m]

    def depth_within_bps_quote(self, within_bps: float) -> tuple[float, float]:
        """(bid, ask) quote notional within ``within_bps`` of the mid; (0, 0) if a side is empty."""
        if not (self.n_bid and self.n_ask):
            return 0.0, 0.0
        b = self.bids
        a = self.asks
        mid = 0.5 * (self.best_bid_ticks + self.best_ask_ticks)
        bd = side_depth_within(b.keys, b.qty, b.cnt, b.order, b.meta, 1, mid, within_bps, self.tick_size)
        ad = side_depth_within(a.keys, a.qty, a.cnt, a.order, a.meta, -1, mid, within_bps, self.tick_size)
        return bd, ad

    def touch(self, weights: np.ndarray, band_bps: float, out: np.ndarray) -> bool:
        """Hot-path features in one call: fills ``out`` (``TOUCH_SIZE`` floats, layout ``T_*``) with best
        bid/ask ticks, their quantities, WOBI over ``len(weights)`` levels and the bid/ask quote depth
        within ``band_bps`` of mid. Returns False (``out`` untouched) when a side is empty."""
        b = self.bids
        a = self.asks
        return _touch(
            b.keys, b.qty, b.cnt, b.order, b.meta, a.keys, a.qty, a.cnt, a.order, a.meta,
            weights, band_bps, self.tick_size, out,
        )

    def snapshot(self, max_levels: int | None = None) -> BookSnapshot:
        """Copy of the book as a :class:`BookSnapshot` (like a REST snapshot with ``max_levels``)."""
        bt, bq = self.bid_levels(max_levels)
        at, aq = self.ask_levels(max_levels)
        return BookSnapshot(self.last_update_id, bt, bq, at, aq)


# --------------------------------------------------------------------------- builder


class SyncState(IntEnum):
    """Where the builder is in Binance's sync procedure."""

    AWAIT_SNAPSHOT = 0  # buffering diffs; needs a REST snapshot
    AWAIT_BRACKET = 1  # snapshot held; waiting for the diff that brackets its lastUpdateId
    SYNCED = 2  # book valid; applying chained diffs


class BookResult(IntEnum):
    """Outcome of feeding one message to the builder."""

    APPLIED = 0
    BUFFERED = 1
    STALE_DROPPED = 2
    GAP = 3  # chain broken: book discarded, resync needed
    CROSSED = 4  # book crossed after an update: discarded, resync needed
    BAD_DIFF = 5  # malformed diff (off-grid price, bad quantity): discarded, resync needed
    SYNCED = 6  # snapshot accepted and buffered diffs applied
    SNAPSHOT_PENDING = 7  # snapshot held, bracketing diff not here yet
    SNAPSHOT_TOO_OLD = 8  # buffered stream starts after the snapshot: need a newer one
    SNAPSHOT_IGNORED = 9  # a snapshot arrived while already synced
    GRID_REFINED = 10  # inferred grid too coarse for a diff's price: grid refined, book discarded, resync needed


@dataclass
class BookCounters:
    """Every event of the sync procedure, counted."""

    diffs_applied: int = 0
    diffs_buffered: int = 0
    stale_dropped: int = 0
    gaps: int = 0
    crossed: int = 0
    bad_diffs: int = 0
    syncs: int = 0  # successful (re)initialisations from a snapshot
    snapshots_too_old: int = 0
    snapshots_ignored: int = 0
    buffer_overflows: int = 0
    grid_refinements: int = 0  # inferred tick grid refined to finer decimals (each one a resync)

    @property
    def resyncs(self) -> int:
        """Syncs after the first one."""
        return max(0, self.syncs - 1)

    @property
    def failures(self) -> int:
        return self.gaps + self.crossed + self.bad_diffs


@dataclass
class BookBuilder:
    """Maintains one symbol's :class:`L2Book` from a snapshot and a diff stream (see module doc).

    ``grid`` is the tick grid (None: inferred from the first snapshot message fed through
    :meth:`on_message` and its buffered diffs; refined to finer decimals, up to 8, when a later diff
    or snapshot needs it: ``GRID_REFINED``, counted, a resync if the book was synced). ``max_buffer``
    bounds the diff buffer while awaiting a snapshot (the oldest diff is dropped and counted beyond it).
    :meth:`on_message` drops stale diffs before parsing their prices.
    """

    grid: TickGrid | None = None
    max_buffer: int = 10_000
    jitter_alpha: float = 0.05
    check_crossed: bool = True
    state: SyncState = SyncState.AWAIT_SNAPSHOT
    counters: BookCounters = field(default_factory=BookCounters)
    book: L2Book = field(init=False)
    clock: UpdateClock = field(init=False)
    last_seen_u: int = NO_UPDATE_ID  # newest u received (applied or buffered)
    _buffer: deque = field(init=False)
    _pending: BookSnapshot | None = None
    _grid_inferred: bool = False  # the grid came from a snapshot's prices (refinable), not the config

    def __post_init__(self) -> None:
        self.book = L2Book(self.grid.tick_size if self.grid else 1.0)
        self.clock = UpdateClock(self.jitter_alpha)
        self._buffer = deque()

    # ----- public

    @property
    def needs_snapshot(self) -> bool:
        """True when the owner should fetch a REST snapshot (book invalid, no usable snapshot held)."""
        return self.state == SyncState.AWAIT_SNAPSHOT

    @property
    def is_synced(self) -> bool:
        return self.state == SyncState.SYNCED

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def on_message(self, msg: CaptureMessage) -> BookResult | None:
        """Feed a capture message (depth diffs and snapshots; other kinds return None)."""
        if isinstance(msg, DepthDiff):
            u = msg.final_update_id
            # Staleness first (before any price is parsed): a re-delivered diff is dropped whatever
            # its content. Not synced -> book.last_update_id is NO_UPDATE_ID, so only the pending
            # snapshot's rule applies (same rules as on_diff / _apply).
            pending = self._pending
            if u <= self.book.last_update_id or (pending is not None and u < pending.last_update_id):
                if u > self.last_seen_u:
                    self.last_seen_u = u
                self.counters.stale_dropped += 1
                return BookResult.STALE_DROPPED
            if self.grid is None:
                self._buffer_raw(msg)
                return BookResult.BUFFERED
            try:
                d = diff_from_message(msg, self.grid)
            except OffGridPriceError:
                if u > self.last_seen_u:
                    self.last_seen_u = u
                return self._off_grid_diff(msg)
            return self.on_diff(d)
        if isinstance(msg, DepthSnapshot):
            if self.state == SyncState.SYNCED:  # ignored: no need to parse it
                self.counters.snapshots_ignored += 1
                return BookResult.SNAPSHOT_IGNORED
            if self.grid is None:
                lid = msg.last_update_id
                try:
                    grid = infer_tick_grid(p for p, _ in msg.bids + msg.asks)
                except ValueError:
                    # No prices (an empty book: a halted or new symbol, a truncated answer), or
                    # finer than a tick grid holds: refused and counted like any unusable
                    # snapshot; the buffered diffs stay for the next one (review 2026-12-06: the
                    # error escaped and the buffer was already cleared).
                    self.counters.bad_diffs += 1
                    return BookResult.BAD_DIFF
                raw = list(self._buffer)
                self._buffer.clear()
                # The buffered diffs may show finer prices than a thin snapshot: the grid fits both.
                need = max(
                    (decimals_of(p) for m in raw if m.final_update_id >= lid for p, _ in m.bids + m.asks),
                    default=0,
                )
                if grid.decimals < need <= MAX_REFINED_DECIMALS:
                    grid = TickGrid(need, 1)
                self.grid = grid
                self._grid_inferred = True
                self.book.tick_size = grid.tick_size
                for m in raw:  # already counted in diffs_buffered when they arrived
                    if m.final_update_id < lid:
                        self.counters.stale_dropped += 1  # on_snapshot would drop it unparsed anyway
                        continue
                    try:
                        self._buffer.append(diff_from_message(m, self.grid))
                    except OffGridPriceError:
                        self.counters.bad_diffs += 1
            elif self._grid_inferred:  # a later snapshot may show finer prices than the first one
                need = max((decimals_of(p) for p, _ in msg.bids + msg.asks), default=0)
                if self.grid.decimals < need <= MAX_REFINED_DECIMALS:
                    self._refine_grid(need)
            try:
                snap = snapshot_from_message(msg, self.grid)
            except OffGridPriceError:  # unusable snapshot (off-grid, malformed or zero price): keep waiting
                self.counters.bad_diffs += 1
                return BookResult.BAD_DIFF
            return self.on_snapshot(snap)
        return None

    def on_snapshot(self, snap: BookSnapshot) -> BookResult:
        """Offer a REST snapshot; syncs with the buffered diffs if one brackets it."""
        if self.state == SyncState.SYNCED:
            self.counters.snapshots_ignored += 1
            return BookResult.SNAPSHOT_IGNORED
        if not (_valid_qty(snap.bid_qty) and _valid_qty(snap.ask_qty)):
            # NaN, negative or infinite quantity: refused like a diff with one (review 2026-12-06:
            # a snapshot loaded an infinite level and WOBI read the NaN as -1)
            self.counters.bad_diffs += 1
            return BookResult.BAD_DIFF
        if snap.grid is not None and self.grid is not None and snap.grid != self.grid:
            regridded = self._regrid(snap)
            if regridded is None:
                self.counters.bad_diffs += 1
                return BookResult.BAD_DIFF
            snap = regridded
        lid = snap.last_update_id
        buf = self._buffer
        while buf and buf[0].u < lid:
            buf.popleft()
            self.counters.stale_dropped += 1
        if not buf:
            self._pending = snap
            self.state = SyncState.AWAIT_BRACKET
            return BookResult.SNAPSHOT_PENDING
        if buf[0].U > lid + 1:
            self.counters.snapshots_too_old += 1
            self._pending = None
            self.state = SyncState.AWAIT_SNAPSHOT
            return BookResult.SNAPSHOT_TOO_OLD
        self.book.load(snap)
        self.state = SyncState.SYNCED
        self.counters.syncs += 1
        self.clock.reset()
        pending = list(buf)
        buf.clear()
        for idx, d in enumerate(pending):
            r = self._apply(d, first_after_snapshot=idx == 0)
            if r != BookResult.APPLIED and r != BookResult.STALE_DROPPED:
                # The builder was reset (a GAP re-buffered d); keep the diffs after it for the next sync.
                # They were counted in diffs_buffered when they first arrived: count each diff once.
                if r == BookResult.GAP:
                    self.counters.diffs_buffered -= 1  # d, re-buffered by _fail
                self._buffer.extend(pending[idx + 1 :])
                self._trim()
                return r
        return BookResult.SYNCED

    def on_diff(self, d: TickDiff) -> BookResult:
        """Feed one depth diff (in ticks)."""
        if d.u > self.last_seen_u:
            self.last_seen_u = d.u
        st = self.state
        if st == SyncState.SYNCED:
            return self._apply(d, first_after_snapshot=False)
        if st == SyncState.AWAIT_BRACKET:
            snap = self._pending
            assert snap is not None
            lid = snap.last_update_id
            if d.u < lid:
                self.counters.stale_dropped += 1
                return BookResult.STALE_DROPPED
            if d.U > lid + 1:
                self.counters.snapshots_too_old += 1
                self._pending = None
                self.state = SyncState.AWAIT_SNAPSHOT
                self._push(d)
                return BookResult.SNAPSHOT_TOO_OLD
            self._pending = None
            self.book.load(snap)
            self.state = SyncState.SYNCED
            self.counters.syncs += 1
            self.clock.reset()
            r = self._apply(d, first_after_snapshot=True)
            return BookResult.SYNCED if r == BookResult.APPLIED else r
        self._push(d)
        return BookResult.BUFFERED

    # ----- internals

    def _off_grid_diff(self, msg: DepthDiff) -> BookResult:
        """A diff whose prices do not parse on the grid: BAD_DIFF, or (inferred grid, finer prices)
        the grid is refined to the diff's decimals and the book resyncs (``grid_refinements``)."""
        if self._grid_inferred and self.grid is not None:
            need = max((decimals_of(p) for p, _ in msg.bids + msg.asks), default=0)
            if self.grid.decimals < need <= MAX_REFINED_DECIMALS:
                was_synced = self.state == SyncState.SYNCED
                if was_synced:  # the book's ticks are on the old grid: discard it and resync
                    self._fail(BookResult.GRID_REFINED, None, count=False)
                self._refine_grid(need)  # (an unsynced builder's buffer and pending snapshot are rescaled)
                try:
                    d = diff_from_message(msg, self.grid)
                except OffGridPriceError:  # finer AND malformed: a bad diff after all
                    return self._fail(BookResult.BAD_DIFF, None)
                if was_synced:
                    self._push(d)  # needed once a new snapshot arrives, like the diff after a gap
                    return BookResult.GRID_REFINED
                return self.on_diff(d)
        return self._fail(BookResult.BAD_DIFF, None)

    def _refine_grid(self, decimals: int) -> None:
        """Switch an inferred grid to ``10**-decimals`` (finer): held ticks are rescaled exactly,
        into new diff / snapshot objects (the ones held may be the caller's: never changed)."""
        assert self.grid is not None and self.grid.tick_units == 1 and decimals > self.grid.decimals
        m = 10 ** (decimals - self.grid.decimals)
        self.grid = TickGrid(decimals, 1)
        self.book.clear()  # (the caller resyncs; an unsynced book is empty anyway)
        self.book.tick_size = self.grid.tick_size
        buf = self._buffer
        for i, d in enumerate(buf):
            buf[i] = TickDiff(d.U, d.u, d.pu, d.bid_ticks * m, d.bid_qty, d.ask_ticks * m, d.ask_qty,
                              d.local_ts_ns, d.exchange_ts_ns)  # fmt: skip
        snap = self._pending
        if snap is not None:
            self._pending = BookSnapshot(snap.last_update_id, snap.bid_ticks * m, snap.bid_qty, snap.ask_ticks * m,
                                         snap.ask_qty, snap.local_ts_ns)  # fmt: skip (now on the builder's grid)
        self.counters.grid_refinements += 1

    def _regrid(self, snap: BookSnapshot) -> BookSnapshot | None:
        """``snap`` (ticks of ``snap.grid``) in ticks of the builder's grid, refining an inferred grid
        when the snapshot's is finer; None when its prices are not exactly on the builder's grid."""
        g = snap.grid
        assert g is not None and self.grid is not None
        if g.decimals > self.grid.decimals and self._grid_inferred and g.decimals <= MAX_REFINED_DECIMALS:
            self._refine_grid(g.decimals)
        mine = self.grid
        if g.decimals > mine.decimals:
            return None
        num = g.tick_units * 10 ** (mine.decimals - g.decimals)  # builder units per snapshot tick
        sides = []
        for t in (snap.bid_ticks, snap.ask_ticks):
            q, r = np.divmod(t * num, mine.tick_units)
            if np.any(r):
                return None
            sides.append(q)
        return BookSnapshot(snap.last_update_id, sides[0], snap.bid_qty, sides[1], snap.ask_qty, snap.local_ts_ns)

    def _buffer_raw(self, msg: DepthDiff) -> None:
        if msg.final_update_id > self.last_seen_u:
            self.last_seen_u = msg.final_update_id
        self._buffer.append(msg)
        self.counters.diffs_buffered += 1
        self._trim()

    def _push(self, d: TickDiff) -> None:
        self._buffer.append(d)
        self.counters.diffs_buffered += 1
        self._trim()

    def _trim(self) -> None:
        while len(self._buffer) > self.max_buffer:
            self._buffer.popleft()
            self.counters.buffer_overflows += 1

    def _fail(self, why: BookResult, d: TickDiff | None, *, count: bool = True) -> BookResult:
        c = self.counters
        if not count:
            pass
        elif why == BookResult.GAP:
            c.gaps += 1
        elif why == BookResult.CROSSED:
            c.crossed += 1
        else:
            c.bad_diffs += 1
        self.book.clear()
        self._pending = None
        self._buffer.clear()
        self.state = SyncState.AWAIT_SNAPSHOT
        if d is not None and why == BookResult.GAP:
            self._push(d)  # the diff after the gap is needed once a new snapshot arrives
        return why

    def _apply(self, d: TickDiff, *, first_after_snapshot: bool) -> BookResult:
        book = self.book
        last = book.last_update_id
        if not first_after_snapshot:
            if d.u <= last:
                self.counters.stale_dropped += 1
                return BookResult.STALE_DROPPED
            chained = (d.pu == last) if d.pu != NO_UPDATE_ID else (d.U == last + 1)
            if not chained:
                return self._fail(BookResult.GAP, d)
        status = book.apply(d.bid_ticks, d.bid_qty, d.ask_ticks, d.ask_qty)
        if status == APPLY_BAD_QTY:
            return self._fail(BookResult.BAD_DIFF, None)
        book.last_update_id = d.u
        if status == APPLY_CROSSED and self.check_crossed:
            return self._fail(BookResult.CROSSED, None)
        self.counters.diffs_applied += 1
        if d.local_ts_ns >= 0:
            self.clock.on_update(d.local_ts_ns)
        return BookResult.APPLIED


# --------------------------------------------------------------------------- replay


class SnapshotSource(Protocol):
    """Where a resync snapshot comes from (the REST endpoint live; a reference replay in tests)."""

    def request(self, min_update_id: int) -> BookSnapshot | None:
        """A snapshot whose ``last_update_id >= min_update_id``, or None if unavailable now."""
        ...


def replay_into_builder(
    messages: Iterable[CaptureMessage],
    builder: BookBuilder,
    *,
    resync_source: SnapshotSource | None = None,
) -> Iterator[tuple[CaptureMessage, BookResult | None]]:
    """Drive ``builder`` with capture messages, yielding ``(message, result)`` per message.

    The file's own snapshot initialises the book. After a failure (gap, crossed, bad diff) the
    builder needs a fresh snapshot: ``resync_source.request(builder.last_seen_u)`` is asked once
    per diff while ``builder.needs_snapshot`` (live this is the REST call; a capture file holds
    only one snapshot, so tests pass a reference source).
    """
    for msg in messages:
        res = builder.on_message(msg)
        yield msg, res
        if (
            resync_source is not None
            and builder.needs_snapshot
            and builder.counters.syncs > 0
            and builder.buffered > 0
        ):
            snap = resync_source.request(builder.last_seen_u)
            if snap is not None:
                builder.on_snapshot(snap)
