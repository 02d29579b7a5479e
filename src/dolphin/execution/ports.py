"""What the execution agent needs from other planes, as small protocols.

The agent and the backtest depend only on these. The real implementations are wired in the
composition root ``dolphin.runtime.wiring`` (survival controller for :class:`RiskView` and
:class:`RiskSensors`, the Oracle for :class:`SignalSource`, :class:`NevModel` and
:class:`MicrostructureView`, :class:`FileKillFlag` on ``execution.kill_flag_path``). A port
with a ``bind(strategy)`` method is bound by the agent at start (it reads the strategy's
cache, clock and message bus: the Oracle's book is fed from the agent's own market data). The simple implementations here
(:class:`FixedRiskView` with a posture schedule, :class:`SimpleNevModel`,
:class:`FixedMicrostructure`, :class:`MemoryKillFlag`) are for tests of the agent's own
mechanics, where a scripted posture isolates the rule under test.
"""

from __future__ import annotations

import os
import stat
from time import monotonic_ns as _monotonic_ns
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

__all__ = [
    "Candidate",
    "FileKillFlag",
    "FixedMicrostructure",
    "FixedRiskView",
    "KillFlag",
    "MemoryKillFlag",
    "MicrostructureView",
    "NevModel",
    "Posture",
    "RiskSensors",
    "RiskView",
    "SignalSource",
    "SimpleNevModel",
]


