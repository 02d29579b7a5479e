"""Property tests (hypothesis) of Sonar's kernels on GENERATED data (labelled: not market data)."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dolphin.scan import kernels as K
from dolphin.scan.config import ScanConfig
from dolphin.scan.sonar import Sonar


def _generated_closes(seed: int, t: int, n: int, hole_frac: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Generated (synthetic) prices: a one-factor random walk, with random missing bars."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.2, 1.5, n)
    f = rng.standard_normal((t, 1)) * 0.01
    r = f * beta + rng.standard_normal((t, n)) * rng.uniform(0.002, 0.02, n)
    closes = 100.0 * np.exp(np.cumsum(r, axis=0)) * rng.uniform(0.01, 1000.0, n)
    mask = rng.random((t, n)) >= hole_frac
    closes = np.where(mask, closes, np.nan)
    return closes, mask


def _spectrum(seed: int, w: int, n: int, hole: float) -> tuple[np.ndarray, int]:
    closes, mask = _generated_closes(seed, w + 1, n, hole)
    ret, valid = K.log_returns(closes, mask)
    c, eligible = K.correlation_from_scratch(ret[1:], valid[1:], 0.5)
    return c, int(eligible.sum())


@given(st.integers(0, 10_000), st.integers(3, 40), st.integers(2, 30), st.sampled_from([0.0, 0.05, 0.2]))
def test_correlation_is_symmetric_psd_unit_diagonal_and_trace_n(seed: int, w: int, n: int, hole: float) -> None:
    c, n_eff = _spectrum(seed, w, n, hole)
    assert np.allclose(c, c.T, atol=0, rtol=0)
    if n_eff:
        assert np.allclose(np.diag(c), 1.0, atol=1e-12)
        ev = np.linalg.eigvalsh(c)
        assert abs(ev.sum() - n_eff) <= 1e-9 * n_eff  # eigenvalues sum to N
        assert ev[0] >= -1e-10 * n_eff  # PSD


@given(st.integers(0, 10_000), st.integers(3, 40), st.integers(2, 30))
def test_complete_window_equals_numpy_corrcoef(seed: int, w: int, n: int) -> None:
    closes, mask = _generated_closes(seed, w + 1, n)
    ret, valid = K.log_returns(closes, mask)
    c, eligible = K.correlation_from_scratch(ret[1:], valid[1:])
    assert eligible.all()
    assert np.allclose(c, np.corrcoef(ret[1:].T), atol=1e-12)


@given(st.integers(0, 10_000), st.integers(3, 40), st.integers(2, 30), st.sampled_from([0.0, 0.1]))
def test_entropy_and_absorption_in_unit_interval(seed: int, w: int, n: int, hole: float) -> None:
    c, n_eff = _spectrum(seed, w, n, hole)
    if n_eff < 2:
        return
    ev = np.linalg.eigvalsh(c)
    h = K.entropy_normalised(ev, n_eff)
    ar = K.absorption_ratio(ev, n_eff, 0.2)
    assert 0.0 <= h <= 1.0 and 0.0 < ar <= 1.0
    # identity -> entropy 1; rank one -> entropy 0
    assert K.entropy_normalised(np.ones(n_eff), n_eff) == pytest.approx(1.0)
    assert K.entropy_normalised(np.r_[np.zeros(n_eff - 1), n_eff], n_eff) == pytest.approx(0.0, abs=1e-12)


@given(st.integers(0, 10_000), st.integers(3, 40), st.integers(2, 30), st.sampled_from([0.0, 0.1]))
def test_exact_spectrum_gram_route_matches_eigvalsh(seed: int, w: int, n: int, hole: float) -> None:
    closes, mask = _generated_closes(seed, w + 1, n, hole)
    ret, valid = K.log_returns(closes, mask)
    rw, vw = ret[1:], valid[1:]
    c, eligible = K.correlation_from_scratch(rw, vw, 0.5)
    nsum, s, q = K.window_sums(rw, vw)
    mu, d, el, _, _ = K.standardise(nsum, s, q, math.ceil(0.5 * w - 1e-9), 1e-18)
    assert (el == eligible).all()
    got = K.exact_spectrum(rw, vw, mu, d, el)
    ref = np.linalg.eigvalsh(c)
    assert got.shape == ref.shape
    assert np.allclose(got, ref, atol=1e-10 * max(1, n))


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(2, 25), st.sampled_from([0.0, 0.03]))
@example(528, 3, 0.03)  # regression: top two eigenvalues cross at window 6; the old certificate passed lambda_2
def test_incremental_equals_from_scratch(seed: int, n: int, hole: float) -> None:
    """Sliding sums + Lanczos (signal path) and the full scan agree with a from-scratch eigvalsh."""
    windows = [6, 15, 31]
    t_len = 70
    closes, mask = _generated_closes(seed, t_len, n, hole)
    kw = dict(windows=windows, vel_div_short=6, vel_div_long=15, resum_every_bars=17, exact_check_every_bars=0,
              min_coverage=0.7, regime={"structure_window": 15, "min_assets": 2})
    sig = Sonar(n, _cfg(**kw, full_spectrum=False))
    full = Sonar(n, _cfg(**kw, full_spectrum=True))
    ret, valid = K.log_returns(closes, mask)
    for t in range(t_len):
        rs = sig.update(t + 1, closes[t], mask[t])
        rf = full.update(t + 1, closes[t], mask[t])
        for fs, ff in zip(rs.windows, rf.windows):
            w = fs.window
            if t < w:
                assert not fs.ready
                continue
            c, eligible = K.correlation_from_scratch(ret[t - w + 1 : t + 1], valid[t - w + 1 : t + 1], 0.7)
            n_eff = int(eligible.sum())
            assert fs.n_assets == ff.n_assets == n_eff
            if n_eff < 2:
                assert not fs.ready
                continue
            alpha = 0.05 if n_eff >= w else 0.0
            ev = (1 - alpha) * np.linalg.eigvalsh(c) + alpha
            assert abs(fs.lambda_max - ev[-1]) <= 1e-9 * ev[-1]
            assert abs(ff.lambda_max - ev[-1]) <= 1e-9 * ev[-1]
            assert abs(ff.entropy - K.entropy_normalised(ev, n_eff)) <= 1e-9


def _unit(n: int) -> np.ndarray:
    v = np.random.default_rng(n).standard_normal(n)
    return v / np.linalg.norm(v)


def _cfg(**kw: object) -> ScanConfig:
    return msgspec.convert(kw, ScanConfig)


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.integers(3, 20), st.data())
def test_invariant_to_asset_order_and_price_scaling(seed: int, n: int, data: st.DataObject) -> None:
    closes, mask = _generated_closes(seed, 60, n, 0.02)
    perm = np.array(data.draw(st.permutations(range(n))))
    scale = np.array(data.draw(st.lists(st.floats(1e-4, 1e4), min_size=n, max_size=n)))
    cfg = _cfg(windows=[10, 25, 50], vel_div_short=10, vel_div_long=25, full_spectrum=True, min_coverage=0.8,
               regime={"structure_window": 25, "min_assets": 2})
    a = Sonar(n, cfg)
    b = Sonar(n, cfg)
    for t in range(60):
        ra = a.update(t + 1, closes[t], mask[t])
        rb = b.update(t + 1, (closes[t] * scale)[perm], mask[t][perm])
        for fa, fb in zip(ra.windows, rb.windows):
            assert fa.ready == fb.ready and fa.n_assets == fb.n_assets
            if fa.ready:
                assert fb.lambda_max == pytest.approx(fa.lambda_max, rel=1e-9)
                assert fb.entropy == pytest.approx(fa.entropy, rel=1e-9, abs=1e-12)
                assert fb.absorption == pytest.approx(fa.absorption, rel=1e-9)


@given(st.integers(0, 10_000), st.integers(5, 60), st.integers(2, 40))
def test_lanczos_certificate_holds(seed: int, w: int, n: int) -> None:
    """Cold-started Lanczos on generated windows: certified results are within their own bound."""
    closes, mask = _generated_closes(seed, w + 1, n)
    ret, valid = K.log_returns(closes, mask)
    nsum, s, q = K.window_sums(ret[1:], valid[1:])
    mu, d, el, _, _ = K.standardise(nsum, s, q, w, 1e-18)
    out = np.empty(n)
    lam, bound, _, steps = K.lanczos_top(ret, valid, 1, w + 1, mu, d, False, np.ones(n), _unit(n), np.zeros(1), False, np.inf, 1e-11, 40, out)
    ref = np.linalg.eigvalsh(K.correlation_from_scratch(ret[1:], valid[1:])[0])[-1]
    if math.isfinite(bound):
        assert abs(lam - ref) <= max(bound, 1e-12 * ref) + 1e-12 * ref
        assert abs(lam - ref) <= 1e-9 * ref
    assert lam <= ref * (1 + 1e-12)  # a Ritz value never exceeds lambda_max
    assert 1 <= steps <= 40


def _operator_of(closes: np.ndarray, mask: np.ndarray, w: int) -> tuple[np.ndarray, ...]:
    """(returns, valid, mu, d, C) of the window of w returns from w + 1 closes."""
    ret, valid = K.log_returns(closes, mask)
    nsum, s, q = K.window_sums(ret[1:], valid[1:])
    mu, d, _, _, _ = K.standardise(nsum, s, q, w, 1e-18)
    return ret, valid, mu, d, K.correlation_from_scratch(ret[1:], valid[1:])[0]


def _window_operator(seed: int, w: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _operator_of(*_generated_closes(seed, w + 1, n), w)


def _adversarial_start(seed: int, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eigenvalues, eigenvector of lambda_2 as the warm start, unit jitter orthogonal to the top eigenvector)."""
    ev, vecs = np.linalg.eigh(c)
    v1, v2 = vecs[:, -1], vecs[:, -2]
    jit = np.random.default_rng(seed).standard_normal(c.shape[0])
    jit -= (jit @ v1) * v1
    return ev, v2, jit / np.linalg.norm(jit)


