"""Events: every posture change, layer change, kill, rearm and denial is data with a reason."""

from __future__ import annotations

from typing import Callable

import msgspec

__all__ = ["Event", "EventLog", "StepRecord"]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened in the survival plane.

    kind: ``posture`` | ``layer`` | ``cap`` | ``kill`` | ``rearm`` | ``rearm_denied`` | ``cancel_all`` | ``denial``.
    """

    ts_ns: int
    kind: str
    subject: str
    old: str = ""
    new: str = ""
    reason: str = ""
    r_total: float = 1.0
    value: float = 0.0


class StepRecord(msgspec.Struct, frozen=True, array_like=True):
    """One posture-machine step (for trace validation against the formal model).

    cause: 0 tick, 1 kill, 2 a tighter posture cap from a reading. ``r_pct`` is R_total in whole percent as the step saw it.
    ``dwell_ok`` is the flag the step used: the upgrade dwell is met, and the step is not a cap step
    (a cap step sees the last tick's R_total, so it may only tighten).
    """

    ts_ns: int
    cause: int
    r_pct: int
    cap: int
    killed: bool
    dwell_ok: bool
    before: int
    after: int


class EventLog:
    """An append-only list of events plus per-kind counters; optional forwarding sink."""

    __slots__ = ("events", "counts", "_sink")

    def __init__(self, sink: Callable[[Event], None] | None = None) -> None:
        self.events: list[Event] = []
        self.counts: dict[str, int] = {}
        self._sink = sink

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self.counts[event.kind] = self.counts.get(event.kind, 0) + 1
        if self._sink is not None:
            self._sink(event)

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def to_jsonl(self) -> bytes:
        enc = msgspec.json.Encoder()
        return b"".join(enc.encode(e) + b"\n" for e in self.events)
