"""AlphaBetSizer and the order gate: the hot path between a signal and an order.

notional = capital x base_fraction x R_total x posture leverage ceiling, bounded by the venue
(maximum notional, maximum leverage, minimum notional). The same ceiling bounds the account:
``gross_allowance`` = capital x R_total x posture leverage ceiling (at most the venue's maximum
leverage) is what all positions and working entries together may hold, so N instruments cannot
reach N times the posture's leverage (found in review 2026-12-06). The controller keeps
``exposure = R_total x ceiling`` current, so a sizing call is a handful of float operations.
A denial returns 0.0 and writes an event with the reason; it never raises. Capital must be a
finite positive number (at most ``MAX_CAPITAL``) and the exposure a finite non-negative one: anything else is denied, so
the result is always 0.0 or a finite notional within the venue's bounds.
"""

from __future__ import annotations

from enum import IntEnum

from dolphin.survival.clock import Clock
from dolphin.survival.config import SizerConfig
from dolphin.survival.controller import SurvivalController
from dolphin.survival.events import Event, EventLog
from dolphin.survival.posture import OrderKind, Verdict, gate_verdict

__all__ = ["MAX_CAPITAL", "AlphaBetSizer", "Denial"]

_ENTRY = int(OrderKind.ENTRY)
_INF = float("inf")
# More capital than any account holds (10^15 in the quote currency): a larger number is a unit or
# scale error, and would otherwise size the venue's maximum order.
MAX_CAPITAL = 1e15


class Denial(IntEnum):
    """Why a sizing call or an order was refused (values 1-4 are the gate's Verdicts)."""

    KILLED = int(Verdict.DENY_KILLED)
    HIBERNATE = int(Verdict.DENY_HIBERNATE)
    EXIT_ONLY = int(Verdict.DENY_EXIT_ONLY)
    LIMIT_ONLY = int(Verdict.DENY_LIMIT_ONLY)
    BAD_CAPITAL = 10
    BELOW_VENUE_MIN = 11
    BAD_EXPOSURE = 12


_TEXT = {
    Denial.KILLED: "kill latched after an invariant violation",
    Denial.HIBERNATE: "posture HIBERNATE: no new orders",
    Denial.EXIT_ONLY: "posture TURTLE: exit-only",
    Denial.LIMIT_ONLY: "posture STALKER: limit-only, no taker entries",
    Denial.BAD_CAPITAL: "capital is not a finite positive number (at most MAX_CAPITAL = 1e15)",
    Denial.BELOW_VENUE_MIN: "notional below the venue minimum",
    Denial.BAD_EXPOSURE: "exposure (R_total x leverage ceiling) is not a finite non-negative number",
}


class AlphaBetSizer:
    """Sizes entries and gates orders from the controller's current R_total and posture."""

    __slots__ = ("_ctl", "_base", "_min", "_max", "_max_lev", "_log", "_clock", "denials", "last_denial")

    def __init__(self, cfg: SizerConfig, controller: SurvivalController, clock: Clock, log: EventLog | None = None) -> None:
        self._ctl = controller
        self._base = float(cfg.base_fraction)
        self._min = float(cfg.venue_min_notional)
        self._max = float(cfg.venue_max_notional)
        self._max_lev = float(cfg.venue_max_leverage)
        self._log = log if log is not None else controller.log
        self._clock = clock
        self.denials = 0
        self.last_denial = 0

    def size_entry(self, capital: float, taker: bool = False) -> float:
        """Entry notional in quote currency, or 0.0 on a denial (an event says why)."""
        c = self._ctl
        v = gate_verdict(c.posture, c.killed, _ENTRY, taker)
        if v:
            return self._deny(v, capital)
        if not 0.0 < capital <= MAX_CAPITAL:  # NaN, <= 0, inf and absurd sizes fail
            return self._deny(Denial.BAD_CAPITAL, capital)
        e = c.exposure
        if not 0.0 <= e < _INF:
            return self._deny(Denial.BAD_EXPOSURE, e)
        n = capital * self._base * e  # may overflow to inf: bounded by the venue maximum below
        lev_cap = capital * self._max_lev
        if n > lev_cap:
            n = lev_cap
        if n > self._max:
            n = self._max
        if n < self._min:
            return self._deny(Denial.BELOW_VENUE_MIN, n)
        return n

    def gross_allowance(self, capital: float) -> float:
        """Gross notional all positions and working entries together may hold: capital x R_total x
        posture leverage ceiling, at most capital x the venue's maximum leverage; 0.0 where an
        entry would be denied (posture, kill, capital, exposure). Not an event: ``size_entry``
        reports the denial."""
        c = self._ctl
        if gate_verdict(c.posture, c.killed, _ENTRY, False) or not 0.0 < capital <= MAX_CAPITAL:
            return 0.0
        e = c.exposure
        if not 0.0 <= e < _INF:
            return 0.0
        return capital * min(e, self._max_lev)

    def check(self, kind: OrderKind, taker: bool = False) -> bool:
        """The order gate: may this order go out now? A refusal is an event."""
        v = gate_verdict(self._ctl.posture, self._ctl.killed, kind, taker)
        if v:
            self._deny(v, float(kind))
            return False
        return True

    def _deny(self, code: int, value: float) -> float:
        self.denials += 1
        self.last_denial = code
        self._log.emit(
            Event(ts_ns=self._clock.now_ns(), kind="denial", subject="sizer", new=Denial(code).name,
                  reason=_TEXT[Denial(code)], r_total=self._ctl.r_total, value=value)
        )
        return 0.0