@given(st.integers(0, 10_000), st.integers(3, 60), st.integers(2, 30), st.booleans())
def test_certificate_never_passes_a_lower_eigenvalue(seed: int, w: int, n: int, with_frob: bool) -> None:
    """Adversarial warm start (generated data): the start vector is the eigenvector of lambda_2 and the
    jitter is orthogonal to the top eigenvector, so the Krylov space may never see lambda_max. A
    certified answer must still be lambda_max (else: no certificate, and the caller goes exact)."""
    ret, valid, mu, d, c = _window_operator(seed, w, n)
    ev, v2, jit = _adversarial_start(seed, c)
    frob = float((c * c).sum()) if with_frob else np.inf
    out = np.empty(n)
    lam, bound, _, _ = K.lanczos_top(ret, valid, 1, w + 1, mu, d, False, v2.copy(), jit, np.zeros(1), False,
                                     frob, 1e-11, 24, out)
    if math.isfinite(bound):
        assert abs(lam - ev[-1]) <= 1e-9 * ev[-1], (lam, ev[-1], ev[-2], bound)
        assert ev[-1] - lam <= bound + 1e-12 * ev[-1]


def test_certificate_refuses_the_second_eigenvalue_of_a_crossing() -> None:
    """Two eigenvalues 1.001 and 1.0 (generated 3 x 3 correlation), warm start = eigenvector of 1.0,
    jitter orthogonal to the top one: the residual is 0 at step 1, yet theta = lambda_2 must not be
    certified (trace 3 and ||C||_F^2 leave room for lambda_1 = 1.001 above it)."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    target = q @ np.diag([1.001, 1.0, 0.999]) @ q.T
    # a complete window whose correlation matrix is exactly `target`: Z = U S^(1/2) Q^T with centred U
    w = 8
    u = rng.standard_normal((w, 3))
    u -= u.mean(axis=0)
    u, _ = np.linalg.qr(u - u.mean(axis=0))
    u -= u.mean(axis=0)
    z = u[:, :3] @ np.diag(np.sqrt([1.001, 1.0, 0.999])) @ q.T
    dn = np.sqrt((z * z).sum(axis=0))
    ret = np.vstack([np.zeros(3), z])
    valid = np.ones_like(ret, dtype=bool)
    valid[0] = False
    nsum, s, qq = K.window_sums(ret[1:], valid[1:])
    mu, d, _, _, _ = K.standardise(nsum, s, qq, w, 1e-18)
    c = K.correlation_from_scratch(ret[1:], valid[1:])[0]
    ev, vecs = np.linalg.eigh(c)
    assert ev[-1] - ev[-2] > 1e-4 and dn.min() > 0  # the constructed crossing is real
    v1, v2 = vecs[:, -1], vecs[:, -2]
    jit = np.array([1.0, -1.0, 0.5])
    jit -= (jit @ v1) * v1
    jit /= np.linalg.norm(jit)
    out = np.empty(3)
    lam, bound, _, steps = K.lanczos_top(ret, valid, 1, w + 1, mu, d, False, v2.copy(), jit, np.zeros(1),
                                         False, float((c * c).sum()), 1e-11, 24, out)
    assert not (math.isfinite(bound) and abs(lam - ev[-1]) > 1e-9 * ev[-1])
    assert lam <= ev[-1] * (1 + 1e-12)


def _factor_window(seed: int, w: int, n: int, factors: int, noise: float) -> tuple[np.ndarray, ...]:
    """GENERATED complete window with ``factors`` comparable market modes (asset j loads on factor
    j mod factors) on a heavy noise bulk: (returns, valid, mu, d, C)."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((w + 1, factors)) * 0.01
    load = np.zeros((n, factors))
    load[np.arange(n), np.arange(n) % factors] = rng.uniform(0.8, 1.2, n)
    r = f @ load.T + rng.standard_normal((w + 1, n)) * rng.uniform(0.005, 0.02, n) * noise
    closes = 100.0 * np.exp(np.cumsum(r, axis=0))
    return _operator_of(closes, np.ones_like(closes, dtype=bool), w)


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(4, 8), st.sampled_from([0.8, 1.0, 1.5]), st.booleans())
@example(0, 6, 1.0, False)  # split first possible at k = 59 of 60; certified in 13 steps
@example(1, 4, 1.5, False)  # k = 59; 19 steps
def test_secular_certificate_with_comparable_modes_is_sound_and_needs_no_full_split(
    seed: int, factors: int, noise: float, adversarial: bool
) -> None:
    """Several comparable modes on a heavy bulk (generated): no split of the spectrum passes the
    trace / Frobenius test before almost the whole space (checked on the exact eigenvalues, which
    bound every Ritz split: theta_i <= lambda_i), so a certificate in fewer Lanczos steps than that
    comes from the secular bound (top eigenvalue only). Every certified answer is lambda_max within
    its bound, also from an adversarial start (eigenvector of lambda_2, jitter orthogonal to the top)."""
    w, n = 150, 60
    ret, valid, mu, d, c = _factor_window(seed, w, n, factors, noise)
    ev = np.linalg.eigvalsh(c)[::-1]
    frob = float((c * c).sum())
    split_k = [k for k in range(1, n + 1)
               if ev[k - 1] > min(n - ev[:k].sum(), math.sqrt(max(frob - (ev[:k] ** 2).sum(), 0.0)))]
    out = np.empty(n)
    if adversarial:
        _, v0, jit = _adversarial_start(seed, c)
    else:
        v0, jit = np.ones(n), _unit(n)
    lam, bound, _, steps = K.lanczos_top(ret, valid, 1, w + 1, mu, d, False, v0.copy(), jit, np.zeros(1), False,
                                         frob, 1e-11, 40, out)
    slack = 1e-12 * ev[0]  # the reference is of a differently summed matrix
    assert lam <= ev[0] + slack
    if math.isfinite(bound):
        assert ev[0] - lam <= bound + slack and abs(lam - ev[0]) <= 1e-9 * ev[0]
    if not adversarial:
        assert math.isfinite(bound)
        if min(split_k + [n]) > 40:  # no split certifiable within the 40 steps (most draws; the examples)
            assert steps < 40


