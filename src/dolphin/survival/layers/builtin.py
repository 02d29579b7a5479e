"""The shipped layers: L1-L9, ACB v6 and the RTT lockdown.

Sensor conventions: heartbeat-style sensors carry their information in the receive time
(staleness); value sensors carry a number in the unit named by the role. All "badness"
measures are oriented so that larger is worse, which makes every layer non-increasing in
every staleness.

Every value role declares its valid range (``SensorRole.valid``): a reading outside it cannot be
true (a negative jitter, an infinite depth ratio, a ledger flag of 7.3), so the board counts it
and the layer reads it as unknown (NaN), i.e. the worst case; the explanation shows the count.
"""

from __future__ import annotations

import math

from collections import deque

from dolphin.core.config import ConfigStruct, Fraction, NonNegFloat, PosFloat
from dolphin.survival import acb
from dolphin.survival.clock import NS_PER_S
from dolphin.survival.config import LayerSpec
from dolphin.survival.kernels import (
    capital_sigmoid_mult,
    gradient_mult,
    impulse_mult,
    invariant_mult,
    structural_mult,
)
from dolphin.survival.layers.base import QUIET_FOREVER, QUIET_NEVER, Category, Layer, SensorBoard, SensorRole, Valid
from dolphin.survival.posture import APEX, TURTLE

__all__ = [
    "AcbV6Layer",
    "DrawdownLayer",
    "EsotericFactorsLayer",
    "ExternalFactorsLayer",
    "GridQuorumLayer",
    "LedgerIntegrityLayer",
    "McForewarnerLayer",
    "SLIPPAGE_INVALID_HOLD_FILLS",
    "SLIPPAGE_INVALID_HOLD_S",
    "SLIPPAGE_MAX_BPS",
    "OrderBookLayer",
    "RttLockdownLayer",
    "ScanHeartbeatLayer",
    "SlippageDriftLayer",
    "SlippageTracker",
]


# ------------------------------------------------------------------ category 1: invariants


class GridQuorumLayer(Layer):
    """L1: the state grid has a quorum of members and its heartbeat is fresh."""

    class Options(ConfigStruct):
        quorum: PosFloat = 1.0
        max_heartbeat_age_s: PosFloat = 15.0  # finite (Layer checks every float option)

    category = Category.INVARIANT
    SENSORS = (SensorRole("grid_members", 1.0, valid=Valid(0.0)), SensorRole("grid_heartbeat", 0.0))

    def target(self, now_ns: int) -> float:
        o = self.options
        age_s = self.staleness_s(1, now_ns) - self.deadband[1]
        return invariant_mult(self.reading(0) >= o.quorum and age_s <= o.max_heartbeat_age_s)  # NaN: violated

    def explain(self, now_ns: int) -> str:
        bad = "" if self.reading(0) == self.value(0) else " (INVALID READING)"
        return (
            f"grid members {self.value(0):g}{bad} (quorum {self.options.quorum:g}), "
            f"heartbeat age {self.staleness_s(1, now_ns):.1f} s (max {self.options.max_heartbeat_age_s:g} s)"
            + self.invalid_note()
        )


class LedgerIntegrityLayer(Layer):
    """L2: the ledger's checksum chain verified (1) and the verification is recent."""

    class Options(ConfigStruct):
        max_age_s: PosFloat = 300.0

    category = Category.INVARIANT
    SENSORS = (SensorRole("ledger_ok", 1.0, valid=Valid(0.0, 1.0, whole=True)),)  # exactly 0 or 1

    def target(self, now_ns: int) -> float:
        return invariant_mult(self.reading(0) == 1.0 and self.staleness_s(0, now_ns) <= self.options.max_age_s)

    def explain(self, now_ns: int) -> str:
        v = self.reading(0)
        ok = "verified" if v == 1.0 else ("CHECKSUM MISMATCH" if v == 0.0 else f"INVALID READING {self.value(0)!r}")
        return (f"ledger {ok}, last verification {self.staleness_s(0, now_ns):.1f} s ago "
                f"(max {self.options.max_age_s:g} s){self.invalid_note()}")  # fmt: skip


