"""Perpetual funding in backtests: every open position is settled at every funding time.

NautilusTrader 1.231's simulated venue applies no funding (its own `FundingRateUpdate` is strategy
data only). :class:`FundingModule` is a NautilusTrader `SimulationModule` (the hook its FX rollover
module uses): at the first engine step after a funding time it pays or charges each position
held at that time (every fill stamped at or before it) ``-signed_qty x mark x rate`` (a positive rate: longs pay shorts, as on
Binance) through `SimulatedExchange.adjust_account`, so the account balance, the equity curve,
the drawdown reading, ROI and GGR carry it. The mark is the venue book's mid at that step (the
last bar's close on bar data, the touch on ticks).

The funding times and rates come from the catalog's ``funding`` dataset. A funding time the data
does not hold (a gap in a symbol's series, the run reaching past its last row, or a symbol with no
funding rows: then the venue's default grid, every ``funding_interval_hours`` from 00:00 UTC) is
not guessed: a position held then is counted ``funding_missing``, logged and listed in the report.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money

__all__ = ["FundingEvent", "FundingModule", "FundingSeries", "funding_events", "load_funding"]

log = logging.getLogger(__name__)

NS_PER_HOUR = 3_600_000_000_000
_LISTED = 20  # missing settlements named in the report (all are counted)
_NEVER = 2**63  # past every timestamp


@dataclass(frozen=True)
class FundingSeries:
    """One symbol's funding rows: times (ns, ascending, unique) and rates (plain fraction per interval)."""

    ts_ns: np.ndarray
    rate: np.ndarray


@dataclass(frozen=True)
class FundingEvent:
    """A funding time of one instrument; ``rate`` None: the grid expects one, the data has none."""

    ts_ns: int
    instrument_id: str
    rate: float | None


def load_funding(catalog, venue: str, symbols: Iterable[str], start_ns: int, end_ns: int,
                 interval_ns: int) -> dict[str, FundingSeries]:  # fmt: skip
    """Each symbol's funding rows from ``_CONTEXT`` intervals before ``start_ns`` to as many after
    ``end_ns`` (the grid around the run is told from the rows near it), from the catalog."""
    out: dict[str, FundingSeries] = {}
    pad = _CONTEXT * interval_ns
    for sym in symbols:
        t = catalog.read("funding", venue, sym, start_ns - pad, end_ns + pad + 1)
        ts = t.column("ts_ns").to_numpy().astype(np.int64)
        rate = np.array([float(x) for x in t.column("funding_rate").to_pylist()], dtype=np.float64)
        out[sym] = FundingSeries(ts, rate)
    return out


_CONTEXT = 3  # funding intervals of rows read on each side of a run
SAME_TIME_NS = 60_000_000_000  # rows closer than this are one funding time (the first row is kept)
MIN_INTERVAL_NS = 3_600_000_000_000  # no venue funds more often than hourly: a floor for the grid


def _normalised(s: FundingSeries) -> tuple[np.ndarray, np.ndarray]:
    """The rows in time order, rows of one funding time (< ``SAME_TIME_NS`` apart: Binance stamps
    some at +1 ms) merged to the first; rows with a non-finite time dropped."""
    ts = np.asarray(s.ts_ns, dtype=np.int64)
    rate = np.asarray(s.rate, dtype=np.float64)
    if ts.shape != rate.shape:
        raise ValueError(f"funding rows: {ts.size} times but {rate.size} rates")
    order = np.argsort(ts, kind="stable")
    ts, rate = ts[order], rate[order]
    if ts.size > 1:
        keep = np.ones(ts.size, dtype=bool)
        last = ts[0]
        for k in range(1, ts.size):
            if ts[k] - last < SAME_TIME_NS:
                keep[k] = False
            else:
                last = ts[k]
        ts, rate = ts[keep], rate[keep]
    return ts, rate


