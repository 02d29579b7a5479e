"""Survival-plane configuration: posture thresholds, sizing limits and the layer plug-ins."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import msgspec

from dolphin.core.config import ConfigError, ConfigStruct, Fraction, NonNegFloat, PosFloat, PosInt, require_finite

__all__ = ["LayerSpec", "PostureConfig", "SizerConfig", "SurvivalConfig", "default_layers"]

Leverage = Annotated[float, msgspec.Meta(ge=0.0, le=125.0)]
_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")


def _require_bounds(node: msgspec.Struct, where: str) -> None:
    """Every field under ``node`` (nested structs too) within its declared type and bounds
    (``Fraction``, ``PosFloat``, ``Leverage``, ...). msgspec checks them when it decodes a config,
    not when a struct is built in code, so a round trip through builtins does it here; the
    ConfigError names the first offending key (``where`` is its dotted prefix) and its value.
    It belongs in ``dolphin.core.config`` beside ``require_finite`` (another plane's file)."""
    try:
        raw = msgspec.to_builtins(node)
    except TypeError as exc:  # a value of no config type at all (msgspec does not say where)
        raise ConfigError(f"config key '{where}' is not allowed: {exc}") from None
    try:
        msgspec.convert(raw, type(node), strict=True)
    except msgspec.ValidationError as exc:
        text, _, at = str(exc).partition(" - at `$")
        key, value = where, node
        path = at.rstrip("`").partition("[...]")[0]  # msgspec does not name a dict's key: name the dict
        for name, index in _PATH_PART.findall(path):
            value = getattr(value, name) if name else value[int(index)]
            key += f".{name}" if name else f"[{index}]"
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed: {text}") from None


class LayerSpec(ConfigStruct):
    """One layer plug-in: where its class lives and how it is damped.

    ``path`` is ``"package.module:ClassName"``; the class declares its category and its sensor
    roles. ``sensors`` renames roles to board sensor names; ``deadbands`` overrides a role's
    deadband (in the sensor's unit, e.g. seconds of lag); ``options`` are the class's own typed
    options (converted into its ``Options`` struct, unknown keys rejected).
    """

    name: str
    path: str
    sensors: dict[str, str] = msgspec.field(default_factory=dict)
    deadbands: dict[str, NonNegFloat] = msgspec.field(default_factory=dict)
    decay_per_s: NonNegFloat = 0.0
    # Slow recovery: the damped multiplier rises by at most this much per minute (1 % = 0.01).
    recovery_per_min: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 0.01
    sensitivity: PosFloat = 1.0
    floor: Fraction = 0.0
    options: dict[str, float] = msgspec.field(default_factory=dict)


class PostureConfig(ConfigStruct):
    """Schmitt-trigger thresholds on R_total (drop below ``*_down``, come back at ``*_up``).

    Thresholds must lie on a 0.01 grid: the formal model works in whole percent.
    """

    apex_down: Fraction = 0.85
    apex_up: Fraction = 0.92
    stalker_down: Fraction = 0.55
    stalker_up: Fraction = 0.65
    turtle_down: Fraction = 0.20
    turtle_up: Fraction = 0.25
    # An upgrade (less restrictive posture) needs the current posture held this long.
    min_upgrade_dwell_s: NonNegFloat = 60.0
    initial: Literal["APEX", "STALKER", "TURTLE", "HIBERNATE"] = "HIBERNATE"
    apex_leverage: Leverage = 6.0
    stalker_leverage: Leverage = 2.0

    def thresholds_pct(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(down, up) per boundary in whole percent: boundary 0 = APEX|STALKER, 1, 2 = TURTLE|HIBERNATE."""
        down = (round(self.apex_down * 100), round(self.stalker_down * 100), round(self.turtle_down * 100))
        up = (round(self.apex_up * 100), round(self.stalker_up * 100), round(self.turtle_up * 100))
        return down, up

    def validate(self) -> None:
        require_finite(self, "survival.posture")
        _require_bounds(self, "survival.posture")
        names = ("apex_down", "apex_up", "stalker_down", "stalker_up", "turtle_down", "turtle_up")
        for name in names:
            v = getattr(self, name)
            if abs(v * 100 - round(v * 100)) > 1e-9 or round(v * 100) / 100 != v:
                raise ConfigError(f"config key 'survival.posture.{name}' = {v!r} is not allowed: must be a multiple of 0.01")
        for b in ("apex", "stalker", "turtle"):
            lo, hi = getattr(self, f"{b}_down"), getattr(self, f"{b}_up")
            if not lo < hi:
                raise ConfigError(
                    f"config key 'survival.posture.{b}_up' = {hi!r} is not allowed: must exceed {b}_down = {lo!r} (hysteresis)"
                )
        if not self.turtle_down > 0.0:
            raise ConfigError(
                f"config key 'survival.posture.turtle_down' = {self.turtle_down!r} is not allowed: must be > 0 "
                "(at 0 no R_total reaches HIBERNATE, only a kill would)"
            )
        if not (self.turtle_down < self.stalker_down < self.apex_down and self.turtle_up < self.stalker_up < self.apex_up):
            raise ConfigError(
                "config key 'survival.posture' is not allowed: thresholds must be ordered turtle < stalker < apex"
            )
        if self.stalker_leverage > self.apex_leverage:
            raise ConfigError(
                f"config key 'survival.posture.stalker_leverage' = {self.stalker_leverage!r} is not allowed: "
                f"must not exceed apex_leverage = {self.apex_leverage!r}"
            )


class SizerConfig(ConfigStruct):
    """AlphaBetSizer: notional = capital x base_fraction x R_total x posture leverage ceiling."""

    base_fraction: Fraction = 0.10
    venue_min_notional: NonNegFloat = 5.0
    venue_max_notional: PosFloat = 2_000_000.0
    venue_max_leverage: PosFloat = 20.0


_B = "dolphin.survival.layers.builtin:"
_LN2 = math.log(2.0)


def default_layers() -> tuple[LayerSpec, ...]:
    """The shipped layer set (L1-L9, ACB v6, RTT lockdown)."""
    return (
        LayerSpec(name="L1_grid_quorum", path=_B + "GridQuorumLayer"),
        LayerSpec(name="L2_ledger_integrity", path=_B + "LedgerIntegrityLayer"),
        LayerSpec(
            name="L3_mc_forewarner",
            path=_B + "McForewarnerLayer",
            deadbands={"mcf_zone": 600.0},
            decay_per_s=_LN2 / 7200.0,
        ),
        LayerSpec(
            name="L4_scan_heartbeat",
            path=_B + "ScanHeartbeatLayer",
            deadbands={"scan_heartbeat": 5.0},
            decay_per_s=_LN2 / 60.0,
        ),
        LayerSpec(name="L5_order_book", path=_B + "OrderBookLayer", floor=0.3),
        LayerSpec(name="L6_slippage_drift", path=_B + "SlippageDriftLayer", floor=0.3),
        LayerSpec(name="L7_external_factors", path=_B + "ExternalFactorsLayer", recovery_per_min=0.05),
        LayerSpec(name="L8_esoteric_factors", path=_B + "EsotericFactorsLayer", recovery_per_min=0.05),
        LayerSpec(name="L9_drawdown", path=_B + "DrawdownLayer"),
        LayerSpec(name="ACB_v6", path=_B + "AcbV6Layer", recovery_per_min=0.01),
        LayerSpec(name="RTT_lockdown", path=_B + "RttLockdownLayer"),
    )


class SurvivalConfig(ConfigStruct):
    """The survival controller: evaluation cadence, postures, sizing and layers."""

    tick_ms: PosInt = 1000
    # A layer change is an event when its damped multiplier moved this much since the last one.
    layer_event_step: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.05
    posture: PostureConfig = PostureConfig()
    sizer: SizerConfig = SizerConfig()
    layers: tuple[LayerSpec, ...] = msgspec.field(default_factory=default_layers)

    def validate(self) -> None:
        require_finite(self, "survival")
        _require_bounds(self, "survival")  # also for configs built in code (2026-12-06)
        self.posture.validate()
        if not self.layers:
            raise ConfigError(
                "config key 'survival.layers' = () is not allowed: at least one layer (a controller with no layers "
                "has no world model; a backtest keeps only the layers named in execution.backtest.survival_layers)"
            )
        seen: set[str] = set()
        for i, spec in enumerate(self.layers):
            if spec.name in seen:
                raise ConfigError(f"config key 'survival.layers[{i}].name' = {spec.name!r} is not allowed: duplicate layer name")
            seen.add(spec.name)
            if ":" not in spec.path:
                raise ConfigError(
                    f"config key 'survival.layers[{i}].path' = {spec.path!r} is not allowed: use 'package.module:ClassName'"
                )
