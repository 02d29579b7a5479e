"""Hot-path decoder: a raw Binance depth-diff JSON payload (bytes) -> :class:`TickDiff`, in numba.

The general reader (:mod:`dolphin.data.binance_capture`) decodes every message kind into typed
objects with the original strings, which is what ingestion wants. The live book only needs the
update ids and the levels in ticks, so this module scans the payload bytes once: it finds the
``"U":``, ``"u":``, ``"pu":`` (futures) and ``"E":`` fields and the ``"b":[...]`` / ``"a":[...]``
level arrays, and parses prices to exact integer ticks and quantities to float64 (same rules as
:func:`dolphin.alpha.ticks.parse_levels`). Binance sends compact JSON (no whitespace); key order
does not matter. Anything unexpected raises :class:`RawDepthError` (the caller counts it; the book
then sees a gap and resyncs).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dolphin.alpha.book import TickDiff
from dolphin.alpha.ticks import _POW10, TickGrid
from dolphin.data.binance_capture import NO_TS, NO_UPDATE_ID

__all__ = ["RawDepthError", "depth_diff_from_bytes"]

OK = 0
E_MISSING_FIELD = 1
E_BAD_NUMBER = 2
E_BAD_LEVELS = 3
E_OFF_GRID = 4
E_BAD_PRICE = 5

_MESSAGES = {
    E_MISSING_FIELD: "a required field (U, u, b, a) is missing",
    E_BAD_NUMBER: "an update id or time is not an integer",
    E_BAD_LEVELS: "a level array is malformed",
    E_OFF_GRID: "a price is off the tick grid or too long",
    E_BAD_PRICE: "a price is not > 0",
}


class RawDepthError(ValueError):
    """The payload is not a depth diff this decoder understands."""


@njit(cache=True, nogil=True)
def _find(buf: np.ndarray, pat: np.ndarray, start: int) -> int:
    n = buf.shape[0]
    m = pat.shape[0]
    for i in range(start, n - m + 1):
        ok = True
        for j in range(m):
            if buf[i + j] != pat[j]:
                ok = False
                break
        if ok:
            return i + m
    return -1


@njit(cache=True, nogil=True)
def _int_at(buf: np.ndarray, i: int) -> tuple[int, int]:
    """Parse a non-negative JSON integer at i; returns (value, next index) or (-1, -1)."""
    n = buf.shape[0]
    v = 0
    start = i
    while i < n and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        i += 1
    if i == start or i - start > 18:
        return -1, -1
    return v, i


@njit(cache=True, nogil=True)
def _count_levels(buf: np.ndarray, i: int) -> tuple[int, int]:
    """At the '[' opening a level array: (number of levels, index of its closing ']'), or (-1, -1)."""
    n = buf.shape[0]
    if i >= n or buf[i] != 91:
        return -1, -1
    count = 0
    depth = 1
    i += 1
    while i < n:
        c = buf[i]
        if c == 91:
            depth += 1
            if depth == 2:
                count += 1
        elif c == 93:
            depth -= 1
            if depth == 0:
                return count, i
        i += 1
    return -1, -1


@njit(cache=True, nogil=True)
def _levels_at(
    buf: np.ndarray, i: int, end: int, n_levels: int, decimals: int, tick_units: int, pow10: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Parse ``[["p","q"],...]`` from the outer '[' at ``i`` to its ']' at ``end`` (every read is
    bounds-checked against ``end``)."""
    ticks = np.empty(n_levels, dtype=np.int64)
    qty = np.empty(n_levels, dtype=np.float64)
    i += 1  # outer '['
    for lvl in range(n_levels):
        if lvl > 0:
            if i >= end or buf[i] != 44:  # ','
                return ticks, qty, E_BAD_LEVELS
            i += 1
        if i + 1 >= end or buf[i] != 91 or buf[i + 1] != 34:  # '["'
            return ticks, qty, E_BAD_LEVELS
        i += 2
        units = 0
        frac = -1
        digits = 0
        while True:
            if i >= end:
                return ticks, qty, E_BAD_LEVELS
            c = buf[i]
            if c == 34:
                break
            if c == 46:
                if frac >= 0:
                    return ticks, qty, E_BAD_LEVELS
                frac = 0
            elif 48 <= c <= 57:
                if frac >= decimals:
                    if c != 48:
                        return ticks, qty, E_OFF_GRID
                else:
                    units = units * 10 + (c - 48)
                    digits += 1
                    if digits > 17:
                        return ticks, qty, E_OFF_GRID
                    if frac >= 0:
                        frac += 1
            else:
                return ticks, qty, E_BAD_LEVELS
            i += 1
        if digits == 0:
            return ticks, qty, E_BAD_LEVELS
        if frac < 0:
            frac = 0
        if digits + decimals - frac > 18:  # scaled, it could pass int64 (review 2026-12-06: it wrapped)
            return ticks, qty, E_OFF_GRID
        for _ in range(frac, decimals):
            units *= 10
        if units == 0:  # a price must be > 0
            return ticks, qty, E_BAD_PRICE
        if units % tick_units != 0:
            return ticks, qty, E_OFF_GRID
        ticks[lvl] = units // tick_units
        if i + 2 >= end or buf[i + 1] != 44 or buf[i + 2] != 34:  # '","'
            return ticks, qty, E_BAD_LEVELS
        i += 3
        mant = 0
        k = -1
        nd = 0
        any_digit = False
        while True:
            if i >= end:
                return ticks, qty, E_BAD_LEVELS
            c = buf[i]
            if c == 34:
                break
            if c == 46:
                if k >= 0:
                    return ticks, qty, E_BAD_LEVELS
                k = 0
            elif 48 <= c <= 57:
                any_digit = True
                if not (mant == 0 and c == 48):
                    nd += 1
                mant = mant * 10 + (c - 48)
                if nd > 17 or k >= 22:
                    return ticks, qty, E_BAD_LEVELS
                if k >= 0:
                    k += 1
            else:
                return ticks, qty, E_BAD_LEVELS
            i += 1
        if not any_digit:
            return ticks, qty, E_BAD_LEVELS
        if k < 0:
            k = 0
        qty[lvl] = mant / pow10[k]
        i += 1  # closing quote
        if i >= end or buf[i] != 93:  # Binance sends exactly two strings per level
            return ticks, qty, E_BAD_LEVELS
        i += 1
    if i != end:
        return ticks, qty, E_BAD_LEVELS
    return ticks, qty, OK


