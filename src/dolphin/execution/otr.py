"""The OTR governor: order rate and order-to-trade ratio kept under the venue's limits.

NautilusTrader's RiskEngine gates submits and modifies but never cancels, so dolphin keeps
its own budget over every order message (submit, amend, cancel) against fills.

Budget rule ("controlled order flooding"): in every rate window and in the OTR window,

    messages_in_window + reserved_cancels + cost <= limit

where a submit costs 2 (itself plus a reserved token for its own later cancel), an amend 1,
and a cancel 0 (it spends the reservation its submit made). So bursts may use the whole
budget, cancels of live orders are never denied, and the message count never exceeds the
limit. Entries may use only `entry_budget_frac` of each limit; exits use the rest.

Caveat, kept visible: the OTR limit is max_otr x max(1, fills in window); if fills age out
of the window while reserved cancels are still open, a forced cancel can push the ratio
over. Such cancels are still sent (safety first) and counted as `forced_over_budget`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from dolphin.execution.config import OtrLimits

__all__ = ["Denial", "DenialReason", "OtrGovernor"]

NS_PER_MS = 1_000_000


class DenialReason(str, Enum):
    RATE_LIMIT = "rate_limit"
    OTR_LIMIT = "otr_limit"


@dataclass(frozen=True, slots=True)
class Denial:
    """A refused order message: which limit, its value, and when."""

    reason: DenialReason
    kind: str  # "submit" | "amend"
    ts_ns: int
    window_ms: int
    used: int
    limit: float
    entry: bool


@dataclass
class OtrCounters:
    submits: int = 0
    amends: int = 0
    cancels: int = 0
    fills: int = 0  # orders with a fill (each order once): the OTR denominator
    fill_events: int = 0  # fill events (a partially filled order has several)
    reserves: int = 0  # cancel reservations re-made after a rejected cancel
    denials: int = 0
    denials_by_reason: dict[str, int] = field(default_factory=dict)
    forced_over_budget: int = 0
    max_rate_used_frac: float = 0.0
    max_otr_seen: float = 0.0


class OtrGovernor:
    """Token budget over submits, amends and cancels against fills (one per venue)."""

    def __init__(self, limits: OtrLimits) -> None:
        self.limits = limits
        self._rate = [(w.window_ms * NS_PER_MS, w.max_messages, deque()) for w in limits.rate_windows]
        self._otr_window_ns = limits.otr_window_ms * NS_PER_MS
        self._otr_msgs: deque[int] = deque()
        self._fills: deque[int] = deque()
        # Orders already counted as filled (their first fill; later partial fills add nothing).
        # Bounded: a key is forgotten when its order is released (closed) or its fill leaves the
        # OTR window.
        self._filled: dict[str, int] = {}
        self._reserved: set[str] = set()
        self.counters = OtrCounters()
        self.denials: list[Denial] = []

    # ------------------------------------------------------------------ queries

    @property
    def reserved(self) -> int:
        return len(self._reserved)

    def _prune(self, ts_ns: int) -> None:
        for window_ns, _, q in self._rate:
            edge = ts_ns - window_ns
            while q and q[0] <= edge:
                q.popleft()
        edge = ts_ns - self._otr_window_ns
        while self._otr_msgs and self._otr_msgs[0] <= edge:
            self._otr_msgs.popleft()
        while self._fills and self._fills[0] <= edge:
            self._fills.popleft()
        if self._filled:
            for k in [k for k, t in self._filled.items() if t <= edge]:
                del self._filled[k]

    def otr_now(self, ts_ns: int) -> float:
        """Messages / max(1, fills) in the OTR window ending at `ts_ns`."""
        self._prune(ts_ns)
        return len(self._otr_msgs) / max(1, len(self._fills))

    def _check(self, ts_ns: int, cost: int, kind: str, entry: bool) -> Denial | None:
        self._prune(ts_ns)
        frac = self.limits.entry_budget_frac if entry else 1.0
        res = len(self._reserved)
        for window_ns, max_msgs, q in self._rate:
            limit = max_msgs * frac
            if len(q) + res + cost > limit:
                return Denial(DenialReason.RATE_LIMIT, kind, ts_ns, window_ns // NS_PER_MS, len(q), limit, entry)
        otr_limit = self.limits.max_otr * max(1, len(self._fills)) * frac
        if len(self._otr_msgs) + res + cost > otr_limit:
            return Denial(
                DenialReason.OTR_LIMIT,
                kind,
                ts_ns,
                self._otr_window_ns // NS_PER_MS,
                len(self._otr_msgs),
                otr_limit,
                entry,
            )
        return None

    def _deny(self, d: Denial) -> Denial:
        c = self.counters
        c.denials += 1
        c.denials_by_reason[d.reason.value] = c.denials_by_reason.get(d.reason.value, 0) + 1
        self.denials.append(d)
        return d

    def _record_message(self, ts_ns: int) -> None:
        for _, max_msgs, q in self._rate:
            q.append(ts_ns)
            used = (len(q) + len(self._reserved)) / max_msgs
            if used > self.counters.max_rate_used_frac:
                self.counters.max_rate_used_frac = used
        self._otr_msgs.append(ts_ns)
        otr = len(self._otr_msgs) / max(1, len(self._fills))
        if otr > self.counters.max_otr_seen:
            self.counters.max_otr_seen = otr

    # ------------------------------------------------------------------ commands

    def try_submit(self, ts_ns: int, order_key: str, *, entry: bool) -> Denial | None:
        """Admit a submit (reserving its cancel) or return the denial."""
        denial = self._check(ts_ns, 2, "submit", entry)
        if denial is not None:
            return self._deny(denial)
        self._reserved.add(order_key)
        self._record_message(ts_ns)
        self.counters.submits += 1
        return None

    def try_amend(self, ts_ns: int, *, entry: bool) -> Denial | None:
        denial = self._check(ts_ns, 1, "amend", entry)
        if denial is not None:
            return self._deny(denial)
        self._record_message(ts_ns)
        self.counters.amends += 1
        return None

    def record_cancel(self, ts_ns: int, order_key: str) -> None:
        """A cancel is always sent; it spends the reservation its submit made."""
        self._prune(ts_ns)
        # Forced over budget (counted once per cancel): no reservation to spend, or the cancel takes
        # a rate window or the OTR window past its limit (fills that aged out of the OTR window
        # shrink that limit under the reserved cancels: the module docstring's caveat).
        over = order_key not in self._reserved
        self._reserved.discard(order_key)
        for _, max_msgs, q in self._rate:
            if len(q) + 1 > max_msgs:
                over = True
        if len(self._otr_msgs) + 1 > self.limits.max_otr * max(1, len(self._fills)):
            over = True
        if over:
            self.counters.forced_over_budget += 1
        self._record_message(ts_ns)
        self.counters.cancels += 1

    def record_fill(self, ts_ns: int, order_key: str) -> None:
        """A fill event of `order_key`. The OTR budget counts filled *orders*: only the first
        fill of an order adds a trade (an order filled in 20 parts is one trade, not 20)."""
        self._prune(ts_ns)
        self.counters.fill_events += 1
        if order_key in self._filled:
            return
        self._filled[order_key] = ts_ns
        self._fills.append(ts_ns)
        self.counters.fills += 1

    def reserve(self, order_key: str) -> None:
        """Re-reserve the cancel of a live order whose cancel was rejected (the rejected one
        spent the reservation; the retry will spend this one). Not a message: no count."""
        if order_key not in self._reserved:
            self._reserved.add(order_key)
            self.counters.reserves += 1

    def release(self, order_key: str) -> None:
        """The order closed without a cancel from us (filled, rejected, expired)."""
        self._reserved.discard(order_key)
        self._filled.pop(order_key, None)
