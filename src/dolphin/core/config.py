"""One typed, frozen configuration tree for dolphin.

Loading order: defaults in the structs below -> a TOML file -> environment overrides
``DOLPHIN__SECTION__KEY=value`` (double underscore separates levels; the value is parsed
as TOML so ``DOLPHIN__SCAN__WINDOWS=[50,150]`` works).

Unknown keys and out-of-range values are rejected at load with a :class:`ConfigError`
that names the key, the value and what is allowed. Typing is strict: a string is never
coerced to a number or a boolean (``seed = "42"`` is refused), and every float in the tree
must be finite (NaN and +/-inf are refused for every float key, bounded or not). Secrets never live in the file: they
come from the environment only (:class:`Secrets`) and are masked in every repr/str.

Each plane defines its own ``XxxConfig`` struct next to its code and adds one field to
:class:`DolphinConfig`.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping

import msgspec

__all__ = [
    "ConfigError",
    "ConfigStruct",
    "DataConfig",
    "DolphinConfig",
    "NonNegFloat",
    "NonNegInt",
    "PosFloat",
    "PosInt",
    "Fraction",
    "SecretStr",
    "Secrets",
    "load_config",
    "require_finite",
    "validate_config",
]

PosInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PosFloat = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0.0)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]

ENV_PREFIX = "DOLPHIN__"


class ConfigError(ValueError):
    """Raised when configuration cannot be loaded; the message names key, value and rule."""


class ConfigStruct(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base for every config section: keyword-only, immutable, unknown keys rejected."""

    def validate(self) -> None:  # pragma: no cover - overridden where cross-field rules exist
        """Cross-field checks; raise ConfigError with key, value and rule."""


