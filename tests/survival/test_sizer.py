"""AlphaBetSizer and the order gate: the formula, venue bounds, denials as events."""

from __future__ import annotations

import math

import pytest
from _survival_support import make, run_healthy
from hypothesis import given
from hypothesis import strategies as st

from dolphin.survival.clock import ManualClock
from dolphin.survival.config import SizerConfig, SurvivalConfig
from dolphin.survival.events import EventLog
from dolphin.survival.posture import APEX, HIBERNATE, STALKER, TURTLE, OrderKind
from dolphin.survival.sizer import MAX_CAPITAL, AlphaBetSizer, Denial


def _sizer(cfg: SizerConfig | None = None, **kw: object):  # type: ignore[no-untyped-def]
    ctl, clock, _ = make(**kw)  # type: ignore[arg-type]
    run_healthy(ctl, clock, 2)
    return AlphaBetSizer(cfg or SizerConfig(), ctl, clock), ctl, clock


def test_notional_is_capital_times_base_times_r_times_ceiling() -> None:
    sz, ctl, clock = _sizer()
    assert ctl.posture == APEX and sz.size_entry(10_000.0, taker=True) == 10_000.0 * 0.10 * 1.0 * 6.0
    run_healthy(ctl, clock, 1, drawdown_frac=0.15)  # R drops below 0.85 -> STALKER, ceiling 2x
    assert ctl.posture == STALKER
    expected = 10_000.0 * 0.10 * ctl.r_total * 2.0
    assert math.isclose(sz.size_entry(10_000.0), expected)
    assert sz.size_entry(10_000.0, taker=True) == 0.0 and sz.last_denial == Denial.LIMIT_ONLY


def test_venue_bounds() -> None:
    sz, _, _ = _sizer(SizerConfig(base_fraction=1.0, venue_max_notional=50_000.0, venue_max_leverage=3.0, venue_min_notional=10.0))
    assert sz.size_entry(1_000.0) == 3_000.0  # 6x ceiling bounded by the venue's 3x leverage
    assert sz.size_entry(1_000_000.0) == 50_000.0  # bounded by the venue's maximum notional
    assert sz.size_entry(1.0) == 0.0 and sz.last_denial == Denial.BELOW_VENUE_MIN


def test_gross_allowance_is_the_posture_ceiling_on_the_whole_account() -> None:
    """All positions together may hold capital x R_total x ceiling (at most the venue's leverage);
    one entry gets base_fraction of it; nothing where an entry is denied, without an event."""
    sz, ctl, clock = _sizer()
    assert ctl.posture == APEX and sz.gross_allowance(10_000.0) == 10_000.0 * 1.0 * 6.0
    assert sz.size_entry(10_000.0) == 0.10 * sz.gross_allowance(10_000.0)
    run_healthy(ctl, clock, 1, drawdown_frac=0.15)
    assert ctl.posture == STALKER and math.isclose(sz.gross_allowance(10_000.0), 10_000.0 * ctl.r_total * 2.0)
    capped, _, _ = _sizer(SizerConfig(venue_max_leverage=3.0))
    assert capped.gross_allowance(1_000.0) == 3_000.0
    for bad in (0.0, -1.0, math.nan, math.inf):
        assert sz.gross_allowance(bad) == 0.0
    denials = sz.denials
    run_healthy(ctl, clock, 1, drawdown_frac=0.25)
    assert ctl.posture == TURTLE and sz.gross_allowance(10_000.0) == 0.0
    ctl.kill("test kill")
    assert sz.gross_allowance(10_000.0) == 0.0 and sz.denials == denials