class Posture(IntEnum):
    """Operating posture from the survival controller (ordered by permissiveness)."""

    HIBERNATE = 0  # cancel all, no new orders, flatten by rule
    TURTLE = 1  # passive, exit-only
    STALKER = 2  # limit-only (post-only), max 2x
    APEX = 3  # up to 6x, taker entries allowed when NEV after taker fees is positive


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry candidate from the Oracle for one instrument and bar.

    `side` is +1 (long) or -1 (short); `edge_bps` is the gross expected move in the trade's
    favour (before fees, spread and tax), `strength` the signal strength in [0, 1].
    """

    instrument_id: str
    side: int
    ts_ns: int
    edge_bps: float
    strength: float = 1.0
    tag: str = ""


@runtime_checkable
class SignalSource(Protocol):
    """Candidates per bar (the Oracle's output, driven by scan records).

    The agent calls it once per bar of every subscribed instrument, in event order; the
    implementation owns how it reads the scanner's records (vel_div, regime) for that bar.
    A source whose candidates depend only on the instrument and the bar time (a panel computed
    before the run) may also define ``candidates_at(instrument_id, ts_ns)``, returning exactly
    what ``on_bar`` would; the agent then calls it instead and skips the bar's prices. Such a
    source may also define ``candidate_slots(instrument_id) -> (offset_ns, step_ns, slots)``:
    ``candidates_at`` returns nothing (and records nothing) unless ``(ts_ns - offset_ns) //
    step_ns`` is in ``slots``; the agent then asks it only for those bars.
    """

    def on_bar(
        self, instrument_id: str, ts_ns: int, open_: float, high: float, low: float, close: float, volume: float
    ) -> Sequence[Candidate]: ...


@runtime_checkable
class RiskView(Protocol):
    """The survival controller's view: R_total, posture, and the AlphaBetSizer."""

    def r_total(self, ts_ns: int) -> float: ...

    def posture(self, ts_ns: int) -> Posture: ...

    def size_notional(self, capital: float, posture: Posture, r_total: float) -> float: ...

    def gross_notional(self, capital: float, posture: Posture, r_total: float) -> float:
        """What all positions and working entries together may hold (the posture's leverage
        ceiling applies to the account, ``size_notional`` to one instrument)."""
        ...

    # Optional attribute ``min_notional`` (float): the venue's minimum order notional; an entry
    # trimmed or rounded below it is not sent (absent: 0).


@runtime_checkable
class RiskSensors(Protocol):
    """Readings the agent feeds the survival controller, stamped with event time (ns).

    `on_equity`: equity after each bar (drawdown); `on_fill`: expected vs realised fill price
    (slippage drift; side +1 buy, -1 sell); `on_order_rtt`: submit -> the venue's first answer
    (acceptance, fill or rejection) in ms, or the age of an order still unanswered a TTL after its
    submission; `on_book_update`: one book/quote update arrived (book age and jitter).
    """

    def on_equity(self, ts_ns: int, equity: float) -> None: ...

    def on_fill(self, ts_ns: int, side: int, expected_px: float, realised_px: float) -> None: ...

    def on_order_rtt(self, ts_ns: int, rtt_ms: float) -> None: ...

    def on_book_update(self, ts_ns: int) -> None: ...


@runtime_checkable
class NevModel(Protocol):
    """Net expected value of an order in bps of notional, after fees, spread and tax."""

    def nev_bps(self, candidate: Candidate, *, taker: bool, spread_bps: float) -> float: ...


@runtime_checkable
class MicrostructureView(Protocol):
    """Order-book view for placement and trade permanence.

    `wobi` is the weighted order-book imbalance in [-1, 1] (positive: bid-heavy) or None when
    unknown; `confidence` in [0, 1] is how far the book can be trusted for placing an order of
    `side` (+1 buy, -1 sell, 0 unknown). The real view is the Oracle's book
    (``dolphin.execution.oracle_book.OracleMicrostructure``).
    """

    def wobi(self, instrument_id: str) -> float | None: ...

    def confidence(self, instrument_id: str, side: int = 0) -> float: ...


@runtime_checkable
class KillFlag(Protocol):
    """The global kill switch; checked before every submit."""

    def is_raised(self) -> bool: ...


# --------------------------------------------------------------------------- defaults


class MemoryKillFlag:
    """An in-process kill flag (backtests, tests, single-process paper runs)."""

    __slots__ = ("_raised",)

    def __init__(self, raised: bool = False) -> None:
        self._raised = raised

    def raise_(self) -> None:
        self._raised = True

    def clear(self) -> None:
        self._raised = False

    def is_raised(self) -> bool:
        return self._raised


class FileKillFlag:
    """A kill flag over byte 0 of a small file (shared between processes).

    Any non-zero byte means raised. Making the object never writes: it reads the file as it is
    (a missing or empty one reads raised), so a process starting up can never clear a kill that
    other processes read as raised by truncating or deleting the file (found in review,
    2026-12-06: the constructor used to create a missing file, and fill an empty one, cleared).
    Only :meth:`clear` / :meth:`raise_` write (creating the file and its folder when missing):
    arming the flag is an explicit act (``dolphin kill clear``). One byte is written atomically
    (``pwrite``), so readers never see a torn value.

    Fail-safe reading (decision 0007): the file is read with ``pread`` on a kept read-only
    descriptor, so a truncated file reads short instead of faulting (a memory map of it died with
    SIGBUS), and the path is re-checked with ``stat``: a file replaced (temp + rename) or deleted
    and recreated is re-opened (read-only: an operator's replacement owned by another user is
    still readable). A missing, short (empty) or unreadable file (permissions, a directory, a FIFO,
    a device or anything else that is not a regular file, any OS error) counts as RAISED; each is counted in ``counters`` (episodes), as are re-opens.

    ``is_raised`` runs on every bar and quote, so it returns the value read at most
    ``max_age_ms`` (wall clock, monotonic) ago; :meth:`is_raised_now` always reads (the agent
    calls it before every submit). ``raise_`` / ``clear`` on this object update it at once.
    """

    __slots__ = ("path", "max_age_ns", "counters", "_fd", "_ino", "_raised", "_fresh_until", "_state")

    def __init__(self, path: str | Path, *, max_age_ms: float = 1.0) -> None:
        self.path = Path(path)
        self.max_age_ns = int(max_age_ms * 1_000_000)
        self.counters: dict[str, int] = {"reads": 0, "reopened": 0, "missing": 0, "short": 0, "unreadable": 0}
        self._fd: int | None = None  # opened by the first read (_current_fd), if the file exists
        self._ino: tuple[int, int] | None = None
        self._state = "ok"  # "ok" | "missing" | "short" | "unreadable": the last read's outcome (episodes)
        self._raised = True
        self._fresh_until = 0
        self.is_raised_now()

    @property
    def state(self) -> str:
        """The last read's outcome: "ok", or why it counts as raised ("missing", "short", "unreadable")."""
        return self._state

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            if state != "ok":
                self.counters[state] += 1

    def _current_fd(self) -> int | None:
        """The descriptor of the file now at ``path`` (re-opened if it was replaced), or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file: {self.path}")
        ino = (st.st_dev, st.st_ino)
        if ino != self._ino or self._fd is None:
            try:
                # non-blocking: a FIFO put at the path between the stat and the open would block
                # the open (and with it the event loop) until a writer came (review 2026-12-06)
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                return None
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise OSError(f"not a regular file: {self.path}")
            if self._fd is not None:
                os.close(self._fd)
            self._fd = fd
            if self._ino is not None:  # (the first open is not a re-open)
                self.counters["reopened"] += 1
            self._ino = (st.st_dev, st.st_ino)
        return self._fd

    def is_raised_now(self) -> bool:
        """Read the file now (stat + pread); missing or empty counts as raised."""
        self.counters["reads"] += 1
        try:
            fd = self._current_fd()
            b = None if fd is None else os.pread(fd, 1, 0)
        except OSError:  # permissions, a directory at the path, I/O error: fail safe
            self._set_state("unreadable")
            raised = True
        else:
            if b is None:
                self._set_state("missing")
                raised = True
            elif not b:
                self._set_state("short")
                raised = True
            else:
                self._set_state("ok")
                raised = b != b"\x00"
        self._raised = raised
        self._fresh_until = _monotonic_ns() + self.max_age_ns
        return raised

    def is_raised(self) -> bool:
        if _monotonic_ns() < self._fresh_until:
            return self._raised
        return self.is_raised_now()

    def _write(self, value: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wfd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)  # the file now at the path
        try:
            if not stat.S_ISREG(os.fstat(wfd).st_mode):
                raise OSError(f"not a regular file: {self.path}")
            os.pwrite(wfd, value, 0)
            os.fsync(wfd)
        finally:
            os.close(wfd)
        self.is_raised_now()

    def raise_(self) -> None:
        self._write(b"\x01")

    def clear(self) -> None:
        self._write(b"\x00")

    def close(self) -> None:
        """Close the read descriptor (a later read opens the file again)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # a flag dropped without close() must not keep its descriptor
        try:
            self.close()
        except (AttributeError, OSError):  # (a half-built instance; an fd closed elsewhere)
            pass


DEFAULT_LEVERAGE_CEILING: Mapping[Posture, float] = {
    Posture.APEX: 6.0,
    Posture.STALKER: 2.0,
    Posture.TURTLE: 0.0,
    Posture.HIBERNATE: 0.0,
}


@dataclass
class FixedRiskView:
    """A risk view with a fixed (or scheduled) posture and the AlphaBetSizer formula.

    `schedule` maps a timestamp (ns) to the posture that holds from then on; it lets a
    backtest or a test switch posture at a known time without a survival controller.
    """

    fixed_posture: Posture = Posture.STALKER
    fixed_r_total: float = 1.0
    base_fraction: float = 0.05
    leverage_ceiling: Mapping[Posture, float] = field(default_factory=lambda: dict(DEFAULT_LEVERAGE_CEILING))
    max_notional: float = 1_000_000.0
    min_notional: float = 0.0
    schedule: Sequence[tuple[int, Posture]] = ()

    def r_total(self, ts_ns: int) -> float:
        return self.fixed_r_total

    def posture(self, ts_ns: int) -> Posture:
        current = self.fixed_posture
        for start_ns, posture in self.schedule:
            if ts_ns >= start_ns:
                current = posture
        return current

    def size_notional(self, capital: float, posture: Posture, r_total: float) -> float:
        raw = capital * self.base_fraction * r_total * self.leverage_ceiling.get(posture, 0.0)
        return max(0.0, min(raw, self.max_notional))

    def gross_notional(self, capital: float, posture: Posture, r_total: float) -> float:
        return max(0.0, capital * r_total * self.leverage_ceiling.get(posture, 0.0))


@dataclass(frozen=True)
class SimpleNevModel:
    """NEV = edge - fee (maker or taker) - tax - (half spread when taking), all in bps."""

    maker_fee_bps: float = 2.0
    taker_fee_bps: float = 5.0
    tax_bps: float = 0.0

    def nev_bps(self, candidate: Candidate, *, taker: bool, spread_bps: float) -> float:
        fee = self.taker_fee_bps if taker else self.maker_fee_bps
        # Round trip: entry fee now plus an exit fee at the same rate class (exits go passive first).
        cost = 2.0 * fee + 2.0 * self.tax_bps + (0.5 * spread_bps if taker else 0.0)
        return candidate.edge_bps - cost


@dataclass(frozen=True)
class FixedMicrostructure:
    """A fixed book view (tests and bar backtests without a book); wobi None means unknown."""

    fixed_wobi: float | None = None
    fixed_confidence: float = 0.5

    def wobi(self, instrument_id: str) -> float | None:
        return self.fixed_wobi

    def confidence(self, instrument_id: str, side: int = 0) -> float:
        return self.fixed_confidence