@settings(max_examples=300)
@given(
    st.lists(st.floats(-5.0, 50.0), min_size=1, max_size=30), st.integers(0, 20),
    st.floats(0.0, 1.0), st.floats(0.0, 2.0), st.floats(0.0, 2.0),
)
def test_max_of_spectrum_bounds_the_largest_eigenvalue(vals: list[float], zeros: int, f_extra: float,
                                                       t_below: float, t_above: float) -> None:
    """Wolkowicz-Styan from a trace interval and a sum-of-squares upper bound: never below the
    largest of the numbers (padded with zeros up to the stated count), never above the Frobenius
    bound sqrt(f2), and equal to the largest (to 1e-6) when all numbers are equal."""
    x = np.array(vals + [0.0] * zeros)
    t = float(x.sum())
    f2 = float((x * x).sum()) * (1.0 + f_extra)
    r = x.size
    b = K._max_of_spectrum(t - t_below, t + t_above, f2, r)
    assert b >= x.max() - 1e-9 * max(1.0, abs(x).max())
    assert b <= math.sqrt(f2) * (1 + 1e-15) + 1e-300
    # equal numbers, exact data: the bound is attained up to its rounding allowance (sqrt of a few ulps)
    e = np.full(r, 2.5)
    assert K._max_of_spectrum(float(e.sum()), float(e.sum()), float((e * e).sum()), r) == pytest.approx(2.5, rel=1e-6)


def test_max_of_spectrum_uses_the_rank() -> None:
    """Fewer nonzero eigenvalues (a W-row window has rank <= W) give a tighter bound; inconsistent
    data (sum of squares below what the sum forces) and an empty count give +inf (no claim)."""
    x = np.array([10.0, 3.0, 2.0, 1.0, 1.0])
    t, f2 = float(x.sum()), float((x * x).sum())
    tight = K._max_of_spectrum(t, t, f2, 5)
    loose = K._max_of_spectrum(t, t, f2, 400)
    assert 10.0 <= tight < loose < math.sqrt(f2)
    assert math.isinf(K._max_of_spectrum(10.0, 10.0, 1.0, 5))
    assert math.isinf(K._max_of_spectrum(1.0, 1.0, 1.0, 0))