def _local_interval(gaps: np.ndarray, k: int, default_ns: int) -> int:
    """The funding interval around gap ``k`` (between rows k and k + 1; k = -1 before the first row,
    k = gaps.size after the last): the shortest spacing of the rows within two gaps of it, capped by
    the default interval (Binance's longest is 8 hours: rows 16 h apart are a missing row, not a
    16-hour symbol), never below ``MIN_INTERVAL_NS``. Shortest, so that a missing row is never
    hidden; at a change of interval (Binance moves symbols between 8, 4 and 1 hours) the longer
    stretch's last two gaps may count times that were not due as missing (counted, never
    settled at a guessed rate)."""
    lo, hi = max(0, k - 2), min(gaps.size, k + 3)
    step = min(int(gaps[lo:hi].min()), default_ns) if hi > lo else default_ns
    return max(step, MIN_INTERVAL_NS)


def funding_events(
    series: Mapping[str, FundingSeries], instrument_ids: Mapping[str, str], start_ns: int, end_ns: int,
    default_interval_ns: int,
) -> list[FundingEvent]:
    """Every funding time in ``[start_ns, end_ns)`` of each symbol, in time order (a funding time
    at the run's last data point has nothing after it to be settled at).

    A row is an event with its rate (rows of one funding time merged: ``_normalised``). Where the
    rows leave a gap, the symbol's own grid (``_local_interval``: the spacing of the rows around
    it) gives events without a rate: between rows, before the first and after the last. A symbol
    without rows gets the default grid (multiples of ``default_interval_ns`` since the epoch:
    Binance's 00:00 / 08:00 / 16:00 UTC at 8 hours), all without a rate. ``instrument_ids`` maps
    symbol -> instrument id string.
    """
    if default_interval_ns < MIN_INTERVAL_NS:
        raise ValueError(f"default_interval_ns must be >= {MIN_INTERVAL_NS} (1 h), got {default_interval_ns}")
    events: list[FundingEvent] = []
    for sym, iid in instrument_ids.items():
        s = series.get(sym)
        ts, rates = _normalised(s) if s is not None else (np.empty(0, dtype=np.int64), np.empty(0))
        if ts.size == 0:
            step = default_interval_ns
            g = -(-start_ns // step) * step
            while g < end_ns:
                events.append(FundingEvent(int(g), iid, None))
                g += step
            continue
        gaps = np.diff(ts)
        # before the first row, back along its grid
        step = _local_interval(gaps, -1, default_interval_ns)
        g = int(ts[0]) - step
        while g >= start_ns:
            if g < end_ns:
                events.append(FundingEvent(g, iid, None))
            g -= step
        for k in range(ts.size):
            t = int(ts[k])
            if start_ns <= t < end_ns:
                r = float(rates[k])
                events.append(FundingEvent(t, iid, r if math.isfinite(r) else None))
            # the grid up to the next row (past the last one: to the end of the run)
            step = _local_interval(gaps, k, default_interval_ns)
            nxt = int(ts[k + 1]) if k + 1 < ts.size else end_ns + step
            g = t + step
            while g < nxt - step // 2 and g < end_ns:
                if g >= start_ns:
                    events.append(FundingEvent(g, iid, None))
                g += step
    events.sort(key=lambda e: (e.ts_ns, e.instrument_id))
    return events


class FundingModule(SimulationModule):
    """Settles funding on the simulated venue's positions (see the module docstring).

    A funding time t is settled at the first engine step after it: before the venue processes
    the first data point stamped after t (``pre_process``), or at the first venue step after t
    (``process``: commands arriving then are drained before the modules run), whichever comes
    first. The position is the instrument's net quantity from every fill stamped at or before t
    (a bar is stamped with its close, so its fills count), and the mark the venue book's mid then
    (no data after t has moved it).

    Read after the run: ``total_usdt`` (net: received > 0, paid < 0), ``settlements`` (positions
    settled), ``missing`` (positions held at a funding time without a rate), ``unpriced``
    (positions held at a funding time with no price in the venue's book: not settled, counted),
    ``records`` (one tuple per settlement: ts_ns, instrument id, signed quantity, mark, rate,
    payment) and :meth:`summary` for the report.
    """

    def __init__(self, events: list[FundingEvent]) -> None:
        super().__init__(SimulationModuleConfig())
        self._events = sorted(events, key=lambda e: (e.ts_ns, e.instrument_id))
        self._i = 0
        self._next = self._events[0].ts_ns if self._events else _NEVER
        self._ids: dict[str, InstrumentId] = {}
        self.total_usdt = 0.0
        self.by_instrument: dict[str, float] = {}
        self.settlements = 0
        self.missing = 0
        self.unpriced = 0
        self.missing_at: list[tuple[str, int]] = []
        self.records: list[tuple[int, str, float, float, float, float]] = []

    def pre_process(self, data) -> None:
        if data.ts_init > self._next:
            self._settle_before(data.ts_init)

    def process(self, ts_now: int) -> None:
        if ts_now > self._next:
            self._settle_before(ts_now)

    def _settle_before(self, ts: int) -> None:
        events = self._events
        while self._i < len(events) and events[self._i].ts_ns < ts:
            self._settle(events[self._i])
            self._i += 1
        self._next = events[self._i].ts_ns if self._i < len(events) else _NEVER

    def _held(self, iid: InstrumentId, ts_ns: int) -> float:
        """The instrument's net position after every fill stamped at or before ``ts_ns``."""
        qty = 0.0
        for order in self.exchange.cache.orders(instrument_id=iid):
            if order.filled_qty.as_double() == 0.0:
                continue
            sign = 1.0 if order.side == OrderSide.BUY else -1.0
            for e in order.events:
                if isinstance(e, OrderFilled) and e.ts_event <= ts_ns:
                    qty += sign * e.last_qty.as_double()
        return qty

    def _settle(self, ev: FundingEvent) -> None:
        iid = self._ids.get(ev.instrument_id)
        if iid is None:
            iid = self._ids[ev.instrument_id] = InstrumentId.from_str(ev.instrument_id)
        exchange = self.exchange
        qty = self._held(iid, ev.ts_ns)
        if abs(qty) < 1e-12:
            return
        if ev.rate is None:
            self.missing += 1
            if len(self.missing_at) < _LISTED:
                self.missing_at.append((ev.instrument_id, ev.ts_ns))
            log.warning("funding at %d: no rate for %s in the data; the position held (%g) is not settled",
                        ev.ts_ns, ev.instrument_id, qty)
            return
        book = exchange.get_book(iid)
        mark = book.midpoint() if book is not None else None
        if mark is None:
            self.unpriced += 1
            log.warning("funding at %d: no price for %s in the venue's book; the position held is not settled",
                        ev.ts_ns, ev.instrument_id)
            return
        mark = float(mark)
        money = Money(-qty * mark * ev.rate, USDT)
        payment = money.as_double()
        self.settlements += 1
        self.records.append((ev.ts_ns, ev.instrument_id, qty, mark, ev.rate, payment))
        if payment != 0.0:
            exchange.adjust_account(money)
            self.total_usdt += payment
            self.by_instrument[ev.instrument_id] = self.by_instrument.get(ev.instrument_id, 0.0) + payment

    def log_diagnostics(self, logger) -> None:
        logger.info(f"funding: {self.settlements} settlements, net {self.total_usdt:+.2f} USDT, "
                    f"{self.missing} missing, {self.unpriced} unpriced")  # fmt: skip

    def reset(self) -> None:
        self._i = 0
        self._next = self._events[0].ts_ns if self._events else _NEVER
        self.total_usdt = 0.0
        self.by_instrument = {}
        self.settlements = self.missing = self.unpriced = 0
        self.missing_at = []
        self.records = []

    def summary(self) -> dict:
        """The report's funding keys (deterministic)."""
        from datetime import datetime, timezone

        return {
            "funding_usdt": self.total_usdt,
            "funding_settlements": self.settlements,
            "funding_missing": self.missing,
            "funding_missing_at": [
                [iid, datetime.fromtimestamp(ts / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")]
                for iid, ts in self.missing_at
            ],
            "funding_unpriced": self.unpriced,
            "funding_by_instrument": dict(sorted(self.by_instrument.items())),
        }