# ------------------------------------------------------------------ category 2: structural


class McForewarnerLayer(Layer):
    """L3: MC-Forewarner envelope zone (0 GREEN, 1 ORANGE, 2 RED) times staleness decay."""

    class Options(ConfigStruct):
        orange_mult: Fraction = 0.75  # fractions: a multiplier > 1 would switch the protection off
        red_mult: Fraction = 0.35

    category = Category.STRUCTURAL
    SENSORS = (SensorRole("mcf_zone", 0.0, 600.0, valid=Valid(0.0, 2.0, whole=True)),)  # 0, 1 or 2

    def target(self, now_ns: int) -> float:
        zone = self.reading(0)
        if zone == 0.0:
            zone_mult = 1.0
        elif zone == 1.0:
            zone_mult = self.options.orange_mult
        else:  # RED, or an invalid reading (NaN): never GREEN
            zone_mult = self.options.red_mult
        return zone_mult * structural_mult(self.staleness_s(0, now_ns), self.deadband[0], self.spec.decay_per_s)

    def explain(self, now_ns: int) -> str:
        v = self.reading(0)
        zone = "GREEN" if v == 0.0 else ("ORANGE" if v == 1.0 else "RED")
        if v != v:
            zone = f"RED (invalid zone reading {self.value(0)!r})"
        return (f"MC-Forewarner {zone}, last update {self.staleness_s(0, now_ns):.0f} s ago "
                f"(grace {self.deadband[0]:g} s){self.invalid_note()}")  # fmt: skip


class ScanHeartbeatLayer(Layer):
    """L4: the regime scan loop's heartbeat; decays once it is late."""

    category = Category.STRUCTURAL
    SENSORS = (SensorRole("scan_heartbeat", 0.0, 5.0),)

    def target(self, now_ns: int) -> float:
        return structural_mult(self.staleness_s(0, now_ns), self.deadband[0], self.spec.decay_per_s)

    def explain(self, now_ns: int) -> str:
        return f"scan heartbeat {self.staleness_s(0, now_ns):.1f} s old (grace {self.deadband[0]:g} s)"


# ------------------------------------------------------------------ category 3: microstructure


class OrderBookLayer(Layer):
    """L5: order-book streamer health: update age, inter-arrival jitter, depth decay.

    ``book_depth_ratio`` is current depth / reference depth; its badness is 1 - ratio. Below
    ``passive_below`` the layer caps the posture at TURTLE (passive quoting only).
    """

    class Options(ConfigStruct):
        age_span_s: PosFloat = 5.0
        jitter_span_ms: PosFloat = 250.0
        depth_span: PosFloat = 0.5
        passive_below: NonNegFloat = 0.6

    category = Category.MICROSTRUCTURE
    SENSORS = (
        SensorRole("book_update", 0.0, 0.2),  # 200 ms WebSocket lag is ignored
        SensorRole("book_jitter_ms", 0.0, 50.0, valid=Valid(0.0)),
        SensorRole("book_depth_ratio", 1.0, 0.3, valid=Valid(0.0)),
    )

    def target(self, now_ns: int) -> float:
        o, s, f, db = self.options, self.spec.sensitivity, self.spec.floor, self.deadband
        m = gradient_mult(self.staleness_s(0, now_ns) * s, db[0], o.age_span_s, f)
        m *= gradient_mult(self.reading(1) * s, db[1], o.jitter_span_ms, f)  # NaN (invalid): floor
        m *= gradient_mult((1.0 - self.reading(2)) * s, db[2], o.depth_span, f)
        self.cap = TURTLE if m < o.passive_below else APEX
        return m

    def explain(self, now_ns: int) -> str:
        return (
            f"book age {self.staleness_s(0, now_ns) * 1e3:.0f} ms, jitter {self.value(1):.0f} ms, "
            f"depth {self.value(2):.0%} of reference" + (" -> passive quoting" if self.cap == TURTLE else "")
            + self.invalid_note()
        )


