"""Property tests of the category response profiles (pure kernels)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from dolphin.survival.kernels import capital_sigmoid_mult, gradient_mult, impulse_mult, invariant_mult, structural_mult

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
pos = st.floats(min_value=1e-6, max_value=1e4, allow_nan=False)
frac = st.floats(min_value=0.0, max_value=1.0)


def test_invariant_is_binary() -> None:
    assert invariant_mult(True) == 1.0 and invariant_mult(False) == 0.0


@given(finite, finite, st.floats(min_value=0.0, max_value=10.0), st.floats(min_value=0.0, max_value=1e4))
def test_structural_in_unit_interval_and_non_increasing(a: float, b: float, decay: float, grace: float) -> None:
    lo, hi = min(a, b), max(a, b)
    m_lo, m_hi = structural_mult(lo, grace, decay), structural_mult(hi, grace, decay)
    assert 0.0 <= m_hi <= m_lo <= 1.0
    assert structural_mult(grace, grace, decay) == 1.0


def test_structural_is_the_exponential_after_grace() -> None:
    assert math.isclose(structural_mult(700.0, 600.0, 0.01), math.exp(-1.0))


@given(finite, finite, finite, pos, frac)
def test_gradient_in_range_and_non_increasing(a: float, b: float, deadband: float, span: float, floor: float) -> None:
    lo, hi = min(a, b), max(a, b)
    m_lo, m_hi = gradient_mult(lo, deadband, span, floor), gradient_mult(hi, deadband, span, floor)
    assert floor - 1e-12 <= m_hi <= m_lo <= 1.0


def test_gradient_ignores_the_deadband_and_counts_nan_as_worst() -> None:
    assert gradient_mult(0.199, 0.2, 5.0, 0.3) == 1.0  # 199 ms lag inside a 200 ms deadband
    assert gradient_mult(2.7, 0.2, 5.0, 0.3) == 1.0 - 0.7 * 0.5
    assert gradient_mult(float("nan"), 0.2, 5.0, 0.3) == 0.3


def test_impulse_drops_to_depth_and_recovers_linearly_over_the_window() -> None:
    assert impulse_mult(-1.0, 0.3, 3600.0) == 1.0
    assert impulse_mult(0.0, 0.3, 3600.0) == 0.3
    assert math.isclose(impulse_mult(1800.0, 0.3, 3600.0), 0.65)
    assert impulse_mult(3600.0, 0.3, 3600.0) == 1.0


@given(frac, frac, st.floats(min_value=0.1, max_value=100.0), st.floats(min_value=0.01, max_value=0.9))
def test_capital_sigmoid_non_increasing_in_drawdown(a: float, b: float, k: float, mid: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert 0.0 <= capital_sigmoid_mult(hi, k, mid) <= capital_sigmoid_mult(lo, k, mid) <= 1.0


def test_capital_sigmoid_shape() -> None:
    assert capital_sigmoid_mult(0.0, 20.0, 0.2) == 1.0
    raw = lambda dd: 1.0 / (1.0 + math.exp(20.0 * (dd - 0.2)))  # noqa: E731
    assert math.isclose(capital_sigmoid_mult(0.2, 20.0, 0.2), raw(0.2) / raw(0.0))
    assert capital_sigmoid_mult(float("nan"), 20.0, 0.2) == 0.0
    assert capital_sigmoid_mult(1e9, 20.0, 0.2) == 0.0


def _model(dd: float, k: float, mid: float) -> float:
    """The DESIGN's 1/(1+exp(k(DD - DD_mid))), normalised at DD = 0 (written out, not the kernel)."""
    return (1.0 / (1.0 + math.exp(k * (dd - mid)))) / (1.0 / (1.0 + math.exp(-k * mid)))


@given(frac, st.floats(min_value=0.0, max_value=0.5), st.floats(min_value=0.1, max_value=100.0),
       st.floats(min_value=0.01, max_value=0.9))  # fmt: skip
def test_capital_sigmoid_deadband_is_flat_then_the_unshifted_model(dd: float, db: float, k: float, mid: float) -> None:
    """1 while DD <= deadband, else the model at DD itself: the deadband never moves the midpoint."""
    m = capital_sigmoid_mult(dd, k, mid, db)
    if dd <= db:
        assert m == 1.0
    else:
        assert m == capital_sigmoid_mult(dd, k, mid)
        assert math.isclose(m, min(1.0, _model(dd, k, mid)), rel_tol=1e-9, abs_tol=1e-300)
    assert capital_sigmoid_mult(float("nan"), k, mid, db) == 0.0
    assert m >= capital_sigmoid_mult(min(1.0, dd + 0.01), k, mid, db)  # still non-increasing in DD