@settings(max_examples=200)
@given(st.integers(1, 40), st.integers(0, 10_000), st.sampled_from(["random", "split", "equal", "graded"]))
def test_all_tridiagonal_eigenvalues_and_last_components_match_eigh(m: int, seed: int, kind: str) -> None:
    """The O(m^2) QL pass of the certificate: every eigenvalue (descending) and |last component| of
    its eigenvector, against LAPACK's eigh on the dense matrix."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(m) * 10
    b = np.abs(rng.standard_normal(m))
    if kind == "split":
        b[rng.random(m) < 0.3] = 0.0
    elif kind == "equal":
        a[:] = 3.0
    elif kind == "graded":
        a *= 10.0 ** np.arange(m) / 10.0 ** m
        b *= 10.0 ** np.arange(m) / 10.0 ** m
    t = np.diag(a) + np.diag(b[: m - 1], 1) + np.diag(b[: m - 1], -1)
    ev, vec = np.linalg.eigh(t)
    ev, last = ev[::-1], np.abs(vec[m - 1, ::-1])
    w, z = np.empty(m), np.empty(m)
    assert K._tridiag_eig_last(a, b, m, w, z)
    scale = max(np.abs(t).sum(axis=1).max(), 1e-300)
    assert np.all(np.diff(w) <= 0.0)
    np.testing.assert_allclose(w, ev, rtol=0, atol=1e-13 * m * scale)
    assert np.sum(z * z) == pytest.approx(1.0, abs=1e-12)
    gaps = np.minimum(np.r_[np.inf, -np.diff(ev)], np.r_[-np.diff(ev), np.inf])
    sep = gaps > 1e-6 * scale  # components of (nearly) equal eigenvalues are not unique
    np.testing.assert_allclose(z[sep], last[sep], rtol=0, atol=1e-13 * m * scale / gaps[sep].min() if sep.any() else 0)


@given(st.integers(1, 18), st.integers(0, 10_000))
def test_tridiagonal_helpers_match_eigh(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(m) * 10
    b = np.abs(rng.standard_normal(m))
    t = np.diag(a) + np.diag(b[: m - 1], 1) + np.diag(b[: m - 1], -1)
    ev = np.linalg.eigvalsh(t)
    y = np.zeros(m)
    th1, th2, _, _ = K._tridiag_top2(a, b, m, y)
    assert th1 == pytest.approx(ev[-1], abs=1e-12 * max(1, abs(ev).max()))
    if m >= 2:
        assert th2 == pytest.approx(ev[-2], abs=1e-12 * max(1, abs(ev).max()))
    assert np.linalg.norm(t @ y - th1 * y) <= 1e-9 * max(1, abs(ev).max())


def test_mp_edge_and_shrinkage_map() -> None:
    assert K.mp_edge(100, 400) == pytest.approx(2.25)
    assert math.isnan(K.mp_edge(0, 10))
    ev = np.array([0.0, 0.5, 2.5])
    assert np.allclose(K.shrink_spectrum(ev, 0.1), 0.9 * ev + 0.1)
    assert K.shrink_spectrum(ev, 0.1).sum() == pytest.approx(ev.sum() * 0.9 + 0.3)


def _psd_with_spectrum(seed: int, n: int, top: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Generated PSD matrix: given top eigenvalues over a random bulk in [0, 1], random eigenvectors."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([rng.uniform(0.0, 1.0, n - len(top)), np.asarray(top, dtype=float)])
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    m = (q * lam) @ q.T
    m = 0.5 * (m + m.T)
    return m, np.linalg.eigvalsh(m)


@settings(max_examples=60)
@given(st.integers(0, 10_000), st.integers(2, 120), st.floats(1.5, 40.0), st.floats(0.0, 0.5),
       st.sampled_from([0.0, 1e-12, 1e-10, 1e-9, 1e-6, 1e-2]), st.sampled_from([1e-11, 1e-10, 1e-9]))
def test_shift_certificate_bound_always_holds(seed: int, n: int, lam1: float, gap_frac: float, below: float,
                                              tol: float) -> None:
    """Whatever theta is given (exact, or below lambda_max by up to 1 %, near-degenerate top pair),
    a finite bound is never smaller than the true error, and a theta more than tol below
    lambda_max is never certified within tol."""
    m, ev = _psd_with_spectrum(seed, n, [lam1 * (1.0 - gap_frac), lam1] if n >= 3 else [lam1])
    lam_max = ev[-1]
    theta = lam_max * (1.0 - below)
    bound = K.shift_certificate(m, theta, tol)
    slack = 8 * n * 2.0**-53 * lam_max  # eigvalsh's own rounding of the reference
    if math.isfinite(bound):
        assert lam_max - theta <= bound + slack
    if below >= 2 * tol:
        assert not bound <= tol * theta
    if below == 0.0:
        # the exact top eigenvalue is certified (rounding of the factorisation is far below tol here)
        assert bound <= tol * theta + slack


def test_shift_certificate_refuses_the_second_eigenvalue() -> None:
    """Generated: two close top eigenvalues (the crossing case); lambda_2 given as theta is refused."""
    m, ev = _psd_with_spectrum(7, 200, [10.0, 10.0 + 1e-6])
    assert math.isinf(K.shift_certificate(m, ev[-2], 1e-10))
    assert K.shift_certificate(m, ev[-1], 1e-10) <= 1e-10 * ev[-1]


def test_shift_certificate_rejects_non_finite_or_empty() -> None:
    m, _ = _psd_with_spectrum(3, 5, [3.0])
    assert math.isinf(K.shift_certificate(m, math.nan, 1e-10))
    assert math.isinf(K.shift_certificate(m, 0.0, 1e-10))
    assert math.isinf(K.shift_certificate(np.zeros((0, 0)), 1.0, 1e-10))


@given(st.integers(0, 10_000), st.integers(3, 60), st.integers(2, 30))
@example(44, 3, 2)  # 2 assets: the basis spans the space, |lam - eigvalsh(c)| = 1.1e-14 from the two summations
def test_convergence_only_mode_never_certifies_by_itself_and_shift_proof_is_sound(seed: int, w: int, n: int) -> None:
    """Shift mode (generated data, adversarial start = eigenvector of lambda_2, jitter orthogonal to
    the top one): Lanczos with frob_sq < 0 only converges. Its own bound is +inf unless the basis
    spans the whole space (then exact); the shift certificate of its theta is either refused or
    within its bound of lambda_max."""
    ret, valid, mu, d, c = _window_operator(seed, w, n)
    ev, v2, jit = _adversarial_start(seed, c)
    out = np.empty(n)
    lam, bound, _, steps = K.lanczos_top(ret, valid, 1, w + 1, mu, d, False, v2.copy(), jit, np.zeros(1),
                                         False, -1.0, 1e-11, 24, out, 0, np.empty((0, 0)), 2e-11)
    # the reference eigvalsh(c) is of a differently summed matrix (correlation_from_scratch vs the
    # window operator): allow 1e-12 relative for that, as test_lanczos_certificate_holds does
    slack = 1e-12 * ev[-1]
    if math.isfinite(bound):
        assert abs(lam - ev[-1]) <= bound + slack and bound <= 1e-9 * ev[-1]
    sb = K.shift_certificate(c, lam, 1e-10)
    if math.isfinite(sb):
        assert ev[-1] - lam <= sb + slack
    if ev[-1] - lam > 2e-10 * ev[-1]:
        assert not sb <= 1e-10 * lam


def _complete_window_cross(seed: int, w: int, n: int) -> tuple[np.ndarray, ...]:
    """A generated complete window of w returns: (returns, mu, d, eligible, cross-product P)."""
    closes, mask = _generated_closes(seed, w + 1, n)
    ret, valid = K.log_returns(closes, mask)
    nsum, s, q = K.window_sums(ret[1:], valid[1:])
    mu, d, el, _, _ = K.standardise(nsum, s, q, w, 1e-18)
    p = np.zeros(K.packed_size(n))
    K.cross_resum(p, ret, 1, w + 1)
    return ret, mu, d, el, p


@settings(max_examples=50)
@given(st.integers(0, 2**32 - 1), st.integers(2, 60), st.floats(1e-6, 1e-2), st.floats(1.0, 1e5))
def test_sliding_sums_stay_exact_and_the_cross_product_drift_is_caught(seed: int, w: int, sd: float, spike: float) -> None:
    """Slide a window over returns of scale ``sd`` with one return of ``spike`` * sd (a bad print)
    and 10 % missing cells, re-anchoring the cross-product whenever slide_sums reports drift (as
    the scanner does). After every slide: s + cs and q + cq equal the exactly rounded window sums
    (math.fsum) to a few u of their value (plain sliding sums keep u * spike^2 after the spike left),
    and every entry of the packed P is within the drift limit (plus the re-anchor's own rounding)
    of the exact X^T X, relative to sqrt(q_i q_j)."""
    rng = np.random.default_rng(seed)
    n, t_len = 4, 4 * w + 12
    valid = rng.random((t_len, n)) >= 0.1
    ret = np.where(valid, rng.standard_normal((t_len, n)) * sd + rng.standard_normal((t_len, 1)) * sd, 0.0)
    k = w // 2 + 1
    ret[k, 0], valid[k, 0] = spike * sd, True
    sums = [np.zeros(n) for _ in range(6)]  # n, s, q, cs, cq, mass
    nn, s, q, cs, cq, mass = sums
    p = np.zeros(K.packed_size(n))
    K.resum(ret, valid, 0, w, *sums)
    K.cross_resum(p, ret, 0, w)
    max_drift, u = 1e-13, 2.0**-53
    lo = np.tril_indices(n)
    for row in range(w, t_len):
        a = row - w + 1
        _, drift = K.slide_sums(ret, valid, row, row - w, *sums, max_drift)
        if drift:
            K.resum(ret, valid, a, row + 1, *sums)
            K.cross_resum(p, ret, a, row + 1)
        else:
            K.cross_update(p, ret, row, row - w)
        x = ret[a : row + 1]
        for j in range(n):
            col = x[valid[a : row + 1, j], j]
            s_ex, q_ex = math.fsum(col), math.fsum(col * col)
            assert nn[j] == col.size
            assert abs((s[j] + cs[j]) - s_ex) <= 4 * u * abs(s_ex) + 1e-300
            assert abs((q[j] + cq[j]) - q_ex) <= 4 * u * q_ex + 1e-300
        exact = np.array([[math.fsum(x[:, i] * x[:, j]) for j in range(n)] for i in range(n)])
        scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))[lo]
        assert np.all(np.abs(p - exact[lo]) <= (max_drift + 4 * w * u) * scale + 1e-300)


@settings(max_examples=60)
@given(st.integers(0, 10_000), st.integers(5, 80), st.integers(2, 40))
def test_packed_cross_product_slides_and_every_reader_equals_the_explicit_matrix(seed: int, w: int, n: int) -> None:
    """The cross-product is kept packed (lower triangle, row by row): re-anchored on w rows, then
    slid by one (add a row, drop the oldest), it holds X^T X of the slid window, and every reader
    (products, ||C||_F^2, C on a subset and the shift certificate) equals the explicit correlation
    of that window."""
    ret = _complete_window_cross(seed, w + 1, n)[0]  # returns in rows 1..w+1
    p = np.zeros(K.packed_size(n))
    K.cross_resum(p, ret, 1, w + 1)  # the first w rows, then slide by one: add row w + 1, drop row 1
    K.cross_update(p, ret, w + 1, 1)
    x = ret[2 : w + 2]
    xtx = x.T @ x
    np.testing.assert_allclose(p, xtx[np.tril_indices(n)], rtol=1e-12, atol=1e-15)
    mu2 = x.mean(axis=0)
    sd = x.std(axis=0)
    d2 = np.where(sd > 0, 1.0 / np.where(sd > 0, sd, 1.0) / math.sqrt(w), 0.0)
    z = (x - mu2) * d2
    c_ref = z.T @ z
    v = np.random.default_rng(seed).standard_normal(n)
    out = np.empty(n)
    K.cross_matvec(p, mu2, d2, float(w), v, out)
    np.testing.assert_allclose(out, c_ref @ v, rtol=0, atol=1e-9 * (1 + np.abs(c_ref).sum(axis=1).max() * np.abs(v).max()))
    assert K.frobenius_sq_cross(p, mu2, d2, float(w)) == pytest.approx(float((c_ref * c_ref).sum()), rel=1e-9, abs=1e-12)
    idx = np.flatnonzero(d2 > 0)
    if idx.size == 0:
        return
    for sub in (idx, idx[::2]):
        c = K.corr_from_cross(p, mu2, d2, sub, float(w))
        np.testing.assert_allclose(c, c_ref[np.ix_(sub, sub)], rtol=0, atol=1e-9)
    lam = np.linalg.eigvalsh(K.corr_from_cross(p, mu2, d2, idx, float(w)))[-1]
    assert K.shift_certificate_cross(p, mu2, d2, idx, float(w), lam, 1e-10) <= 1e-10 * lam


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(5, 80), st.integers(2, 40))
def test_shift_certificate_from_cross_product_equals_explicit_form(seed: int, w: int, n: int) -> None:
    """Generated complete windows: sigma I - C built from the cross-product in one pass gives the same
    verdict as the explicit matrix (certified at lambda_max, refused 1e-8 below it)."""
    ret, mu, d, el, p = _complete_window_cross(seed, w, n)
    idx = np.flatnonzero(el)
    if idx.size == 0:
        return
    c = K.corr_from_cross(p, mu, d, idx, float(w))
    lam = np.linalg.eigvalsh(c)[-1]
    a = K.shift_certificate_cross(p, mu, d, idx, float(w), lam, 1e-10)
    b = K.shift_certificate(c, lam, 1e-10)
    assert a <= 1e-10 * lam and b <= 1e-10 * lam
    assert math.isinf(K.shift_certificate_cross(p, mu, d, idx, float(w), lam * (1 - 1e-8), 1e-10))
    assert math.isinf(K.shift_certificate(c, lam * (1 - 1e-8), 1e-10))


@given(
    st.lists(st.floats(-1e-12, 60.0, allow_nan=False), min_size=1, max_size=80),
    st.integers(2, 400),
    st.sampled_from([0.05, 0.2, 0.5, 1.0]),
    st.booleans(),
)
def test_entropy_and_absorption_match_their_definitions(vals: list[float], n: int, frac: float, ascending: bool) -> None:
    """The compiled entropy / absorption equal the numpy definitions (clip at 0, p = lambda / N,
    top ceil(frac N) eigenvalues), for sorted (eigvalsh order) and unsorted input."""
    ev = np.array(sorted(vals) if ascending else vals)
    p = np.clip(ev, 0.0, None) / n
    p = p[p > 0.0]
    h_ref = min(max(float(-(p * np.log(p)).sum() / math.log(n)), 0.0), 1.0)
    k = max(1, math.ceil(frac * n - 1e-9))
    a_ref = float(min(np.sort(np.clip(ev, 0.0, None))[::-1][:k].sum() / n, 1.0))
    assert K.entropy_normalised(ev, n) == pytest.approx(h_ref, rel=1e-12, abs=1e-15)
    assert K.absorption_ratio(ev, n, frac) == pytest.approx(a_ref, rel=1e-12, abs=1e-15)


@given(st.integers(0, 10_000), st.integers(4, 40), st.integers(2, 30), st.integers(0, 2**30))
def test_corr_from_cross_lower_triangle_and_subset(seed: int, w: int, n: int, pick: int) -> None:
    """C from the cross-product: every asset (contiguous pass) and a subset (index gather) give
    np.corrcoef's entries; ``lower_only`` writes the lower triangle into ``out`` and leaves the
    upper triangle untouched (LAPACK and eigvalsh(UPLO='L') read only the lower)."""
    ret, mu, d, _, p = _complete_window_cross(seed, w, n)
    ref = np.corrcoef(ret[1:].T)
    full = K.corr_from_cross(p, mu, d, np.arange(n), float(w))
    assert np.allclose(full, ref, atol=1e-10) and np.array_equal(full, full.T)
    idx = np.flatnonzero((np.arange(n) * 2654435761 + pick) % 3 != 0)
    if idx.size == 0:
        return
    m = idx.size
    out = np.full((m, m), 7.0)
    got = K.corr_from_cross(p, mu, d, idx, float(w), out=out, lower_only=True)
    assert got is out
    sub = ref[np.ix_(idx, idx)]
    lower = np.tril_indices(m)
    assert np.allclose(got[lower], sub[lower], atol=1e-10)
    assert (got[np.triu_indices(m, 1)] == 7.0).all()
    assert np.allclose(np.linalg.eigvalsh(got, UPLO="L"), np.linalg.eigvalsh(sub), atol=1e-10 * m)


@given(
    st.lists(st.floats(-1e-12, 60.0, allow_nan=False), min_size=1, max_size=60),
    st.integers(0, 40),
    st.sampled_from([0.0, 1e-3, 0.05, 0.3]),
    st.sampled_from([0.05, 0.2, 1.0]),
    st.booleans(),
)
def test_spectrum_features_equal_the_built_spectrum(vals: list[float], n_zero: int, alpha: float, frac: float, asc: bool) -> None:
    """Entropy / absorption of (nonzero eigenvalues + n_zero exact zeros, shrunk) computed without
    building that spectrum equal the two definitions on the built array."""
    ev = np.array(sorted(vals) if asc else vals)
    n = ev.size + n_zero
    built = K.shrink_spectrum(np.concatenate([np.zeros(n_zero), ev]), alpha)
    h, ar = K.spectrum_features(ev, n_zero, alpha, n, frac)
    if n < 2:
        assert math.isnan(h)
    else:
        assert h == pytest.approx(K.entropy_normalised(built, n), rel=1e-12, abs=1e-15)
    assert ar == pytest.approx(K.absorption_ratio(built, n, frac), rel=1e-12, abs=1e-15)


def _tridiag(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.diag(d) + np.diag(e, 1) + np.diag(e, -1)


_GUESS = st.sampled_from(["exact", "near", "far", "constant", "uniform", "reversed", "nonfinite"])


def _guess(kind: str, ev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = ev.size
    span = float(ev[-1] - ev[0]) + 1e-300
    if kind == "exact":
        return ev.copy()
    if kind == "near":  # a previous bar: every value moved by a fraction of the spread
        return ev + rng.normal(0.0, 0.01 * span, n)
    if kind == "far":
        return ev + rng.normal(0.0, 0.5 * span, n)
    if kind == "constant":
        return np.full(n, float(ev[n // 2]))
    if kind == "uniform":
        return rng.uniform(ev[0] - span, ev[-1] + span, n)
    if kind == "nonfinite":  # never produced by the scanner; must not corrupt the counts
        g = ev.copy()
        g[rng.integers(0, n, max(1, n // 3))] = rng.choice([np.nan, np.inf, -np.inf])
        return g
    return ev[::-1] * 1.1


@settings(max_examples=300)
@given(
    st.integers(1, 60), st.integers(0, 2**32 - 1), _GUESS,
    st.sampled_from(["random", "identity", "diagonal", "tiny_offdiag", "clusters", "huge", "zero", "wilkinson"]),
)
def test_tridiagonal_eigenvalues_warm_equal_eigvalsh(n: int, seed: int, guess: str, kind: str) -> None:
    """The warm-started tridiagonal solver (Sturm counts + Laguerre) gives every eigenvalue of T
    within a small multiple of u ||T|| of LAPACK's, whatever the guess (exact, a previous bar,
    far off, constant, random, reversed, partly non-finite) and for hard spectra (all equal, decoupled, clusters,
    huge or zero scale, Wilkinson's nearly-degenerate pairs)."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(n)
    e = rng.standard_normal(max(n - 1, 0))
    if kind == "identity":
        d, e = np.ones(n), np.zeros(max(n - 1, 0))
    elif kind == "diagonal":
        e = np.zeros(max(n - 1, 0))
    elif kind == "tiny_offdiag":
        e *= 1e-200
    elif kind == "clusters":
        d = np.round(d) * 3.0
        e *= 1e-9
    elif kind == "huge":
        d, e = d * 1e150, e * 1e150
    elif kind == "zero":
        d, e = np.zeros(n), np.zeros(max(n - 1, 0))
    elif kind == "wilkinson":
        m = (n - 1) / 2.0
        d, e = np.abs(np.arange(n) - m), np.ones(max(n - 1, 0))
    ref = np.linalg.eigvalsh(_tridiag(d, e))
    w, ok = K.tridiag_eigvals_warm(d, e, _guess(guess, ref, rng), 200)
    assert ok
    scale = max(np.abs(d).max() + 2 * (np.abs(e).max() if e.size else 0.0), 1e-300)
    assert np.all(np.diff(w) >= -32 * 2**-53 * scale)
    assert np.max(np.abs(np.sort(w) - ref)) <= 32 * 2**-53 * scale + 1e-300


@settings(max_examples=60)
@given(st.integers(2, 80), st.integers(0, 2**32 - 1), st.booleans())
def test_sym_eigvalsh_equals_numpy_with_and_without_a_warm_start(n: int, seed: int, warm: bool) -> None:
    """Correlation-like matrices from generated returns: sym_eigvalsh (dsytrd + warm tridiagonal
    solver, or dsterf) == numpy's eigvalsh; the warm start is the spectrum one row earlier."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + 40, n)) + rng.standard_normal((n + 40, 1)) * rng.uniform(0, 2)
    a1 = np.corrcoef(x[:-1].T)
    a2 = np.corrcoef(x[1:].T)
    ref = np.linalg.eigvalsh(a2)
    got, how = K.sym_eigvalsh(a2.copy(), np.linalg.eigvalsh(a1) if warm else None)
    assert how == ("warm" if warm else "cold")
    assert (np.diff(got) >= 0.0).all()  # ascending, as eigvalsh
    assert np.max(np.abs(got - ref)) <= 1e-12 * n


@pytest.mark.parametrize("block", [1, 2, 12, 32, 64])
def test_sym_eigvalsh_panel_width_changes_speed_not_the_spectrum(block: int, monkeypatch) -> None:
    """dsytrd's panel width comes from the workspace the full scan hands it (``TRD_BLOCK``): any
    width (1 = unblocked, 64 = more than LAPACK's own 32) gives the spectrum of eigvalsh, on a
    matrix large enough for several panels before LAPACK's crossover to the unblocked code."""
    monkeypatch.setattr(K, "TRD_BLOCK", block)
    rng = np.random.default_rng(block)
    x = rng.standard_normal((300, 150)) + rng.standard_normal((300, 1))
    a = np.corrcoef(x.T)
    ref = np.linalg.eigvalsh(a)
    got, how = K.sym_eigvalsh(a.copy())
    assert how == "cold"
    assert np.max(np.abs(got - ref)) <= 1e-12 * ref[-1]


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(2, 4))
# plain sliding sums of s and q drifted by ~27 bars x u x |q|, amplified by the variance: 2.2e-14 here
@example(seed=400, n=2)
def test_published_error_bound_covers_the_error_also_when_lanczos_spans_every_asset(seed: int, n: int) -> None:
    """With 2-4 assets the Krylov basis spans the whole eligible space within a few steps (the
    whole-space branch). The published relative error bound is positive (it carries the rounding
    of T's eigenvalue) and covers |lambda_max - eigvalsh| on every certified scan."""
    closes, mask = _generated_closes(seed, 80, n)
    sonar = Sonar(n, _cfg(windows=[10, 25], vel_div_short=10, vel_div_long=25, full_spectrum=False,
                          exact_check_every_bars=0, regime={"structure_window": 25, "min_assets": 2}))
    ret, valid = K.log_returns(closes, mask)
    certified = 0
    for t in range(closes.shape[0]):
        rec = sonar.update(t + 1, closes[t], mask[t])
        for f in rec.windows:
            if not f.ready or f.exact:
                continue
            c, _ = K.correlation_from_scratch(ret[t - f.window + 1 : t + 1], valid[t - f.window + 1 : t + 1])
            lam = float(np.linalg.eigvalsh(c)[-1])
            assert f.error_bound > 0.0
            # the bound is for the scanner's own (incrementally summed) matrix; 1e-14 covers its
            # difference from the from-scratch reference: s and q are compensated, the cross-product
            # drifts by ~u per bar (<= 15 u measured over these 80 bars; re-anchored past 1e-12)
            assert abs(f.lambda_max - lam) <= f.error_bound * lam + 1e-14 * lam
            certified += 1
    assert certified > 0


@settings(max_examples=60)
@given(st.integers(8, 200), st.integers(0, 2**32 - 1), st.floats(0.05, 0.5), st.floats(0.34, 3.0))
# a cluster of 3 zero eigenvalues: Laguerre retried after every 3 bisections needed 64-128 rounds
@example(n=140, seed=140, dup=0.0625, w_over_n=0.341796875)
def test_warm_tridiagonal_solver_converges_on_near_duplicate_assets(n: int, seed: int, dup: float, w_over_n: float) -> None:
    """Near-duplicate assets (one series scaled, as the same coin on two quotes) give a cluster of
    near-zero eigenvalues, where Laguerre is only linear: the solver must notice, bisect, and still
    converge within its round budget (no silent fall-back to LAPACK on every bar). W < N too."""
    rng = np.random.default_rng(seed)
    w = max(4, int(w_over_n * n))
    x = rng.standard_normal((w + 1, n)) * rng.uniform(0.1, 3.0, n) + rng.standard_normal((w + 1, 1)) * rng.uniform(0, 2)
    k = max(2, int(dup * n))
    x[:, :k] = x[:, [0]] * rng.uniform(0.9, 1.1)
    prev = np.linalg.eigvalsh(np.corrcoef(x[:-1].T))
    cur = np.corrcoef(x[1:].T)
    if not np.isfinite(cur).all():
        return
    got, how = K.sym_eigvalsh(cur.copy(), prev)
    assert how == "warm"
    ref = np.linalg.eigvalsh(cur)
    assert np.max(np.abs(got - ref)) <= 1e-12 * n


def test_a_warm_solver_that_does_not_converge_is_counted_and_backed_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated prices; the warm tridiagonal solver is made to report non-convergence on one scan:
    that scan's spectrum comes from LAPACK (still exact), `spectrum_fallback` counts it, the window
    uses LAPACK for the next 16 bars (`spectrum_cold`) and then the warm start again."""
    closes, mask = _generated_closes(7, 120, 6)
    cfg = _cfg(windows=[10, 25], vel_div_short=10, vel_div_long=25, full_spectrum=True,
               regime={"structure_window": 25, "min_assets": 2})
    sonar = Sonar(6, cfg)
    real = K.tridiag_eigvals_warm
    fail_at = {40}
    state = {"bar": -1}

    def flaky(d, e, guess, max_pass):
        x, ok = real(d, e, guess, max_pass)
        return x, ok and state["bar"] not in fail_at

    monkeypatch.setattr(K, "tridiag_eigvals_warm", flaky)
    ret, valid = K.log_returns(closes, mask)
    hist = []
    for t in range(closes.shape[0]):
        state["bar"] = t
        before = dict(sonar.counters.events)
        rec = sonar.update(t + 1, closes[t], mask[t])
        after = sonar.counters.events
        hist.append({k: after.get(k, 0) - before.get(k, 0) for k in ("spectrum_warm", "spectrum_cold", "spectrum_fallback")})
        w10 = rec.windows[0]
        if w10.ready:
            c, _ = K.correlation_from_scratch(ret[t - 9 : t + 1], valid[t - 9 : t + 1])
            assert abs(w10.lambda_max - np.linalg.eigvalsh(c)[-1]) <= 1e-9 * w10.lambda_max
    assert hist[40]["spectrum_fallback"] == 2  # both windows fell back on that bar
    assert all(h["spectrum_cold"] == 2 and h["spectrum_warm"] == 0 for h in hist[41:56])
    assert all(h["spectrum_warm"] == 2 for h in hist[57:])


def _bar_returns_reference(closes, mask, prev_close, prev_ok, returns):
    """The scanner's per-bar bookkeeping as numpy expressions (what bar_returns compiles)."""
    finite_pos = np.isfinite(closes) & (closes > 0.0)
    ok = mask & finite_pos
    both = ok & prev_ok
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        raw = returns if returns is not None else np.log(closes / prev_close)
    valid = both & np.isfinite(raw)
    r = np.zeros(closes.size)
    r[valid] = raw[valid]
    counts = (int(np.count_nonzero(mask & ~finite_pos)), int(np.count_nonzero(~mask)),
              int(np.count_nonzero(prev_ok & ~ok)), int(np.count_nonzero(ok & ~prev_ok)),
              int(np.count_nonzero(ok)), int(np.count_nonzero(valid)), int(np.count_nonzero(both & ~valid)))
    return ok, valid, r, np.where(ok, closes, prev_close), counts


@given(st.integers(0, 10_000), st.integers(1, 60), st.booleans())
def test_bar_returns_equals_the_numpy_bookkeeping(seed: int, n: int, with_returns: bool) -> None:
    """Generated bars with NaN, zero, negative and infinite closes, masked bars, gaps starting and
    ending, positive closes whose ratio to the previous one over- or underflows (subnormal and
    huge prices: the return is not finite, masked and counted), and (scale-out path) given
    returns with non-finite entries: the compiled pass equals the numpy expressions it replaces,
    counts included."""
    rng = np.random.default_rng(seed)
    closes = rng.uniform(0.5, 200.0, n)
    bad = rng.random(n)
    closes[bad < 0.05] = np.nan
    closes[(bad >= 0.05) & (bad < 0.08)] = 0.0
    closes[(bad >= 0.08) & (bad < 0.1)] = -1.0
    closes[(bad >= 0.1) & (bad < 0.12)] = np.inf
    closes[(bad >= 0.12) & (bad < 0.14)] = 1e-310
    closes[(bad >= 0.14) & (bad < 0.16)] = 1e308
    mask = rng.random(n) > 0.1
    prev_close = rng.uniform(0.5, 200.0, n)
    prev_close[rng.random(n) < 0.05] = 1e-310
    prev_ok = rng.random(n) > 0.15
    returns = rng.standard_normal(n) * 0.01 if with_returns else None
    if returns is not None:
        returns[rng.random(n) < 0.1] = np.nan
    ok_ref, valid_ref, r_ref, pc_ref, counts_ref = _bar_returns_reference(closes, mask, prev_close, prev_ok, returns)
    ok, valid, r = np.empty(n, dtype=bool), np.empty(n, dtype=bool), np.empty(n)
    pc = prev_close.copy()
    counts = K.bar_returns(closes, mask, pc, prev_ok, returns if returns is not None else np.empty(0), with_returns,
                           ok, valid, r)
    assert tuple(counts) == counts_ref
    np.testing.assert_array_equal(ok, ok_ref)
    np.testing.assert_array_equal(valid, valid_ref)
    np.testing.assert_allclose(r, r_ref, rtol=1e-15, atol=0)  # libm vs numpy's log: at most an ulp
    np.testing.assert_array_equal(pc, pc_ref)


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(2, 70), st.floats(0.0, 1.0))
def test_packed_product_equals_the_dense_product_on_both_paths(seed: int, n: int, frac_ineligible: float) -> None:
    """cross_matvec takes rows two at a time when >= 60 % of the assets are eligible (ineligible
    rows then add 0), else one at a time skipping them: both equal the dense D (P - W mu mu^T) D v,
    for odd and even n."""
    rng = np.random.default_rng(seed)
    w = 3 * n + 5
    x = rng.standard_normal((w, n)) * 0.01
    full = x.T @ x
    p = full[np.tril_indices(n)].copy()  # packed lower triangle, row by row
    mu = x.mean(axis=0)
    d = 1.0 / np.sqrt(((x - mu) ** 2).sum(axis=0))
    d[rng.random(n) < frac_ineligible] = 0.0
    v = rng.standard_normal(n)
    c = (full - w * np.outer(mu, mu)) * np.outer(d, d)
    out = np.empty(n)
    K.cross_matvec(p, mu, d, float(w), v, out)
    np.testing.assert_allclose(out, c @ v, rtol=0, atol=1e-12 * (1 + np.abs(c).sum(axis=1).max() * np.abs(v).max()))
    assert np.all(out[d == 0.0] == 0.0)


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.integers(2, 70), st.floats(0.0, 1.0))
def test_packed_frobenius_equals_the_dense_sum_on_both_paths(seed: int, n: int, frac_ineligible: float) -> None:
    """frobenius_sq_cross goes two rows at a time when >= 60 % of the assets are eligible, else one
    row at a time skipping the ineligible: both equal ||D (P - W mu mu^T) D||_F^2, odd and even n."""
    rng = np.random.default_rng(seed)
    w = 3 * n + 5
    x = rng.standard_normal((w, n)) * 0.01
    full = x.T @ x
    p = full[np.tril_indices(n)].copy()
    mu = x.mean(axis=0)
    d = 1.0 / np.sqrt(((x - mu) ** 2).sum(axis=0))
    d[rng.random(n) < frac_ineligible] = 0.0
    c = (full - w * np.outer(mu, mu)) * np.outer(d, d)
    assert K.frobenius_sq_cross(p, mu, d, float(w)) == pytest.approx(float((c * c).sum()), rel=1e-12, abs=1e-15)


@settings(max_examples=30)
@given(st.integers(0, 10_000), st.integers(1, 60), st.integers(1, 60), st.booleans())
def test_gram_lower_is_the_lower_triangle_of_the_gram_product(seed: int, r: int, c: int, strided: bool) -> None:
    """The full scan's Gram matrices (BLAS dsyrk, one triangle) equal numpy's products on the lower
    triangle, C order, for z z^T and z^T z, also from a non-contiguous z."""
    z = np.random.default_rng(seed).standard_normal((r, 2 * c if strided else c))
    if strided:
        z = z[:, ::2]
    for outer, ref in ((True, z @ z.T), (False, z.T @ z)):
        g = K.gram_lower(z, outer=outer)
        assert g.shape == ref.shape and g.flags.c_contiguous
        np.testing.assert_allclose(np.tril(g), np.tril(ref), rtol=1e-12, atol=1e-12)