# A fill more than 20 % away from its expected price is a wrong price (a stale or mis-scaled
# quote, a unit error), not slippage: it never enters the average (one 10x-off expected price
# moved the drift to -1800 bps and blinded L6 for 16 adverse fills).
SLIPPAGE_MAX_BPS = 2_000.0
# After an invalid fill the tracker reports the worst case until this many valid fills followed.
SLIPPAGE_INVALID_HOLD_FILLS = 5
# ... or until this long after the invalid fill, whichever comes first: the worst case stops
# entries, so without a time limit a hold with no more fills would never end.
SLIPPAGE_INVALID_HOLD_S = 300.0
_NO_HOLD_NS = 2**63 - 1


class SlippageTracker:
    """EWMA of adverse slippage in bps (realised vs expected fill price), fed per fill.

    A fill whose prices are not finite and > 0, whose side is not +1/-1, or whose slippage
    exceeds ``SLIPPAGE_MAX_BPS`` either way is invalid: it stays out of the average (which is
    always finite), is counted (``invalid_fills``), and the reading is the worst case,
    ``SLIPPAGE_MAX_BPS`` adverse (L6 at its floor), until ``hold_fills`` valid fills have
    followed it or ``hold_s`` has passed since it (when the fill's time is given), whichever
    comes first (an unknown slippage is not a good one, but a hold that stops entries must not
    wait for fills that cannot come). ``hold_until_ns`` is when the time limit ends the hold
    (never while there is none); the feeder calls :meth:`release` then and re-reads.
    """

    __slots__ = ("alpha", "drift_bps", "fills", "invalid_fills", "hold_fills", "hold_ns", "hold_until_ns", "_hold")

    def __init__(self, alpha: float = 0.2, hold_fills: int = SLIPPAGE_INVALID_HOLD_FILLS,
                 hold_s: float = SLIPPAGE_INVALID_HOLD_S) -> None:  # fmt: skip
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not hold_fills >= 1:
            raise ValueError(f"hold_fills must be >= 1, got {hold_fills}")
        if not 0.0 < hold_s < math.inf:
            raise ValueError(f"hold_s must be finite and > 0, got {hold_s}")
        self.alpha = alpha
        self.drift_bps = 0.0
        self.fills = 0  # valid fills in the average
        self.invalid_fills = 0
        self.hold_fills = int(hold_fills)
        self.hold_ns = int(hold_s * 1e9)
        self.hold_until_ns = _NO_HOLD_NS
        self._hold = 0  # valid fills still to come before the reading is the average again

    def release(self, now_ns: int) -> bool:
        """End the hold when its time is up; True if it ended (re-read ``reading_bps``)."""
        if self._hold and now_ns >= self.hold_until_ns:
            self._hold = 0
            self.hold_until_ns = _NO_HOLD_NS
            return True
        return False

    @property
    def reading_bps(self) -> float:
        """The value for the ``slippage_drift_bps`` sensor: the drift, or the worst case."""
        return SLIPPAGE_MAX_BPS if self._hold else self.drift_bps

    def on_fill(self, side: int, expected_px: float, realised_px: float, ts_ns: int | None = None) -> float:
        """side +1 buy, -1 sell; adverse slippage is positive. Returns ``reading_bps``."""
        if ts_ns is not None:
            self.release(ts_ns)
        if (side == 1 or side == -1) and 0.0 < expected_px < math.inf and 0.0 < realised_px < math.inf:
            slip_bps = side * (realised_px - expected_px) / expected_px * 1e4
            if -SLIPPAGE_MAX_BPS <= slip_bps <= SLIPPAGE_MAX_BPS:
                self.drift_bps += self.alpha * (slip_bps - self.drift_bps)
                self.fills += 1
                if self._hold:
                    self._hold -= 1
                    if not self._hold:
                        self.hold_until_ns = _NO_HOLD_NS
                return self.reading_bps
        self.invalid_fills += 1
        self._hold = self.hold_fills
        if ts_ns is not None:
            self.hold_until_ns = ts_ns + self.hold_ns
        return SLIPPAGE_MAX_BPS

    def explain(self) -> str:
        bad = f", {self.invalid_fills} invalid fills so far" if self.invalid_fills else ""
        held = f" (worst case for {self._hold} more fills after an invalid one)" if self._hold else ""
        return f"slippage drift {self.drift_bps:.1f} bps over {self.fills} fills{held}{bad}"


