"""The multiplicative survival controller.

R_total = product over the five categories of the product of their layers' damped
multipliers. Damping is per layer: fast attack (a lower target is taken at once) and slow
recovery (a higher target is approached at ``recovery_per_min``); invariant layers are
undamped. The posture follows R_total through Schmitt-trigger gates (``posture.posture_step``),
the layers' posture caps and a minimum upgrade dwell. An invariant violation latches the kill
path: R_total = 0 and HIBERNATE in the same call, until an explicit ``rearm`` with every
invariant healthy again. An invariant is violated when its target is not > 0 (0, negative or
NaN): the same test in ``tick``, ``observe`` and ``rearm``. The distinct sources of the kill are
kept (``kill_sources``); a kill from a new source while latched is an event too, also an invariant
found violated while latched (every violated one, once per source: a violation that persists is not
counted again at every tick).

A reading that tightens the posture cap steps the posture machine at once, but that step may
only tighten: it sees the R_total of the last tick, so it never upgrades (dwell_ok is False).

Time comes only from the injected clock. ``tick()`` evaluates every layer (call it every
``tick_ms``); ``observe()`` records a reading and runs the invariant check of the layers fed by
that sensor synchronously (the kill path does not wait for the next tick).

A tick that provably cannot change anything is skipped (only its evaluation time is kept):
after a full tick, when no reading arrived since, every damped multiplier sits at its target,
the posture is stable (also once the upgrade dwell is met), nothing is killed, no ``on_step``
observer is set, and the time is within every layer's ``quiet_until_ns``. A reading keeps the
controller quiet only when every layer reading that sensor is a pure function of the readings
(``QUIET_FOREVER``) and its target and cap are unchanged by it. Every state, event and posture
is then exactly what the full evaluation would give.
"""

from __future__ import annotations

from typing import Callable

from dolphin.survival.clock import Clock
from dolphin.survival.config import SurvivalConfig
from dolphin.survival.events import Event, EventLog, StepRecord
from dolphin.survival.layers.base import QUIET_FOREVER, QUIET_NEVER, Category, Layer, SensorBoard, build_layer
from dolphin.survival.posture import APEX, RIGHTS, Posture, posture_step

__all__ = ["CAUSE_CAP", "CAUSE_KILL", "CAUSE_TICK", "SurvivalController", "r_to_pct"]

CAUSE_TICK = 0
CAUSE_KILL = 1
CAUSE_CAP = 2
_NAMES = tuple(p.name for p in Posture)


def _violated(target: float) -> bool:
    """An invariant's target says violated: not > 0 (0, negative or NaN)."""
    return not target > 0.0


def r_to_pct(r: float) -> int:
    """The largest whole k in 0..100 with r >= k/100 (the formal model's view of R_total).

    Exact against the float comparisons the thresholds use (``r < 0.85`` iff ``r_to_pct(r) < 85``),
    including values whose product ``r * 100`` rounds across an integer.
    """
    if not r > 0.0:
        return 0
    if r >= 1.0:
        return 100
    k = min(int(r * 100.0), 99)
    if r < k / 100:
        return k - 1
    if r >= (k + 1) / 100:
        return k + 1
    return k


