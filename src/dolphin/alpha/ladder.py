"""One side of an L2 book as a chunked sorted array (numba kernels, no Python objects inside).

A side holds integer keys in ascending order with the BEST level LAST (bids: key = +ticks; asks:
key = -ticks). Levels live in fixed-size chunks (rows of ``CHUNK`` entries) chained in key order
through ``order``; ``firsts[i]`` is the first key of the i-th chunk in that order. A level update
is a binary search over chunk firsts plus one inside the chunk; an insert or delete shifts at most
``CHUNK`` entries (plus, rarely, the chunk order when a chunk splits or empties). This keeps an
update O(CHUNK + log n) whatever the depth of the level, where a flat sorted array costs O(n) moves
for a level far from its end.

Capacity: a side has ``rows`` chunks; an insert needs at most one free row (a split), so the
caller makes sure ``free_rows >= levels in the diff`` before a diff (see :meth:`Side.reserve`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CHUNK", "Side"]

CHUNK = 64
_HALF = CHUNK // 2

# meta layout
M_NCH = 0  # chunks in use
M_NLV = 1  # levels in the side
M_NFREE = 2  # free rows on the stack


@njit(cache=True, nogil=True)
def _find_chunk(firsts: np.ndarray, nch: int, k: int) -> int:
    lo = 0
    hi = nch
    while lo < hi:
        mid = (lo + hi) >> 1
        if firsts[mid] <= k:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1 if lo > 0 else 0


@njit(cache=True, nogil=True)
def side_set(
    keys: np.ndarray,
    qty: np.ndarray,
    cnt: np.ndarray,
    order: np.ndarray,
    firsts: np.ndarray,
    free: np.ndarray,
    meta: np.ndarray,
    k: int,
    q: float,
) -> None:
    """Set level ``k`` to quantity ``q`` (q <= 0 deletes). Needs one free row for a possible split."""
    nch = meta[M_NCH]
    if nch == 0:
        if q <= 0.0:
            return
        meta[M_NFREE] -= 1
        row = free[meta[M_NFREE]]
        order[0] = row
        cnt[row] = 1
        keys[row, 0] = k
        qty[row, 0] = q
        firsts[0] = k
        meta[M_NCH] = 1
        meta[M_NLV] += 1
        return
    i = _find_chunk(firsts, nch, k)
    row = order[i]
    c = cnt[row]
    lo = 0
    hi = c
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[row, mid] < k:
            lo = mid + 1
        else:
            hi = mid
    pos = lo
    if pos < c and keys[row, pos] == k:
        if q > 0.0:
            qty[row, pos] = q
            return
        for j in range(pos, c - 1):
            keys[row, j] = keys[row, j + 1]
            qty[row, j] = qty[row, j + 1]
        cnt[row] = c - 1
        meta[M_NLV] -= 1
        if c - 1 == 0:
            for j in range(i, nch - 1):
                order[j] = order[j + 1]
                firsts[j] = firsts[j + 1]
            meta[M_NCH] = nch - 1
            free[meta[M_NFREE]] = row
            meta[M_NFREE] += 1
        elif pos == 0:
            firsts[i] = keys[row, 0]
        return
    if q <= 0.0:
        return
    if c == CHUNK:
        meta[M_NFREE] -= 1
        new = free[meta[M_NFREE]]
        for j in range(_HALF, CHUNK):
            keys[new, j - _HALF] = keys[row, j]
            qty[new, j - _HALF] = qty[row, j]
        cnt[new] = CHUNK - _HALF
        cnt[row] = _HALF
        for j in range(nch, i + 1, -1):
            order[j] = order[j - 1]
            firsts[j] = firsts[j - 1]
        order[i + 1] = new
        firsts[i + 1] = keys[new, 0]
        meta[M_NCH] = nch + 1
        if pos > _HALF:
            row = new
            pos -= _HALF
            i += 1
        c = cnt[row]
    for j in range(c, pos, -1):
        keys[row, j] = keys[row, j - 1]
        qty[row, j] = qty[row, j - 1]
    keys[row, pos] = k
    qty[row, pos] = q
    cnt[row] = c + 1
    meta[M_NLV] += 1
    if pos == 0:
        firsts[i] = k


@njit(cache=True, nogil=True)
def side_top(
    keys: np.ndarray,
    qty: np.ndarray,
    cnt: np.ndarray,
    order: np.ndarray,
    meta: np.ndarray,
    n: int,
    out_keys: np.ndarray,
    out_qty: np.ndarray,
) -> int:
    """Copy up to ``n`` levels best-first into the outputs; returns how many were copied."""
    m = 0
    i = meta[M_NCH] - 1
    while i >= 0 and m < n:
        row = order[i]
        j = cnt[row] - 1
        while j >= 0 and m < n:
            out_keys[m] = keys[row, j]
            out_qty[m] = qty[row, j]
            m += 1
            j -= 1
        i -= 1
    return m


@njit(cache=True, nogil=True)
def side_depth_within(
    keys: np.ndarray,
    qty: np.ndarray,
    cnt: np.ndarray,
    order: np.ndarray,
    meta: np.ndarray,
    sign: int,
    mid_ticks: float,
    within_bps: float,
    tick_size: float,
) -> float:
    """Quote notional of the levels within ``within_bps`` of ``mid_ticks`` (tick = sign * key)."""
    if mid_ticks <= 0.0:
        return 0.0
    limit = within_bps * 1e-4 * mid_ticks
    total = 0.0
    i = meta[M_NCH] - 1
    while i >= 0:
        row = order[i]
        j = cnt[row] - 1
        while j >= 0:
            t = sign * keys[row, j]
            if abs(t - mid_ticks) > limit:
                return total
            total += qty[row, j] * t * tick_size
            j -= 1
        i -= 1
    return total


@njit(cache=True, nogil=True)
def side_best(keys: np.ndarray, cnt: np.ndarray, order: np.ndarray, meta: np.ndarray) -> int:
    """Best key (the last one); caller checks the side is not empty."""
    row = order[meta[M_NCH] - 1]
    return keys[row, cnt[row] - 1]


class Side:
    """Python handle of one side's arrays (the kernels above do the work)."""

    __slots__ = ("keys", "qty", "cnt", "order", "firsts", "free", "meta", "sign")

    def __init__(self, sign: int, rows: int = 128) -> None:
        self.sign = sign
        self._alloc(rows)

    def _alloc(self, rows: int) -> None:
        self.keys = np.zeros((rows, CHUNK), dtype=np.int64)
        self.qty = np.zeros((rows, CHUNK), dtype=np.float64)
        self.cnt = np.zeros(rows, dtype=np.int64)
        self.order = np.zeros(rows, dtype=np.int64)
        self.firsts = np.zeros(rows, dtype=np.int64)
        self.free = np.arange(rows - 1, -1, -1, dtype=np.int64)
        self.meta = np.array([0, 0, rows], dtype=np.int64)

    @property
    def n_levels(self) -> int:
        return int(self.meta[M_NLV])

    @property
    def free_rows(self) -> int:
        return int(self.meta[M_NFREE])

    def clear(self) -> None:
        rows = self.cnt.shape[0]
        self.free[:] = np.arange(rows - 1, -1, -1)
        self.meta[:] = (0, 0, rows)

    def reserve(self, free_rows: int) -> None:
        """Grow (doubling) until at least ``free_rows`` chunks are free."""
        if self.meta[M_NFREE] >= free_rows:
            return
        old_rows = self.cnt.shape[0]
        rows = max(2 * old_rows, old_rows + free_rows)
        keys, qty, cnt = self.keys, self.qty, self.cnt
        self.keys = np.zeros((rows, CHUNK), dtype=np.int64)
        self.qty = np.zeros((rows, CHUNK), dtype=np.float64)
        self.cnt = np.zeros(rows, dtype=np.int64)
        self.keys[:old_rows] = keys
        self.qty[:old_rows] = qty
        self.cnt[:old_rows] = cnt
        self.order = np.resize(self.order, rows)
        self.firsts = np.resize(self.firsts, rows)
        nfree = int(self.meta[M_NFREE])
        free = np.empty(rows, dtype=np.int64)
        free[:nfree] = self.free[:nfree]
        added = np.arange(rows - 1, old_rows - 1, -1, dtype=np.int64)
        free[nfree : nfree + added.shape[0]] = added
        self.free = free
        self.meta[M_NFREE] = nfree + added.shape[0]

    def load_sorted(self, keys: np.ndarray, qty: np.ndarray) -> None:
        """Replace the side by ascending ``keys`` (unique) with quantities, half-filling chunks."""
        n = keys.shape[0]
        need = (n + _HALF - 1) // _HALF
        self.clear()
        self.reserve(need + 16)
        self.clear()
        rows = self.cnt.shape[0]
        for i in range(need):
            row = i  # the free stack hands out rows 0, 1, 2, ... first
            lo = i * _HALF
            hi = min(n, lo + _HALF)
            self.keys[row, : hi - lo] = keys[lo:hi]
            self.qty[row, : hi - lo] = qty[lo:hi]
            self.cnt[row] = hi - lo
            self.order[i] = row
            self.firsts[i] = keys[lo]
        self.meta[M_NCH] = need
        self.meta[M_NLV] = n
        self.meta[M_NFREE] = rows - need

    def levels(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best-first (keys, qty) copies of up to ``n`` levels."""
        m = self.n_levels if n is None else min(n, self.n_levels)
        ok = np.empty(m, dtype=np.int64)
        oq = np.empty(m, dtype=np.float64)
        got = side_top(self.keys, self.qty, self.cnt, self.order, self.meta, m, ok, oq)
        return ok[:got], oq[:got]