class SlippageDriftLayer(Layer):
    """L6: drift of realised vs expected fill prices (EWMA, adverse bps)."""

    class Options(ConfigStruct):
        span_bps: PosFloat = 20.0

    category = Category.MICROSTRUCTURE
    SENSORS = (SensorRole("slippage_drift_bps", 0.0, 2.0, valid=Valid(-SLIPPAGE_MAX_BPS, SLIPPAGE_MAX_BPS)),)

    def target(self, now_ns: int) -> float:
        x = self.reading(0) * self.spec.sensitivity  # NaN (invalid): floor
        return gradient_mult(x, self.deadband[0], self.options.span_bps, self.spec.floor)

    def quiet_until_ns(self, now_ns: int) -> int:
        return QUIET_FOREVER  # a function of the reading only

    def explain(self, now_ns: int) -> str:
        held = " (the worst case after an invalid fill)" if self.value(0) == SLIPPAGE_MAX_BPS else ""
        return f"slippage drift {self.value(0):.1f} bps{held} (deadband {self.deadband[0]:g} bps){self.invalid_note()}"


_RTT_MAX_MS = 1e9  # ~11.6 days: no order round trip is longer; larger readings are faults


def _rtt_valid(value: float) -> bool:
    """An RTT reading that can be true: 0 <= value <= _RTT_MAX_MS (NaN fails both tests)."""
    return 0.0 <= value <= _RTT_MAX_MS