def require_finite(node: Any, where: str) -> None:
    """Every float in the tree under ``node`` (a float, a struct, a tuple/list, a dict) must be
    finite; msgspec's bounds let +/-inf through (and NaN where a field has no bound), so this pass
    names the first offending key (``where`` is its dotted prefix). Planes call it from their
    ``validate`` for configs built in code, which ``load_config``'s pass never sees."""
    if isinstance(node, float):
        if not math.isfinite(node):
            raise ConfigError(f"config key '{where}' = {node!r} is not allowed: must be a finite number")
    elif isinstance(node, msgspec.Struct):
        for name in node.__struct_fields__:
            require_finite(getattr(node, name), f"{where}.{name}" if where else name)
    elif isinstance(node, (tuple, list)):
        for i, item in enumerate(node):
            require_finite(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        for key, item in node.items():
            require_finite(item, f"{where}.{key}")


class DataConfig(ConfigStruct):
    """The market-data plane: catalog location, ingestion and alignment defaults."""

    catalog_dir: str = "var/catalog"
    quarantine_dir: str = "var/quarantine"
    sample_dir: str = "data/sample"
    shared_data_dir: str = "../shared/data"
    # A gap is reported when consecutive bars are further apart than this many bar intervals.
    gap_tolerance_bars: Annotated[float, msgspec.Meta(ge=1.0)] = 1.0
    default_bar: Literal["5s", "1m", "5m"] = "1m"
    # Rows per Parquet row group in the cold store.
    row_group_size: Annotated[int, msgspec.Meta(ge=1024, le=16_777_216)] = 262_144


# Plane sections: imported here, after ConfigStruct exists, because each plane's config module
# subclasses it; every plane package imports dolphin.core.config first, so either order works.
from dolphin.alpha.config import AlphaConfig  # noqa: E402
from dolphin.execution.config import ExecutionConfig  # noqa: E402
from dolphin.grid.config import GridConfig  # noqa: E402
from dolphin.runtime.config import PaperConfig  # noqa: E402
from dolphin.scan.config import ScanConfig  # noqa: E402


class DolphinConfig(ConfigStruct):
    """The root of the configuration tree."""

    mode: Literal["backtest", "paper", "live"] = "paper"
    data: DataConfig = DataConfig()
    grid: GridConfig = GridConfig()
    survival: SurvivalConfig = msgspec.field(default_factory=lambda: SurvivalConfig())
    execution: ExecutionConfig = ExecutionConfig()
    alpha: AlphaConfig = AlphaConfig()
    scan: ScanConfig = ScanConfig()
    paper: PaperConfig = PaperConfig()

    def validate(self) -> None:
        for name in self.__struct_fields__:
            section = getattr(self, name)
            if isinstance(section, ConfigStruct):
                section.validate()
        bt = self.execution.backtest
        symbols = bt.symbols
        if not symbols or not all(s.strip() for s in symbols):
            raise ConfigError(
                f"config key 'execution.backtest.symbols' = {list(symbols)!r} is not allowed: "
                "at least one symbol, none empty"
            )
        for key, names in (("symbols", symbols), ("scan_universe", bt.scan_universe)):
            # a repeated symbol would feed its bars to the engine (and the scanner) twice
            seen = [s.strip().upper() for s in names]
            dup = sorted({s for s in seen if seen.count(s) > 1})
            if dup:
                raise ConfigError(
                    f"config key 'execution.backtest.{key}' = {list(names)!r} is not allowed: "
                    f"{', '.join(dup)} listed more than once"
                )
        # One fee schedule: the simulated venue's fees (execution.backtest) are the ones the NEV gate
        # assumes (alpha.nev.fees), the taxed side included (review 2026-12-06: a venue-only tax of
        # 10 bps left the gate's NEV unchanged while every trade paid 20 bps; a sell-side tax in the
        # gate was charged on both legs by the venue. The venue now taxes by side: execution.fees).
        fees = self.alpha.nev.fees
        for key, venue_v, gate_key, gate_v in (("maker_fee_bps", bt.maker_fee_bps, "maker_bps", fees.maker_bps),
                                               ("taker_fee_bps", bt.taker_fee_bps, "taker_bps", fees.taker_bps),
                                               ("tax_bps", bt.tax_bps, "tax_bps", fees.tax_bps)):  # fmt: skip
            if venue_v != gate_v:
                raise ConfigError(
                    f"config key 'execution.backtest.{key}' = {venue_v!r} is not allowed: the NEV gate assumes "
                    f"alpha.nev.fees.{gate_key} = {gate_v!r}; set both to the venue's fee"
                )
        if bt.tax_bps > 0 and bt.tax_side != fees.tax_side:
            raise ConfigError(
                f"config key 'execution.backtest.tax_side' = {bt.tax_side!r} is not allowed: the NEV gate "
                f"taxes alpha.nev.fees.tax_side = {fees.tax_side!r} (tax_bps = {bt.tax_bps:g}); set both to the "
                "side the venue taxes"
            )
        # The backtest's survival controller runs these layers: at least one, each configured
        # (an empty set crashed the controller; an unknown name failed only when a backtest began).
        known = {spec.name for spec in self.survival.layers}
        unknown = sorted(set(bt.survival_layers) - known)
        if not bt.survival_layers or unknown:
            raise ConfigError(
                f"config key 'execution.backtest.survival_layers' = {list(bt.survival_layers)!r} is not allowed: "
                + (f"{unknown} are not among survival.layers {sorted(known)}" if unknown else
                   "a backtest needs at least one survival layer")
            )


# --------------------------------------------------------------------------- secrets


class SecretStr:
    """A secret string: never shown by repr/str/format; read it with :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('***')" if self._value else "SecretStr('')"

    def __str__(self) -> str:
        return "***" if self._value else ""

    def __format__(self, spec: str) -> str:
        return str(self)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretStr", self._value))

    def __reduce__(self) -> Any:  # refuse to pickle a secret into logs or files by accident
        raise TypeError("SecretStr cannot be pickled")


@dataclass(frozen=True, repr=False)
class Secrets:
    """Credentials, from the environment only (never from a file, never logged)."""

    binance_api_key: SecretStr = SecretStr("")
    binance_api_secret: SecretStr = SecretStr("")

    ENV_NAMES: ClassVar[dict[str, str]] = {
        "binance_api_key": "DOLPHIN_BINANCE_API_KEY",
        "binance_api_secret": "DOLPHIN_BINANCE_API_SECRET",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Secrets":
        env = os.environ if environ is None else environ
        return cls(**{field: SecretStr(env.get(var, "")) for field, var in cls.ENV_NAMES.items()})

    def __repr__(self) -> str:
        return "Secrets(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.ENV_NAMES) + ")"


# --------------------------------------------------------------------------- loading


def _lookup(raw: Any, path: list[str | int]) -> Any:
    node = raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return node


def _parse_msgspec_path(message: str) -> tuple[str, list[str | int]]:
    # msgspec messages end with " - at `$.scan.windows[0]`".
    marker = " - at `$"
    if marker not in message:
        return message, []
    text, _, where = message.partition(marker)
    where = where.rstrip("`")
    parts: list[str | int] = []
    for token in where.replace("]", "").split("."):
        if not token:
            continue
        name, *indices = token.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indices)
    return text, parts


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in var[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(f"environment override {var}: empty key segment")
        raw = environ[var]
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment override {var}: {key} is not a section")
        node[keys[-1]] = value
    return out


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _convert(raw: Any) -> DolphinConfig:
    """Typed, strict conversion of a raw tree plus every check; ConfigError names key and value."""
    try:
        # strict: no str -> number / bool coercion (the environment overrides are parsed as TOML
        # already, so `DOLPHIN__SCAN__WINDOWS=[50,150]` arrives as a list of ints).
        cfg = msgspec.convert(raw, DolphinConfig, strict=True)
    except msgspec.ValidationError as exc:
        text, where = _parse_msgspec_path(str(exc))
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".") or "<root>"
        if text.startswith("Object contains unknown field"):
            bad = text.split("`")[1] if "`" in text else "?"
            full = f"{key}.{bad}" if where else bad
            raise ConfigError(f"unknown config key '{full}' (not allowed; check spelling)") from None
        value = _lookup(raw, where)
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed: {text}") from None
    require_finite(cfg, "")
    cfg.validate()
    return cfg


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DolphinConfig:
    """Load the config tree: defaults <- TOML file <- environment <- explicit overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {p} is not UTF-8 text: {exc}") from None
        except OSError as exc:  # a directory, no permission, an I/O error (review 2026-12-06: a traceback)
            raise ConfigError(f"config file {p} cannot be read: {exc.strerror or exc}") from None
    raw = _deep_merge(raw, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        raw = _deep_merge(raw, overrides)
    return _convert(raw)


def validate_config(cfg: DolphinConfig) -> DolphinConfig:
    """Re-check a tree built in code (e.g. ``msgspec.structs.replace`` with CLI overrides, which
    bypasses msgspec's constraints): the same rules and messages as :func:`load_config`."""
    return _convert(msgspec.to_builtins(cfg))


# Plane sections subclass ConfigStruct, so they are imported after it is defined (each plane's
# package __init__ imports this module first, which breaks the cycle from either side).
from dolphin.survival.config import SurvivalConfig  # noqa: E402
