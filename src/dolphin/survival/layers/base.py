"""The layer plug-in interface.

A layer declares its category, its sensor roles (name, value before the first reading,
default deadband), and its own typed options; the controller owns damping (fast attack, slow
recovery), categories and postures. Adding a layer means writing a subclass and naming it in
config (``LayerSpec.path``); no controller code changes.
"""

from __future__ import annotations

import importlib
import math
from enum import IntEnum
from typing import ClassVar, NamedTuple

import msgspec

from dolphin.core.config import ConfigError, ConfigStruct, require_finite
from dolphin.survival.clock import NS_PER_S
from dolphin.survival.config import LayerSpec
from dolphin.survival.posture import APEX

__all__ = [
    "QUIET_FOREVER", "QUIET_NEVER", "Category", "Layer", "NoOptions", "SensorBoard", "SensorRole", "Valid", "build_layer",
    "reading_ok",
]  # fmt: skip


class Category(IntEnum):
    """The five categories; R_total is the product of their multipliers."""

    INVARIANT = 1  # binary, instantaneous, undamped
    STRUCTURAL = 2  # exponential decay after a grace period
    MICROSTRUCTURE = 3  # gradient; may shift posture to passive quoting
    ENVIRONMENTAL = 4  # impulse to a depth on a shock, linear recovery
    CAPITAL = 5  # sigmoid of drawdown


class Valid(NamedTuple):
    """The readings a value sensor can truly give: finite, ``lo <= value <= hi`` and, with
    ``whole``, a whole number (``Valid(0, 1, True)`` is {0, 1})."""

    lo: float = -math.inf
    hi: float = math.inf
    whole: bool = False


def reading_ok(value: float, valid: Valid) -> bool:
    """True when ``value`` is a reading ``valid`` allows (NaN and +/-inf never are)."""
    if not (valid.lo <= value <= valid.hi and -math.inf < value < math.inf):
        return False
    return not valid.whole or value == math.floor(value)


class SensorRole(NamedTuple):
    """A sensor input of a layer: its role name, value before any reading, default deadband,
    and the valid range of its readings (None: any value, a heartbeat whose receive time is
    the information). A reading outside the range is impossible: the board counts it and the
    layer sees it as unknown (``Layer.reading`` gives NaN), which every layer treats as the
    worst case."""

    role: str
    initial: float
    deadband: float = 0.0
    valid: Valid | None = None


class SensorBoard:
    """Latest value and receive time of every sensor, indexed by small integers.

    A sensor never read has timestamp ``start_ns`` (its staleness counts from start-up).
    ``ok[i]`` says the latest value is valid for every role reading the sensor (see
    ``SensorRole.valid``); ``invalid[i]`` counts the invalid readings received.
    """

    __slots__ = ("names", "index", "values", "ts_ns", "start_ns", "checks", "ok", "invalid")

    def __init__(self, start_ns: int) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.values: list[float] = []
        self.ts_ns: list[int] = []
        self.start_ns = start_ns
        self.checks: list[tuple[Valid, ...]] = []
        self.ok: list[bool] = []
        self.invalid: list[int] = []

    def register(self, name: str, initial: float, valid: Valid | None = None) -> int:
        i = self.index.get(name)
        if i is None:
            i = len(self.names)
            self.index[name] = i
            self.names.append(name)
            self.values.append(float(initial))
            self.ts_ns.append(self.start_ns)
            self.checks.append(())
            self.ok.append(True)
            self.invalid.append(0)
        if valid is not None and valid not in self.checks[i]:
            self.checks[i] += (valid,)
            self.ok[i] = self.ok[i] and reading_ok(self.values[i], valid)
        return i

    def set(self, i: int, value: float, now_ns: int) -> float:
        """Record a reading received at ``now_ns``; returns the float stored.

        A value that is not a float is converted first, before any state changes; one that has no
        float value (None, a string that is no number, an object) is stored as NaN and counted as an
        invalid reading for every sensor (a heartbeat too: it still arrived). It had been stored as
        it was, with ``ok`` unchanged, and the range check raised TypeError, so every later tick
        raised inside the layer and nothing could lower R_total (found in review 2026-12-06).
        """
        ok = True
        if type(value) is not float:
            try:
                value = float(value)
            except (TypeError, ValueError, OverflowError):
                value = math.nan
                ok = False
        self.values[i] = value
        self.ts_ns[i] = now_ns
        if ok:
            for valid in self.checks[i]:
                if not reading_ok(value, valid):
                    ok = False
                    break
        if not ok:
            self.invalid[i] += 1
        self.ok[i] = ok
        return value

    def staleness_s(self, i: int, now_ns: int) -> float:
        return (now_ns - self.ts_ns[i]) / NS_PER_S


