"""Injected clocks: every time-dependent decision in the survival plane reads one of these.

``ManualClock`` drives tests and replays (exactly reproducible); ``MonotonicClock`` is the
only place that reads the operating-system clock, and it lives at the edge.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "MonotonicClock", "NS_PER_S", "NS_PER_MS"]

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


@runtime_checkable
class Clock(Protocol):
    """A source of time in integer nanoseconds (monotonic, never goes backwards)."""

    def now_ns(self) -> int: ...


class ManualClock:
    """A clock that moves only when told to: deterministic replay and tests."""

    __slots__ = ("_now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = int(start_ns)

    def now_ns(self) -> int:
        return self._now_ns

    def advance_ns(self, delta_ns: int) -> int:
        """Move forward by ``delta_ns`` (>= 0) and return the new time."""
        if delta_ns < 0:
            raise ValueError(f"ManualClock cannot go backwards: delta_ns={delta_ns}")
        self._now_ns += int(delta_ns)
        return self._now_ns

    def advance_s(self, delta_s: float) -> int:
        return self.advance_ns(round(delta_s * NS_PER_S))

    def set_ns(self, now_ns: int) -> None:
        """Jump to ``now_ns``, which must not be earlier than the current time."""
        if now_ns < self._now_ns:
            raise ValueError(f"ManualClock cannot go backwards: {now_ns} < {self._now_ns}")
        self._now_ns = int(now_ns)


class MonotonicClock:
    """The live clock: ``time.monotonic_ns`` (the edge adapter; never used by replays)."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.monotonic_ns()
