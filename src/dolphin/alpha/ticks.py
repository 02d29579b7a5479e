"""Decimal price strings <-> integer ticks, and tick-size inference.

The book holds prices as integer ticks (``price / tick_size``) so that equality and ordering are
exact. A :class:`TickGrid` is ``tick_size = tick_units * 10**-decimals``; a price string is first
scaled to integer units of ``10**-decimals`` and then divided by ``tick_units`` (the remainder
must be zero, else the price is off the grid and rejected).

Conversion of many levels at once goes through float64 (``np.asarray(strings, float)``), then
``rint``: exact as long as ``price * 10**decimals < 2**52`` (e.g. 4.5e9 USDT at 6 decimals), which
:meth:`TickGrid.prices_to_ticks` checks; a string with non-zero digits beyond the grid's decimals
is rejected by an exact string check.

Tick size: Binance publishes it in ``exchangeInfo`` (PRICE_FILTER.tickSize); captures do not
carry it. :func:`infer_tick_grid` infers the FINEST decimal grid used by a sample of prices (a
snapshot has 2,000), i.e. ``10**-max_decimals``. That is a divisor of the true tick, so every
valid price is representable; configure the exact tick in :class:`dolphin.alpha.config.BookConfig`
when known.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterable, Sequence

import numpy as np
from numba import njit

__all__ = ["OffGridPriceError", "TickGrid", "decimals_of", "infer_tick_grid", "parse_levels"]

_MAX_EXACT_UNITS = float(2**52)


class OffGridPriceError(ValueError):
    """A price is not a whole number of ticks, or too large to convert exactly."""


def decimals_of(price: str) -> int:
    """Number of significant decimals of a decimal string (trailing zeros ignored): '61800.20' -> 1."""
    _, dot, frac = price.partition(".")
    return len(frac.rstrip("0")) if dot else 0


class TickGrid:
    """Integer tick grid ``tick_size = tick_units * 10**-decimals``.

    >>> g = TickGrid.from_tick_size("0.10")
    >>> g.price_to_ticks("61800.20"), g.ticks_to_price(618002)
    (618002, Decimal('61800.2'))
    """

    __slots__ = ("decimals", "tick_units", "tick_size", "_scale")

    def __init__(self, decimals: int, tick_units: int = 1) -> None:
        if decimals < 0 or decimals > 12:
            raise ValueError(f"decimals must be in [0, 12], got {decimals}")
        if tick_units < 1:
            raise ValueError(f"tick_units must be >= 1, got {tick_units}")
        self.decimals = decimals
        self.tick_units = tick_units
        self.tick_size = float(Decimal(tick_units).scaleb(-decimals))
        self._scale = float(10**decimals)

    @classmethod
    def from_tick_size(cls, tick_size: str) -> "TickGrid":
        """Grid for an exact tick size given as a decimal string (e.g. ``"0.10"``, ``"0.5"``, ``"5"``)."""
        d = Decimal(tick_size).normalize()
        if d <= 0:
            raise ValueError(f"tick size must be > 0, got {tick_size!r}")
        exp = -d.as_tuple().exponent  # type: ignore[operator]
        decimals = max(0, exp)
        units = int(d.scaleb(decimals))
        return cls(decimals, units)

    def __repr__(self) -> str:
        return f"TickGrid(decimals={self.decimals}, tick_units={self.tick_units}, tick_size={self.tick_size!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TickGrid) and (self.decimals, self.tick_units) == (other.decimals, other.tick_units)

    def __hash__(self) -> int:
        return hash((self.decimals, self.tick_units))

    def price_to_ticks(self, price: str) -> int:
        """Exact conversion of one decimal string to integer ticks (string arithmetic, no floats)."""
        whole, dot, frac = price.strip().partition(".")
        frac = frac.rstrip("0")
        if len(frac) > self.decimals:
            raise OffGridPriceError(f"price {price!r} has more decimals than the grid {self!r}")
        neg = whole.startswith("-")
        units = int((whole.lstrip("-") or "0") + frac.ljust(self.decimals, "0"))
        q, r = divmod(units, self.tick_units)
        if r:
            raise OffGridPriceError(f"price {price!r} is not a multiple of the tick {self.tick_size}")
        return -q if neg else q

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Exact decimal price of an integer tick count."""
        return Decimal(int(ticks) * self.tick_units).scaleb(-self.decimals)

    def prices_to_ticks(self, prices: Sequence[str]) -> np.ndarray:
        """Vectorised conversion of decimal strings to int64 ticks; raises :class:`OffGridPriceError`."""
        if len(prices) == 0:
            return np.empty(0, dtype=np.int64)
        try:
            x = np.asarray(prices, dtype=np.float64) * self._scale
        except ValueError as exc:
            raise OffGridPriceError(f"unparseable price in {list(prices)[:3]}...: {exc}") from None
        units = np.rint(x)
        if not np.all(np.isfinite(x)) or np.any(np.abs(units) >= _MAX_EXACT_UNITS):
            raise OffGridPriceError("price not finite or too large for exact tick conversion")
        dec = self.decimals
        for p in prices:  # exact check of the decimals beyond the grid (float residuals cannot see 1e-7)
            frac = p.partition(".")[2]
            if len(frac) > dec and frac[dec:].strip("0"):
                raise OffGridPriceError(f"price {p!r} is finer than the grid {self!r}")
        iu = units.astype(np.int64)
        if self.tick_units != 1:
            q, r = np.divmod(iu, self.tick_units)
            if np.any(r):
                raise OffGridPriceError(f"price not a multiple of tick {self.tick_size}")
            return q
        return iu