class RttLockdownLayer(Layer):
    """RTT lockdown: mean order round-trip time over a short window above the threshold stops
    new entries (posture cap TURTLE) until it has stayed at or below it for ``hold_s``."""

    class Options(ConfigStruct):
        threshold_ms: PosFloat = 20.0
        window_s: PosFloat = 5.0
        hold_s: NonNegFloat = 60.0

    category = Category.MICROSTRUCTURE
    SENSORS = (SensorRole("order_rtt_ms", 0.0, valid=Valid(0.0, _RTT_MAX_MS)),)
    WANTS_SAMPLES = True

    def __init__(self, spec: LayerSpec, board: SensorBoard) -> None:
        super().__init__(spec, board)
        self._samples: deque[tuple[int, float]] = deque()
        self._sum_ms = 0.0  # of the valid samples in the window (see _rtt_valid)
        self._invalid = 0  # invalid samples in the window
        self.invalid_samples = 0  # invalid samples ever seen (counted, shown by explain)
        self.locked = False
        self._calm_since_ns: int | None = None  # locked and calm since then (None: not calm)

    def on_sample(self, sensor: int, value: float, now_ns: int) -> None:
        self._samples.append((now_ns, value))
        if _rtt_valid(value):
            self._sum_ms += value
        else:  # kept out of the sum: a NaN or inf there would poison it for good, a huge value
            self._invalid += 1  # leave a rounding residue larger than the readings after it
            self.invalid_samples += 1
        self.target(now_ns)

    def window_mean_ms(self, now_ns: int) -> float:
        """Mean RTT of the samples inside the window (0 when there are none; +inf while an
        invalid reading is in it, see ``_rtt_valid``: an RTT that cannot be measured, or cannot
        be true, counts as over the limit)."""
        horizon_ns = now_ns - int(self.options.window_s * NS_PER_S)
        q = self._samples
        while q and q[0][0] < horizon_ns:
            v = q.popleft()[1]
            if _rtt_valid(v):
                self._sum_ms -= v
            else:
                self._invalid -= 1
        if not q:
            self._sum_ms = 0.0  # no rounding residue carried into the next samples
            return 0.0
        if self._invalid:
            return math.inf
        return self._sum_ms / len(q)

    def target(self, now_ns: int) -> float:
        mean_ms = self.window_mean_ms(now_ns)
        if mean_ms > self.options.threshold_ms:
            self.locked = True
            self._calm_since_ns = None
        elif self.locked:
            if self._calm_since_ns is None:
                self._calm_since_ns = now_ns
            if now_ns - self._calm_since_ns >= self.options.hold_s * NS_PER_S:
                self.locked = False
        self.cap = TURTLE if self.locked else APEX
        return 1.0

    def quiet_until_ns(self, now_ns: int) -> int:
        # Unlocked, the mean is <= threshold; only the oldest sample leaving the window (at a
        # time > its time + window) can change it. Locked, the calm hold reads time.
        if self.locked:
            return QUIET_NEVER
        q = self._samples
        return q[0][0] + int(self.options.window_s * NS_PER_S) if q else QUIET_FOREVER

    def explain(self, now_ns: int) -> str:
        state = "LOCKED: no new entries" if self.locked else "clear"
        bad = f", {self.invalid_samples} invalid readings so far" if self.invalid_samples else ""
        return (f"RTT {self.window_mean_ms(now_ns):.1f} ms over {self.options.window_s:g} s "
                f"(limit {self.options.threshold_ms:g} ms), {state}{bad}")


# ------------------------------------------------------------------ category 4: environmental


class ExternalFactorsLayer(Layer):
    """L7: external-factor shocks; a reading >= 1/sensitivity is a shock (impulse to
    ``depth``, linear recovery over ``recover_s``, reset by a new shock)."""

    class Options(ConfigStruct):
        depth: Fraction = 0.3  # a fraction: a depth > 1 would switch the protection off
        recover_s: PosFloat = 3600.0

    category = Category.ENVIRONMENTAL
    SENSORS = (SensorRole("exf_shock", 0.0, valid=Valid(0.0)),)
    WANTS_SAMPLES = True

    def __init__(self, spec: LayerSpec, board: SensorBoard) -> None:
        super().__init__(spec, board)
        self.last_shock_ns: int | None = None  # None: no shock yet (any clock time is a valid one)

    def on_sample(self, sensor: int, value: float, now_ns: int) -> None:
        v = self.reading(0)
        if v * self.spec.sensitivity >= 1.0 or v != v:  # an invalid reading is a shock
            self.last_shock_ns = now_ns

    def target(self, now_ns: int) -> float:
        if self.last_shock_ns is None:
            return 1.0
        return impulse_mult((now_ns - self.last_shock_ns) / NS_PER_S, self.options.depth, self.options.recover_s)

    def quiet_until_ns(self, now_ns: int) -> int:
        return QUIET_FOREVER if self.last_shock_ns is None else QUIET_NEVER  # no shock: 1.0 until a reading

    def explain(self, now_ns: int) -> str:
        if self.last_shock_ns is None:
            return f"{self.name}: no shock{self.invalid_note()}"
        return (f"{self.name}: shock {(now_ns - self.last_shock_ns) / NS_PER_S:.0f} s ago "
                f"(recovers over {self.options.recover_s:g} s){self.invalid_note()}")  # fmt: skip