def test_every_denial_is_an_event_with_a_reason_never_an_exception() -> None:
    sz, ctl, clock = _sizer()
    for bad in (0.0, -5.0, float("nan")):
        assert sz.size_entry(bad) == 0.0 and sz.last_denial == Denial.BAD_CAPITAL
    run_healthy(ctl, clock, 1, drawdown_frac=0.25)
    assert ctl.posture == TURTLE
    assert sz.size_entry(10_000.0) == 0.0 and sz.last_denial == Denial.EXIT_ONLY
    assert sz.check(OrderKind.EXIT) and sz.check(OrderKind.CANCEL)
    ctl.kill("test kill")
    assert sz.size_entry(10_000.0) == 0.0 and sz.last_denial == Denial.KILLED
    assert not sz.check(OrderKind.EXIT) and sz.check(OrderKind.CANCEL)
    denials = ctl.log.of_kind("denial")
    assert len(denials) == sz.denials == 6
    assert {d.new for d in denials} == {"BAD_CAPITAL", "EXIT_ONLY", "KILLED"}
    assert all(d.reason for d in denials)


def test_hibernate_without_kill_denies_everything_but_cancels() -> None:
    clock = ManualClock(0)
    log = EventLog()
    ctl, clock, _ = make(initial="HIBERNATE")
    sz = AlphaBetSizer(SizerConfig(), ctl, clock, log)
    assert ctl.posture == HIBERNATE and not ctl.killed
    assert sz.size_entry(10_000.0) == 0.0 and sz.last_denial == Denial.HIBERNATE
    assert not sz.check(OrderKind.EXIT, taker=False) and sz.check(OrderKind.CANCEL)
    assert [e.new for e in log.of_kind("denial")] == ["HIBERNATE", "HIBERNATE"]


@given(st.floats(min_value=1.0, max_value=1e9), st.floats(min_value=0.0, max_value=0.5), st.booleans())
def test_property_notional_within_bounds_and_zero_or_positive(capital: float, dd: float, taker: bool) -> None:
    sz, ctl, clock = _sizer()
    run_healthy(ctl, clock, 1, drawdown_frac=dd)
    n = sz.size_entry(capital, taker)
    cfg = SurvivalConfig().sizer
    if n:
        assert cfg.venue_min_notional <= n <= min(cfg.venue_max_notional, capital * cfg.venue_max_leverage)
        assert n <= capital * cfg.base_fraction * ctl.r_total * ctl.ceiling[ctl.posture] + 1e-6
    else:
        assert sz.denials >= 1


def test_infinite_or_absurd_capital_is_denied_not_sized_at_the_venue_maximum() -> None:
    """inf and 1e300 used to size the venue's maximum order (only NaN / <= 0 were refused)."""
    sz, _, _ = _sizer()
    for bad in (math.inf, -math.inf, 1e300, MAX_CAPITAL * 10):
        assert sz.size_entry(bad, taker=True) == 0.0 and sz.last_denial == Denial.BAD_CAPITAL
    assert sz.size_entry(MAX_CAPITAL, taker=True) == SurvivalConfig().sizer.venue_max_notional  # the largest valid


@pytest.mark.parametrize("exposure", [math.nan, math.inf, -1.0])
def test_a_non_finite_or_negative_exposure_is_denied(exposure: float) -> None:
    sz, ctl, _ = _sizer()
    ctl.exposure = exposure  # e.g. a NaN multiplier that reached R_total
    assert sz.size_entry(10_000.0, taker=True) == 0.0 and sz.last_denial == Denial.BAD_EXPOSURE
    assert "exposure" in ctl.log.of_kind("denial")[-1].reason
    assert sz.gross_allowance(10_000.0) == 0.0  # nor does the account get an allowance


_odd = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300])


@given(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(1.0, 1e9), _odd),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0.0, 6.0), _odd),
    st.booleans(),
)
def test_property_size_entry_is_zero_or_a_finite_notional_within_the_venue_bounds(
    capital: float, exposure: float, taker: bool
) -> None:
    """Whatever the capital and the exposure (NaN, inf, negative, huge), the result is 0.0 (a
    counted denial) or a finite notional within the venue's bounds; never NaN or inf."""
    sz, ctl, _ = _sizer()
    ctl.exposure = exposure
    before = sz.denials
    n = sz.size_entry(capital, taker)
    cfg = SurvivalConfig().sizer
    assert math.isfinite(n)
    if n:
        assert cfg.venue_min_notional <= n <= cfg.venue_max_notional and n <= capital * cfg.venue_max_leverage
    else:
        assert sz.denials == before + 1