class SurvivalController:
    """Layers -> damped multipliers -> categories -> R_total -> posture, with events."""

    def __init__(
        self,
        cfg: SurvivalConfig,
        clock: Clock,
        log: EventLog | None = None,
        *,
        on_step: Callable[[StepRecord], None] | None = None,
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self._clock = clock
        self.log = log if log is not None else EventLog()
        self.on_step = on_step
        now = clock.now_ns()
        self.board = SensorBoard(now)
        self.layers: list[Layer] = [build_layer(spec, self.board) for spec in cfg.layers]
        n = len(self.layers)
        self._cat = [int(layer.category) for layer in self.layers]
        self._undamped = [layer.category == Category.INVARIANT for layer in self.layers]
        self._rate_per_ns = [layer.spec.recovery_per_min / 60e9 for layer in self.layers]
        self.damped: list[float] = [1.0] * n
        self._reported: list[float] = [1.0] * n
        self._caps: list[int] = [APEX] * n
        self._step_frac = cfg.layer_event_step
        nsens = len(self.board.names)
        samples: list[list[tuple[int, Layer]]] = [[] for _ in range(nsens)]
        invariants: list[list[Layer]] = [[] for _ in range(nsens)]
        for k, layer in enumerate(self.layers):
            for i in layer.sensor_idx:
                if layer.WANTS_SAMPLES:
                    samples[i].append((k, layer))
                if layer.category == Category.INVARIANT:
                    invariants[i].append(layer)
        self._samples = [tuple(x) for x in samples]
        self._readers = [tuple(k for k, layer in enumerate(self.layers) if i in layer.sensor_idx) for i in range(nsens)]
        self._invariants = [tuple(x) for x in invariants]
        self._invariant_layers = tuple(layer for layer in self.layers if layer.category == Category.INVARIANT)
        pc = cfg.posture
        self._down, self._up = pc.thresholds_pct()
        self._dwell_ns = round(pc.min_upgrade_dwell_s * 1e9)
        self.ceiling: tuple[float, ...] = (pc.apex_leverage, pc.stalker_leverage, 0.0, 0.0)
        self.category_mult: list[float] = [1.0] * 6  # index 1..5 = Category
        self.r_total = 1.0
        self.r_pct = 100
        self.cap = APEX
        self.posture = int(Posture[pc.initial])
        self.killed = False
        self.kill_reason = ""
        self.kill_repeats = 0
        self.kill_sources: list[str] = []  # distinct sources of the latched kill, in order
        self._last_change_ns = now
        self._last_eval_ns = now
        # Ticks at times <= this are skipped (see the module docstring); reset by any input.
        self._quiet_until_ns = QUIET_NEVER
        self._stable = False  # the last _step kept the posture, also with the dwell met
        self._targets: list[float] = [1.0] * n  # the layers' targets at the last full tick (unclamped)
        self._layer_quiet: list[int] = [QUIET_NEVER] * n  # each layer's quiet_until_ns then
        self.exposure = self.r_total * self.ceiling[self.posture]

    # ------------------------------------------------------------------ inputs

    def sensor_index(self, name: str) -> int:
        """The board index of a sensor (KeyError names the unknown sensor)."""
        try:
            return self.board.index[name]
        except KeyError:
            raise KeyError(f"unknown sensor {name!r}; known: {sorted(self.board.index)}") from None

    def observe(self, name: str, value: float) -> None:
        self.observe_idx(self.sensor_index(name), value)

    def observe_idx(self, i: int, value: float) -> None:
        """Record a reading now; sample-hungry layers see it (a tighter posture cap acts at
        once, like the kill); invariants are checked at once."""
        now = self._clock.now_ns()
        quiet = self._quiet_until_ns
        self._quiet_until_ns = QUIET_NEVER
        value = self.board.set(i, value, now)  # a float (NaN when the reading has none)
        if quiet != QUIET_NEVER and self._reading_changes_nothing(i, now):
            self._quiet_until_ns = quiet
        for k, layer in self._samples[i]:
            layer.on_sample(i, value, now)
            lc = layer.cap
            if lc != self._caps[k]:
                self._note_cap(k, layer, lc, now)
                if lc > self.cap:
                    self.cap = lc
                    self._step(now, CAUSE_CAP)
        for layer in self._invariants[i]:
            if (not self.killed or layer.name not in self.kill_sources) and _violated(layer.target(now)):
                self.kill(layer.explain(now), source=layer.name)

    def _reading_changes_nothing(self, i: int, now: int) -> bool:
        """While quiet: True when every layer reading sensor ``i`` is a pure function of the
        readings (quiet forever at the last full tick, no samples) and keeps its target and cap
        (the same target gives the same clamped target, damped value, categories and posture)."""
        for k in self._readers[i]:
            layer = self.layers[k]
            if layer.WANTS_SAMPLES or self._layer_quiet[k] != QUIET_FOREVER:
                return False
            if layer.target(now) != self._targets[k] or layer.cap != self._caps[k]:
                return False  # (a NaN target never compares equal: not quiet)
        return True

    # ------------------------------------------------------------------ evaluation

    def tick(self) -> None:
        """Evaluate every layer at the clock's time and step the posture machine."""
        now = self._clock.now_ns()
        if now <= self._quiet_until_ns and self.on_step is None:
            self._last_eval_ns = now  # nothing can have changed since the last full tick
            return
        dt_ns = now - self._last_eval_ns
        self._last_eval_ns = now
        cats = [1.0] * 6
        cap = APEX
        violated: list[Layer] = []  # every violated invariant: each is a kill source
        settled = True  # every damped multiplier at its target
        for k, layer in enumerate(self.layers):
            t = self._targets[k] = layer.target(now)
            if _violated(t):  # NaN or non-positive
                t = 0.0
            elif t > 1.0:
                t = 1.0
            if self._undamped[k]:
                d = t
                if t == 0.0:
                    violated.append(layer)
            else:
                d = self.damped[k]
                d = t if t < d else min(t, d + self._rate_per_ns[k] * dt_ns)
                if d != t:
                    settled = False
            self.damped[k] = d
            cats[self._cat[k]] *= d
            lc = layer.cap
            if lc > cap:
                cap = lc
            if lc != self._caps[k]:
                self._note_cap(k, layer, lc, now)
            rep = self._reported[k]
            if d != rep and (abs(d - rep) >= self._step_frac or d == 1.0 or d == 0.0):
                self._reported[k] = d
                self.log.emit(
                    Event(ts_ns=now, kind="layer", subject=layer.name, old=f"{rep:.4f}", new=f"{d:.4f}",
                          reason=layer.explain(now), r_total=self.r_total, value=d)
                )
        for layer in violated:  # the first latches; the others while latched are new sources or nothing
            if not self.killed or layer.name not in self.kill_sources:
                self.kill(layer.explain(now), source=layer.name)
        if self.killed:
            cats[Category.INVARIANT] = 0.0
        self.category_mult = cats
        self.r_total = cats[1] * cats[2] * cats[3] * cats[4] * cats[5]
        self.r_pct = r_to_pct(self.r_total)
        self.cap = cap
        self._step(now, CAUSE_TICK)
        quiet = QUIET_NEVER
        if settled and self._stable and not self.killed:
            self._layer_quiet = [layer.quiet_until_ns(now) for layer in self.layers]
            quiet = min(self._layer_quiet, default=QUIET_NEVER)  # (validate() rejects a config with no layers)
        self._quiet_until_ns = quiet

    def _note_cap(self, k: int, layer: Layer, cap: int, now: int) -> None:
        old = self._caps[k]
        self._caps[k] = cap
        self.log.emit(Event(ts_ns=now, kind="cap", subject=layer.name, old=_NAMES[old], new=_NAMES[cap],
                            reason=layer.explain(now), r_total=self.r_total))

    def _step(self, now: int, cause: int) -> None:
        before = self.posture
        # A cap step sees the last tick's R_total: it may tighten, never upgrade.
        dwell_ok = cause != CAUSE_CAP and now - self._last_change_ns >= self._dwell_ns
        after = posture_step(before, self.r_pct, self.cap, self.killed, dwell_ok, self._down, self._up)
        # Stable: the same inputs give the same posture now and once the dwell is met.
        self._stable = after == before and (
            dwell_ok or posture_step(before, self.r_pct, self.cap, self.killed, True, self._down, self._up) == before
        )
        if self.on_step is not None:
            self.on_step(StepRecord(now, cause, self.r_pct, self.cap, self.killed, dwell_ok, before, after))
        if after != before:
            self.posture = after
            self._last_change_ns = now
            self.log.emit(Event(ts_ns=now, kind="posture", subject="posture", old=_NAMES[before], new=_NAMES[after],
                                reason=self._posture_reason(before, after), r_total=self.r_total))
            if RIGHTS[after].cancel_all:
                self.log.emit(Event(ts_ns=now, kind="cancel_all", subject="posture", new=_NAMES[after],
                                    reason="HIBERNATE cancels every open order", r_total=self.r_total))
        self.exposure = self.r_total * self.ceiling[self.posture]

    def _posture_reason(self, before: int, after: int) -> str:
        if self.killed:
            return f"invariant violation: {self.kill_reason}"
        names = ("apex", "stalker", "turtle")
        if after > before:
            if self.cap >= after:
                capping = [lay.name for lay, c in zip(self.layers, self._caps) if c == self.cap]
                return f"posture cap {_NAMES[self.cap]} from {', '.join(capping)}"
            b = after - 1
            return f"R_total {self.r_total:.4f} < {names[b]}_down {self._down[b] / 100:.2f}"
        b = after
        return f"R_total {self.r_total:.4f} >= {names[b]}_up {self._up[b] / 100:.2f} held, dwell met"

    # ------------------------------------------------------------------ kill path

    def kill(self, reason: str, *, source: str = "kill_switch") -> None:
        """Latch the kill: R_total = 0 and HIBERNATE now. Later calls are counted; one from a
        source not yet among ``kill_sources`` is recorded there and written as an event. The
        controller calls it for an invariant violated while latched only when its source is new."""
        if self.killed:
            self.kill_repeats += 1
            if source not in self.kill_sources:
                latched = ", ".join(self.kill_sources)
                self.kill_sources.append(source)
                self.log.emit(Event(ts_ns=self._clock.now_ns(), kind="kill", subject=source, old=f"latched by {latched}",
                                    reason=reason, r_total=0.0))  # fmt: skip
            return
        now = self._clock.now_ns()
        self._quiet_until_ns = QUIET_NEVER
        self.killed = True
        self.kill_reason = reason
        self.kill_sources = [source]
        self.category_mult[Category.INVARIANT] = 0.0
        self.r_total = 0.0
        self.r_pct = 0
        self.log.emit(Event(ts_ns=now, kind="kill", subject=source, reason=reason, r_total=0.0))
        self._step(now, CAUSE_KILL)

    def rearm(self, reason: str) -> bool:
        """Leave the kill latch when every invariant holds again; False (and an event) otherwise."""
        now = self._clock.now_ns()
        if not self.killed:
            self.log.emit(Event(ts_ns=now, kind="rearm_denied", subject="rearm", reason=f"not killed ({reason})"))
            return False
        bad = [layer.explain(now) for layer in self._invariant_layers if _violated(layer.target(now))]
        if bad:
            self.log.emit(Event(ts_ns=now, kind="rearm_denied", subject="rearm", reason="; ".join(bad), r_total=0.0))
            return False
        self.killed = False
        self.kill_reason = ""
        self.kill_sources = []
        self._quiet_until_ns = QUIET_NEVER
        self.log.emit(Event(ts_ns=now, kind="rearm", subject="rearm", reason=reason, r_total=0.0))
        self.tick()
        return True

    # ------------------------------------------------------------------ views

    @property
    def posture_name(self) -> str:
        return _NAMES[self.posture]

    def layer_multipliers(self) -> dict[str, float]:
        return {layer.name: d for layer, d in zip(self.layers, self.damped)}

    def snapshot(self) -> dict[str, object]:
        """A plain view for the grid / cockpit (not used on the hot path)."""
        return {
            "r_total": self.r_total,
            "posture": self.posture_name,
            "killed": self.killed,
            "cap": _NAMES[self.cap],
            "categories": {c.name: self.category_mult[c] for c in Category},
            "layers": self.layer_multipliers(),
        }