def infer_tick_grid(prices: Iterable[str]) -> TickGrid:
    """The finest decimal grid used by ``prices``: ``10**-max(decimals)`` (see module docstring)."""
    d = 0
    seen = False
    for p in prices:
        seen = True
        d = max(d, decimals_of(p))
    if not seen:
        raise ValueError("cannot infer a tick grid from no prices")
    return TickGrid(d, 1)


# --------------------------------------------------------------------------- fast level parsing

_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)

_TICKS_MAX = 2**63  # a tick count must fit int64
PARSE_OK = 0
PARSE_OFF_GRID = 1
PARSE_BAD_CHAR = 2
PARSE_TOO_LONG = 3
PARSE_NON_POSITIVE = 4
_DECIMAL = re.compile(r"(?=[0-9]*\.?[0-9])[0-9]*\.?[0-9]*")  # "12", "1.5", ".5", "5."


@njit(cache=True, nogil=True)
def _parse_levels(
    buf: np.ndarray, n_levels: int, decimals: int, tick_units: int, pow10: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Parse ``b"p1 q1 p2 q2 ..."`` (ASCII decimals) into int64 ticks and float64 quantities.

    Returns ``(ticks, qty, status, bad_index)``. Prices are exact integers of 10**-decimals units
    divided by ``tick_units``; quantities are ``mantissa / 10**k`` (correctly rounded for
    mantissas < 2**53 and k <= 22).
    """
    ticks = np.empty(n_levels, dtype=np.int64)
    qty = np.empty(n_levels, dtype=np.float64)
    i = 0
    n = buf.shape[0]
    for lvl in range(n_levels):
        # ---- price
        units = 0
        frac = -1  # digits after '.', -1 before the dot
        digits = 0
        while i < n and buf[i] != 32:
            c = buf[i]
            if c == 46:  # '.'
                if frac >= 0:
                    return ticks, qty, PARSE_BAD_CHAR, lvl
                frac = 0
            elif 48 <= c <= 57:
                if frac >= decimals:
                    if c != 48:
                        return ticks, qty, PARSE_OFF_GRID, lvl
                else:
                    units = units * 10 + (c - 48)
                    digits += 1
                    if digits > 17:
                        return ticks, qty, PARSE_TOO_LONG, lvl
                    if frac >= 0:
                        frac += 1
            else:
                return ticks, qty, PARSE_BAD_CHAR, lvl
            i += 1
        if digits == 0:
            return ticks, qty, PARSE_BAD_CHAR, lvl
        if frac < 0:
            frac = 0
        if digits + decimals - frac > 18:  # scaled, it could pass int64 (review 2026-12-06: it wrapped)
            return ticks, qty, PARSE_TOO_LONG, lvl
        for _ in range(frac, decimals):
            units *= 10
        if units == 0:  # a price must be > 0 (no sign is accepted, so units >= 0)
            return ticks, qty, PARSE_NON_POSITIVE, lvl
        if units % tick_units != 0:
            return ticks, qty, PARSE_OFF_GRID, lvl
        ticks[lvl] = units // tick_units
        i += 1  # space
        # ---- quantity
        mant = 0
        k = -1
        digits = 0
        any_digit = False
        while i < n and buf[i] != 32:
            c = buf[i]
            if c == 46:
                if k >= 0:
                    return ticks, qty, PARSE_BAD_CHAR, lvl
                k = 0
            elif 48 <= c <= 57:
                any_digit = True
                if mant == 0 and c == 48:
                    pass  # leading zeros do not count towards the 17-digit limit
                else:
                    digits += 1
                mant = mant * 10 + (c - 48)
                if digits > 17 or (k >= 0 and k >= 22):
                    return ticks, qty, PARSE_TOO_LONG, lvl
                if k >= 0:
                    k += 1
            else:
                return ticks, qty, PARSE_BAD_CHAR, lvl
            i += 1
        if not any_digit:
            return ticks, qty, PARSE_BAD_CHAR, lvl
        if k < 0:
            k = 0
        qty[lvl] = mant / pow10[k]
        i += 1
    return ticks, qty, PARSE_OK, -1


def parse_levels(levels: Sequence[tuple[str, str]], grid: TickGrid) -> tuple[np.ndarray, np.ndarray]:
    """``[(price, qty), ...]`` decimal strings -> (int64 ticks, float64 qty), exact for prices.

    Raises :class:`OffGridPriceError` naming the offending level on an off-grid, malformed or
    non-positive (``"0"``) price or a malformed quantity.
    """
    n = len(levels)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    try:
        buf = np.frombuffer(" ".join(map(" ".join, levels)).encode("ascii"), dtype=np.uint8)
    except (UnicodeEncodeError, TypeError) as exc:
        raise OffGridPriceError(f"non-ASCII or non-string level: {exc}") from None
    ticks, qty, status, bad = _parse_levels(buf, n, grid.decimals, grid.tick_units, _POW10)
    if status == PARSE_TOO_LONG:  # rare: fall back to the exact slow path
        # (as strict as the fast path: plain ASCII decimals only; int() / float() alone would take
        # "1_0", "+1", "nan", "1e5" and raise ValueError, not a counted bad diff, on "1x")
        for lvl, (p, q) in enumerate(levels):
            if not (_DECIMAL.fullmatch(p) and _DECIMAL.fullmatch(q)):
                raise OffGridPriceError(f"level {lvl} {levels[lvl]!r} is malformed ({grid!r})")
        exact = [grid.price_to_ticks(p) for p, _ in levels]
        for lvl, t in enumerate(exact):
            if not 0 < t < _TICKS_MAX:
                raise OffGridPriceError(f"level {lvl} {levels[lvl]!r} is not > 0 or too large for int64 ticks ({grid!r})")
        ticks = np.array(exact, dtype=np.int64)
        qty = np.array([float(q) for _, q in levels], dtype=np.float64)
        if not np.all(np.isfinite(qty)):  # a run of digits past float64's range
            lvl = int(np.argmin(np.isfinite(qty)))
            raise OffGridPriceError(f"level {lvl} {levels[lvl]!r} has a quantity beyond float64 ({grid!r})")
        return ticks, qty
    if status != PARSE_OK:
        what = {PARSE_OFF_GRID: "off the tick grid", PARSE_NON_POSITIVE: "not > 0"}.get(status, "malformed")
        raise OffGridPriceError(f"level {bad} {levels[bad]!r} is {what} ({grid!r})")
    return ticks, qty