class EsotericFactorsLayer(ExternalFactorsLayer):
    """L8: esoteric factors (criticality D): the same impulse shape, a mild default depth."""

    class Options(ConfigStruct):
        depth: Fraction = 0.85
        recover_s: PosFloat = 3600.0

    SENSORS = (SensorRole("esof_shock", 0.0, valid=Valid(0.0)),)


class AcbV6Layer(Layer):
    """ACB v6: multiplier 1 - acb_v6_cut_frac(stress count) of lagged stress inputs.

    The feeder publishes already-lagged inputs (funding at 5 days, taker ratio at 1 day; see
    ``acb.lagged_values``). Before any reading the inputs sit at calm values.
    """

    class Options(ConfigStruct):
        funding_weight: NonNegFloat = 1.0
        taker_weight: NonNegFloat = 1.0
        dvol_weight: NonNegFloat = 1.0
        dvol_jump_weight: NonNegFloat = 1.0
        fng_weight: NonNegFloat = 0.0  # no fear & greed feed yet

    category = Category.ENVIRONMENTAL
    SENSORS = (
        SensorRole("acb_funding_lag5d_frac", 0.0, valid=Valid()),  # finite, either sign
        SensorRole("acb_taker_ratio_lag1d", 1.0, valid=Valid(0.0)),
        SensorRole("acb_dvol", 40.0, valid=Valid(0.0)),
        SensorRole("acb_dvol_prev", 40.0, valid=Valid(0.0)),
        SensorRole("acb_fear_greed", 50.0, valid=Valid(0.0, 100.0)),
    )

    def __init__(self, spec: LayerSpec, board: SensorBoard) -> None:
        super().__init__(spec, board)
        o = self.options
        self.thresholds = acb.AcbThresholds(
            funding_weight=o.funding_weight,
            taker_weight=o.taker_weight,
            dvol_weight=o.dvol_weight,
            dvol_jump_weight=o.dvol_jump_weight,
            fng_weight=o.fng_weight,
        )

    def stress(self) -> float:
        # An invalid input reads as NaN: fully stressed (acb.ramp_stress).
        inputs = acb.AcbInputs(self.reading(0), self.reading(1), self.reading(2), self.reading(3), self.reading(4))
        return acb.stress_count(inputs, self.thresholds) * self.spec.sensitivity

    def target(self, now_ns: int) -> float:
        return 1.0 - acb.acb_v6_cut_frac(self.stress())

    def quiet_until_ns(self, now_ns: int) -> int:
        return QUIET_FOREVER  # a function of the readings only

    def explain(self, now_ns: int) -> str:
        s = self.stress()
        return f"ACB v6 stress count {s:.2f} -> size cut {acb.acb_v6_cut_frac(s):.0%}{self.invalid_note()}"


# ------------------------------------------------------------------ category 5: capital


class DrawdownLayer(Layer):
    """L9: portfolio drawdown (fraction of peak equity) through the capital sigmoid."""

    class Options(ConfigStruct):
        steepness: PosFloat = 20.0
        midpoint_frac: PosFloat = 0.20

    category = Category.CAPITAL
    SENSORS = (SensorRole("drawdown_frac", 0.0, 0.01, valid=Valid(0.0, 1.0)),)

    def target(self, now_ns: int) -> float:
        # A real deadband: 1 up to it, then the model at the drawdown itself. Subtracting the
        # deadband had shifted the curve (midpoint 21 %, not 20 %; found in review 2026-12-06).
        dd = self.reading(0) * self.spec.sensitivity  # NaN (invalid): 0
        return capital_sigmoid_mult(dd, self.options.steepness, self.options.midpoint_frac, self.deadband[0])

    def quiet_until_ns(self, now_ns: int) -> int:
        return QUIET_FOREVER  # a function of the reading only

    def explain(self, now_ns: int) -> str:
        return f"drawdown {self.value(0):.1%} (midpoint {self.options.midpoint_frac:.0%}){self.invalid_note()}"