# Layer.quiet_until_ns: never quiet (re-evaluate at every tick) / quiet until a new reading.
QUIET_NEVER = -(2**63)
QUIET_FOREVER = 2**63 - 1


class NoOptions(ConfigStruct):
    """Options of a layer that has none."""


class Layer:
    """Base class of every layer. Subclasses set the class attributes and ``target``.

    ``target(now_ns)`` returns the undamped multiplier in [0, 1]; ``cap`` is the most
    permissive posture the layer allows right now (APEX = no cap); ``explain`` says why, and
    is only called when an event is written.
    """

    category: ClassVar[Category]
    SENSORS: ClassVar[tuple[SensorRole, ...]]
    Options: ClassVar[type[ConfigStruct]] = NoOptions
    # Layers that need every reading (not just the latest) get on_sample calls.
    WANTS_SAMPLES: ClassVar[bool] = False

    def __init__(self, spec: LayerSpec, board: SensorBoard) -> None:
        self.name = spec.name
        self.spec = spec
        self.board = board
        roles = {r.role for r in self.SENSORS}
        for key in list(spec.sensors) + list(spec.deadbands):
            if key not in roles:
                raise ConfigError(
                    f"config key 'survival.layers.{spec.name}' sensor role {key!r} is not allowed: "
                    f"{type(self).__name__} has roles {sorted(roles)}"
                )
        self.sensor_idx: tuple[int, ...] = tuple(
            board.register(spec.sensors.get(r.role, r.role), r.initial, r.valid) for r in self.SENSORS
        )
        self.deadband: tuple[float, ...] = tuple(spec.deadbands.get(r.role, r.deadband) for r in self.SENSORS)
        try:
            self.options = msgspec.convert(spec.options, self.Options, strict=False)
        except msgspec.ValidationError as exc:
            text, _, at = str(exc).partition(" - at `$.")
            key = at.rstrip("`")
            if key in spec.options:  # name the option and its value
                raise ConfigError(
                    f"config key 'survival.layers.{spec.name}.options.{key}' = {spec.options[key]!r} is not allowed: {text}"
                ) from None
            raise ConfigError(f"config key 'survival.layers.{spec.name}.options' is not allowed: {exc}") from None
        require_finite(self.options, f"survival.layers.{spec.name}.options")
        self.cap = APEX

    def target(self, now_ns: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def explain(self, now_ns: int) -> str:  # pragma: no cover - overridden by every shipped layer
        return f"{self.name} multiplier {self.target(now_ns):.3f}"

    def on_sample(self, sensor: int, value: float, now_ns: int) -> None:
        """Called for every reading of one of this layer's sensors when WANTS_SAMPLES is set."""

    def quiet_until_ns(self, now_ns: int) -> int:
        """The latest time up to which, without a new reading, ``target`` and ``cap`` stay exactly
        what they were at ``now_ns`` (called right after ``target(now_ns)``).

        The controller skips the evaluation of a tick only while every layer is quiet. The
        default, ``QUIET_NEVER``, is always safe: a layer that reads time (staleness, windows,
        holds) keeps it unless it can say exactly when its result could next change.
        ``QUIET_FOREVER`` promises more: ``target`` is a pure function of the board's readings (no
        time, no state of its own), so the controller may evaluate it when a reading arrives.
        """
        return QUIET_NEVER

    def value(self, k: int) -> float:
        """The latest raw reading of sensor role ``k`` (also an invalid one: for explanations)."""
        return self.board.values[self.sensor_idx[k]]

    def reading(self, k: int) -> float:
        """The latest reading of role ``k`` when it is valid, else NaN (unknown: worst case)."""
        i = self.sensor_idx[k]
        return self.board.values[i] if self.board.ok[i] else math.nan

    @property
    def invalid_readings(self) -> int:
        """Invalid readings received so far on this layer's sensors."""
        return sum(self.board.invalid[i] for i in self.sensor_idx)

    def invalid_note(self) -> str:
        """", N invalid readings so far" for an explanation (empty when there were none)."""
        n = self.invalid_readings
        return f", {n} invalid readings so far" if n else ""

    def staleness_s(self, k: int, now_ns: int) -> float:
        return self.board.staleness_s(self.sensor_idx[k], now_ns)


def build_layer(spec: LayerSpec, board: SensorBoard) -> Layer:
    """Import ``spec.path`` ("module:Class"), check it is a Layer, and build it."""
    module_name, _, cls_name = spec.path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"config key 'survival.layers.{spec.name}.path' = {spec.path!r} is not allowed: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ConfigError(
            f"config key 'survival.layers.{spec.name}.path' = {spec.path!r} is not allowed: not a Layer subclass"
        )
    return cls(spec, board)
