"""Configuration of Sonar, the eigenvalue regime scanner (``[scan]`` in the config tree)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from dolphin.core.config import ConfigError, ConfigStruct, Fraction, NonNegInt, PosFloat, PosInt

__all__ = ["GateConfig", "RegimeConfig", "ScanConfig"]

WindowBars = Annotated[int, msgspec.Meta(ge=3, le=100_000)]


class RegimeConfig(ConfigStruct):
    """The written ATTACK / VETO rule (see docs/decisions/0001-scan-regime-rule.md).

    ATTACK iff all of:
      1. the zero-trust gate passed (every input verified);
      2. every window is warm (holds ``W`` returns) and has at least ``min_assets`` eligible assets;
      3. structure: lambda_max of the structure window is at least ``min_signal_ratio`` times its
         Marchenko-Pastur edge (the market mode is signal, not noise);
      4. stability: ``instability`` (the largest |v_W| over all windows) is at most ``max_instability``.
    Otherwise VETO, and the record lists which clauses failed.

    ``entries_need_attack``: the Oracle sees no vel_div (so proposes no entry) on a VETO scan;
    off only for research on the ungated signal (exits and risk are never gated by the regime).
    """

    max_instability: PosFloat = 0.10
    min_signal_ratio: PosFloat = 1.0
    structure_window: PosInt = 150
    min_assets: Annotated[int, msgspec.Meta(ge=2)] = 5
    entries_need_attack: bool = True


class GateConfig(ConfigStruct):
    """The zero-trust gate in front of ATTACK: deadbands and completeness floors."""

    # A bar older than this (scan clock minus bar close time) is stale.
    bar_deadband_ns: PosInt = 10_000_000_000
    # Fraction of the universe that must have a real bar on the scanned bar.
    min_bar_completeness: Fraction = 0.8
    # Fraction of the universe that must be eligible in every window.
    min_window_completeness: Fraction = 0.5


class ScanConfig(ConfigStruct):
    """Sonar: windows, velocities, exactness controls and data-quality rules."""

    windows: list[WindowBars] = msgspec.field(default_factory=lambda: [50, 150, 300, 750])
    # Velocity v_W(t) = (lmax_W(t) - lmax_W(t-k)) / lmax_W(t-k), k = velocity_lag_bars.
    velocity_lag_bars: PosInt = 1
    vel_div_short: PosInt = 50
    vel_div_long: PosInt = 150
    # Absorption ratio: share of the variance absorbed by the top fraction of eigenvalues.
    absorption_frac: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.2
    # An asset enters a window's correlation only with at least this fraction of real returns.
    min_coverage: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.9
    # An asset whose return variance in the window is at or below this is zero-variance (excluded).
    min_return_var: PosFloat = 1e-18
    # Linear shrinkage toward the identity applied when a window is singular (N_eff >= W).
    singular_shrinkage: Fraction = 0.05
    # Lanczos: relative error target of the certified bound, and the step cap before exact fallback.
    lanczos_tol_rel: PosFloat = 1e-11
    lanczos_max_steps: Annotated[int, msgspec.Meta(ge=2, le=64)] = 24
    # Shift certificate (docs/decisions/0003): when trace and Frobenius cannot separate lambda_max
    # from the rest (several comparable market modes), a converged Ritz value is proven by one
    # Cholesky factorisation of sigma I - C; its relative error target (rounding of an n x n
    # Cholesky alone is ~ n u trace / lambda_max, ~2e-11 at N = 400). Off: the exact solver instead.
    shift_certificate: bool = True
    shift_tol_rel: Annotated[float, msgspec.Meta(gt=0.0, le=1e-9)] = 1e-10
    # Exact re-anchoring: recompute the window sums from the buffer every this many bars, and
    # check the iterative lambda_max against eigvalsh every this many bars (0 disables a check).
    resum_every_bars: PosInt = 256
    exact_check_every_bars: NonNegInt = 1024
    # Signal path only (lambda_max, velocities, vel_div) or full (also exact entropy, absorption).
    full_spectrum: bool = True
    regime: RegimeConfig = RegimeConfig()
    gate: GateConfig = GateConfig()

    def validate(self) -> None:
        if len(self.windows) == 0:
            raise ConfigError("config key 'scan.windows' = [] is not allowed: at least one window")
        if len(set(self.windows)) != len(self.windows):
            raise ConfigError(f"config key 'scan.windows' = {self.windows!r} is not allowed: duplicates")
        for key in ("vel_div_short", "vel_div_long"):
            value = getattr(self, key)
            if value not in self.windows:
                raise ConfigError(
                    f"config key 'scan.{key}' = {value!r} is not allowed: must be one of scan.windows {self.windows!r}"
                )
        if self.regime.structure_window not in self.windows:
            raise ConfigError(
                f"config key 'scan.regime.structure_window' = {self.regime.structure_window!r} is not allowed:"
                f" must be one of scan.windows {self.windows!r}"
            )