_P_UU = np.frombuffer(b'"U":', dtype=np.uint8)
_P_U = np.frombuffer(b'"u":', dtype=np.uint8)
_P_PU = np.frombuffer(b'"pu":', dtype=np.uint8)
_P_E = np.frombuffer(b'"E":', dtype=np.uint8)
_P_B = np.frombuffer(b'"b":', dtype=np.uint8)
_P_A = np.frombuffer(b'"a":', dtype=np.uint8)


@njit(cache=True, nogil=True)
def _decode(buf, p_uu, p_u, p_pu, p_e, p_b, p_a, decimals, tick_units, pow10):
    ids = np.full(4, -1, dtype=np.int64)  # U, u, pu, E(ms)
    empty_i = np.empty(0, dtype=np.int64)
    empty_f = np.empty(0, dtype=np.float64)
    pats = (p_uu, p_u, p_pu, p_e)
    for f in range(4):
        j = _find(buf, pats[f], 0)
        if j < 0:
            if f < 2:
                return ids, empty_i, empty_f, empty_i, empty_f, E_MISSING_FIELD
            continue
        v, _ = _int_at(buf, j)
        if v < 0:
            return ids, empty_i, empty_f, empty_i, empty_f, E_BAD_NUMBER
        ids[f] = v
    jb = _find(buf, p_b, 0)
    ja = _find(buf, p_a, 0)
    if jb < 0 or ja < 0:
        return ids, empty_i, empty_f, empty_i, empty_f, E_MISSING_FIELD
    nb, eb = _count_levels(buf, jb)
    na, ea = _count_levels(buf, ja)
    if nb < 0 or na < 0:
        return ids, empty_i, empty_f, empty_i, empty_f, E_BAD_LEVELS
    bt, bq, st = _levels_at(buf, jb, eb, nb, decimals, tick_units, pow10)
    if st != OK:
        return ids, empty_i, empty_f, empty_i, empty_f, st
    at, aq, st = _levels_at(buf, ja, ea, na, decimals, tick_units, pow10)
    if st != OK:
        return ids, empty_i, empty_f, empty_i, empty_f, st
    return ids, bt, bq, at, aq, OK


def depth_diff_from_bytes(payload: bytes, grid: TickGrid, local_ts_ns: int = -1) -> TickDiff:
    """Decode one raw depth-diff JSON payload (combined-stream envelope or bare event) to ticks.

    ``exchange_ts_ns`` comes from ``E`` (ms -> ns); ``pu`` is NO_UPDATE_ID when absent (spot).
    Raises :class:`RawDepthError` naming what was wrong.
    """
    buf = np.frombuffer(payload, dtype=np.uint8)
    ids, bt, bq, at, aq, st = _decode(
        buf, _P_UU, _P_U, _P_PU, _P_E, _P_B, _P_A, grid.decimals, grid.tick_units, _POW10
    )
    if st != OK:
        raise RawDepthError(f"depth diff not decodable: {_MESSAGES.get(st, st)}")
    e_ms = int(ids[3])
    return TickDiff(
        int(ids[0]),
        int(ids[1]),
        int(ids[2]) if ids[2] >= 0 else NO_UPDATE_ID,
        bt,
        bq,
        at,
        aq,
        local_ts_ns,
        e_ms * 1_000_000 if e_ms >= 0 else NO_TS,
    )
