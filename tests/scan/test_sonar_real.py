"""Sonar on REAL market data (../shared/data): every scan checked against numpy eigvalsh."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dolphin.scan.config import RegimeConfig, ScanConfig
from dolphin.scan.record import ATTACK, VETO
from dolphin.scan.sonar import Sonar

from ._data import real_bars, reference_lambda_max, reference_spectrum

DEFAULT_WINDOWS = (50, 150, 300, 750)


def _run_and_check(dataset: str, n_bars: int, cfg: ScanConfig, t_start: int = 0, check_every: int = 1) -> Sonar:
    bars = real_bars(dataset)
    closes, mask = bars.closes[t_start : t_start + n_bars], bars.mask[t_start : t_start + n_bars]
    sonar = Sonar(closes.shape[1], cfg)
    checked = 0
    for t in range(closes.shape[0]):
        rec = sonar.update(int(bars.ts_ms[t_start + t]) * 1_000_000, closes[t], mask[t])
        if t % check_every:
            continue
        for f in rec.windows:
            if t < f.window:
                assert not f.ready
                continue
            lam, n_eff = reference_lambda_max(closes, mask, t, f.window, min_coverage=cfg.min_coverage,
                                              alpha=cfg.singular_shrinkage)
            assert f.n_assets == n_eff
            if n_eff < 2:
                assert not f.ready
                continue
            assert f.ready
            assert abs(f.lambda_max - lam) <= 1e-9 * lam, (dataset, t, f)
            for name in ("lambda_max", "mp_edge", "error_bound"):
                assert math.isfinite(getattr(f, name))
            if cfg.full_spectrum:
                assert 0.0 <= f.entropy <= 1.0 and 0.0 < f.absorption <= 1.0
                # entropy and absorption ratio vs the independent spectrum, computed here with numpy
                ev, _ = reference_spectrum(closes, mask, t, f.window, min_coverage=cfg.min_coverage,
                                           alpha=cfg.singular_shrinkage)
                p = np.clip(ev, 0.0, None) / n_eff
                p = p[p > 0.0]
                assert abs(f.entropy - float(-(p * np.log(p)).sum() / math.log(n_eff))) <= 1e-9, (dataset, t, f)
                top = np.sort(np.clip(ev, 0.0, None))[::-1][: max(1, math.ceil(cfg.absorption_frac * n_eff - 1e-9))]
                assert abs(f.absorption - float(top.sum() / n_eff)) <= 1e-9, (dataset, t, f)
            checked += 1
        if all(f.ready for f in rec.windows) and t >= max(cfg.windows) + cfg.velocity_lag_bars:
            assert math.isfinite(rec.vel_div) and math.isfinite(rec.instability)
            assert rec.regime in (ATTACK, VETO)
    assert checked > 0
    return sonar


def test_spot_50_assets_signal_path_exact_every_scan(shared_data) -> None:
    """The 50-asset 1-minute spot set, default windows: the incremental signal path vs eigvalsh."""
    cfg = ScanConfig(full_spectrum=False, exact_check_every_bars=0)
    sonar = _run_and_check("binance_spot_1m_2021-04", 1400, cfg, t_start=5000)
    c = sonar.counters
    assert c.drift_violations == 0
    assert c.lanczos_steps > 0
    assert c.singular_shrinks > 0  # W = 50 with 50 assets is singular: shrinkage applied and counted


def test_spot_50_assets_full_scan(shared_data) -> None:
    cfg = ScanConfig(full_spectrum=True)
    sonar = _run_and_check("binance_spot_1m_2021-04", 900, cfg, t_start=9000, check_every=7)
    ev = sonar.counters.events
    # after each window's first spectrum, the previous bar's spectrum warm-starts the solver
    assert ev.get("spectrum_warm", 0) > 0.9 * (ev.get("spectrum_warm", 0) + ev.get("spectrum_cold", 0))
    assert ev.get("spectrum_fallback", 0) == 0


def test_perp_5m_listing_mid_window(shared_data) -> None:
    """USD-M perps 5m: 3 symbols start ~157 bars before the other 27 (they list mid-window)."""
    bars = real_bars("binance_usdm_5m_2023-07")
    first_real = bars.mask.argmax(axis=0)
    assert len(set(first_real.tolist())) > 1  # the data really has staggered listings
    cfg = ScanConfig(full_spectrum=False, windows=[50, 150, 300], vel_div_short=50, vel_div_long=150,
                     exact_check_every_bars=50)
    sonar = _run_and_check("binance_usdm_5m_2023-07", 700, cfg)
    c = sonar.counters
    assert c.missing_bars > 0  # the not-yet-listed symbols
    assert c.low_coverage_exclusions > 0
    assert c.universe_changes > 0  # the listed symbols entered the windows
    assert c.drift_violations == 0


def test_perp_1m_set(shared_data) -> None:
    cfg = ScanConfig(full_spectrum=False, windows=[50, 150, 300, 750], exact_check_every_bars=100)
    sonar = _run_and_check("binance_usdm_1m_2023-07", 1300, cfg, check_every=3)
    assert sonar.counters.drift_violations == 0


def test_real_data_with_injected_gaps_and_nan(shared_data) -> None:
    """Real spot closes with real-world mess injected: an exchange outage, NaN closes flagged real,
    a delisting, a frozen (zero-variance) price. Exactness holds and every case is counted."""
    bars = real_bars("binance_spot_1m_2021-04")
    closes = bars.closes[2000:2700, :20].copy()
    mask = bars.mask[2000:2700, :20].copy()
    mask[400:404, :] = False  # outage: 4 bars missing for everyone
    closes[400:404, :] = np.nan
    mask[500:503, 3] = False  # a 3-bar gap for one asset
    closes[500:503, 3] = np.nan
    closes[450, 5] = np.nan  # NaN close flagged as real
    closes[460, 6] = -1.0  # non-positive close flagged as real
    mask[600:, 7] = False  # delisted
    closes[600:, 7] = np.nan
    closes[300:, 8] = closes[300, 8]  # frozen price
    cfg = ScanConfig(windows=[50, 150], vel_div_short=50, vel_div_long=150, full_spectrum=False,
                     regime=RegimeConfig(structure_window=150), exact_check_every_bars=25)
    sonar = Sonar(20, cfg)
    seen_nan = False
    for t in range(700):
        rec = sonar.update(t + 1, closes[t], mask[t])
        for f in rec.windows:
            if f.ready:
                for v in (f.lambda_max, f.mp_edge, f.velocity if t > f.window + 1 else 0.0):
                    seen_nan |= not math.isfinite(v)
                lam, n_eff = reference_lambda_max(closes, mask, t, f.window)
                assert f.n_assets == n_eff
                assert abs(f.lambda_max - lam) <= 1e-9 * lam
        if 400 <= t < 404:
            assert rec.regime == VETO and "bar.complete" in rec.failed_inputs and "gate" in rec.veto_reasons
        if t == 404:  # bars are back but no asset has a return across the outage yet
            assert rec.regime == VETO and rec.failed_inputs == ("bar.returns",)
    assert not seen_nan
    c = sonar.counters
    assert c.bad_prices == 2
    assert c.missing_bars == 4 * 20 + 3 + 100
    assert c.zero_variance_exclusions > 0
    assert c.low_coverage_exclusions > 0
    assert c.universe_changes >= 3
    # outage (20 assets) + 3-bar gap + NaN close + bad close + delisting + the frozen asset never gaps
    assert c.gap_starts == 20 + 1 + 1 + 1 + 1
    assert c.gap_ends == 20 + 1 + 1 + 1


def test_each_windows_zero_variance_count_is_the_same_on_both_paths(shared_data) -> None:
    """Real spot closes, two assets frozen (zero variance): every record's per-window
    n_zero_variance is 2 once the freeze fills the window, on the full path as on the signal path
    (the full path published the Gram route's count of zero eigenvalues there: 0 for the frozen
    assets, and W < N_eff healthy assets as zero-variance)."""
    bars = real_bars("binance_spot_1m_2021-04")
    closes = bars.closes[3000:3400, :30].copy()
    mask = bars.mask[3000:3400, :30].copy()
    closes[:, 4] = closes[0, 4]
    closes[:, 9] = closes[0, 9]
    got = {}
    for full in (False, True):
        cfg = ScanConfig(windows=[20, 60], vel_div_short=20, vel_div_long=60, full_spectrum=full,
                         regime=RegimeConfig(structure_window=60))  # fmt: skip
        sonar = Sonar(30, cfg)
        rows = []
        for t in range(closes.shape[0]):
            rec = sonar.update(t + 1, closes[t], mask[t])
            rows.append([(f.window, f.n_assets, f.n_zero_variance) for f in rec.windows if f.ready])
        got[full] = rows
    assert got[True] == got[False]
    last = got[True][-1]
    assert [w for w, _, _ in last] == [20, 60] and all(nz == 2 for _, _, nz in last)
    assert last[0][1] > 20  # W = 20 < N_eff: the full path took the Gram route


@pytest.mark.slow
def test_spot_long_run_signal_path(shared_data) -> None:
    """Long run (slow): 5000 scans of the 50-asset set, every scan exact to 1e-9."""
    cfg = ScanConfig(full_spectrum=False, exact_check_every_bars=0)
    _run_and_check("binance_spot_1m_2021-04", 5000, cfg)


def test_drift_is_detected_and_recovered(shared_data) -> None:
    """Loss of accuracy (here: the sliding sums of one window corrupted, as accumulated rounding
    would) is caught by the periodic exact check, counted, and the output is exact again."""
    bars = real_bars("binance_spot_1m_2021-04")
    closes, mask = bars.closes[7000:7400, :30], bars.mask[7000:7400, :30]
    cfg = ScanConfig(windows=[50, 150], vel_div_short=50, vel_div_long=150, full_spectrum=False,
                     regime=RegimeConfig(structure_window=150), exact_check_every_bars=40, resum_every_bars=100_000)
    sonar = Sonar(30, cfg)
    wrong_after_corruption = 0
    for t in range(400):
        if t == 205:
            sonar._win[150].q *= 1.0 + 1e-4  # simulated drift of the running sums of squares
        rec = sonar.update(t + 1, closes[t], mask[t])
        f = rec.window(150)
        if t >= 150:
            lam, _ = reference_lambda_max(closes, mask, t, 150)
            err = abs(f.lambda_max - lam) / lam
            if 205 <= t < 240:
                wrong_after_corruption += err > 1e-9
            elif t >= 240:  # an exact check (every 40 bars, staggered per window) has run by now
                assert err <= 1e-9, (t, err)
    assert wrong_after_corruption > 0  # the corruption really broke the incremental state
    assert sonar.counters.drift_violations == 1
    assert sonar.counters.exact_checks >= 5


def test_an_eligibility_flip_on_the_exact_re_anchor_is_a_counted_universe_change(shared_data) -> None:
    """The sliding sums of one asset corrupted so that it looks zero-variance (ineligible); the
    periodic exact check re-anchors the sums and the asset is eligible again. That flip changes the
    asset set lambda_max is taken over, so it is a universe change like any other: counted, and the
    scan is VETO (before: compared against itself, never counted, the scan could be ATTACK)."""
    bars = real_bars("binance_spot_1m_2021-04")
    closes, mask = bars.closes[7000:7400, :30], bars.mask[7000:7400, :30]
    # W = 7 (W^2 < 2 N) keeps no cross-product, so nothing but the exact check re-anchors its sums
    cfg = ScanConfig(windows=[7, 60], vel_div_short=7, vel_div_long=60, full_spectrum=False,
                     regime=RegimeConfig(structure_window=60), exact_check_every_bars=40, resum_every_bars=100_000)
    sonar = Sonar(30, cfg)
    assert not sonar._win[7].has_p
    n7 = []
    recs = []
    changes = []
    for t in range(260):
        if t == 205:
            sonar._win[7].q[7] -= 1.0  # negative variance in the sliding sums: asset 7 drops out
        changes.append(sonar.counters.universe_changes)
        rec = sonar.update(t + 1, closes[t], mask[t])
        recs.append(rec)
        n7.append(rec.window(7).n_assets)
    full = n7[204]
    drop = n7.index(full - 1, 205)
    back = n7.index(full, drop)  # the exact check re-anchored the sums
    assert drop == 205 and back > drop + 1
    assert "universe_change" in recs[back].veto_reasons and recs[back].regime == VETO
    assert back + 1 < len(changes) and changes[back + 1] > changes[back]  # the recovery was counted


@pytest.mark.parametrize("full", [False, True])
def test_bad_print_leaving_the_window_does_not_leave_drift_behind(shared_data, full: bool) -> None:
    """A mis-scaled close flagged as real (x1000 for one bar on the calmest of 20 real spot assets)
    puts two returns of ~7 into the window, ~10^4 times the asset's 1-minute standard deviation.
    When they leave it, plain sliding sums keep their rounding (~u * 48 against a sum of squares
    of ~2e-5): lambda_max was off by 3.6e-10 for the rest of the re-anchor period, also on the
    "exact" full path. Compensated s and q, and an immediate re-anchor of the cross-product when its
    rounding could exceed 1e-12 (counted ``resum_drift``), keep every scan within its published
    bound of the from-scratch value (both fail on plain sliding sums)."""
    bars = real_bars("binance_spot_1m_2021-04")
    closes, mask = bars.closes[3000:3400, :20].copy(), bars.mask[3000:3400, :20]
    j = int(np.nanargmin(np.nanstd(np.diff(np.log(closes), axis=0), axis=0)))
    closes[100, j] *= 1000.0
    cfg = ScanConfig(windows=[50, 150], vel_div_short=50, vel_div_long=150, full_spectrum=full,
                     regime=RegimeConfig(structure_window=150), exact_check_every_bars=0)
    sonar = Sonar(20, cfg)
    checked = 0
    for t in range(400):
        rec = sonar.update(t + 1, closes[t], mask[t])
        for f in rec.windows:
            if f.ready and t > 100 + f.window:  # the bad print's returns have left this window
                lam, _ = reference_lambda_max(closes, mask, t, f.window)
                assert abs(f.lambda_max - lam) <= (f.error_bound + 1e-13) * lam, (t, f)
                checked += 1
    assert checked > 300
    # each window re-anchored as the bad print's returns left it (once or twice: one per return)
    assert 2 <= sonar.counters.events.get("resum_drift", 0) <= 4


@pytest.mark.parametrize("full", [False, True])
def test_more_assets_than_window_is_shrunk_and_exact(shared_data, full: bool) -> None:
    """N = 50 real assets > W = 30 / 45 returns: singular C, stated shrinkage, Gram route, still exact."""
    cfg = ScanConfig(windows=[30, 45], vel_div_short=30, vel_div_long=45, full_spectrum=full,
                     regime=RegimeConfig(structure_window=45), exact_check_every_bars=0)
    sonar = _run_and_check("binance_spot_1m_2021-04", 250, cfg, t_start=12000)
    assert sonar.counters.singular_shrinks == 2 * (250 - 30) - 15


def test_real_eigenvalue_crossing_small_universe(shared_data) -> None:
    """REAL spot closes, 4 assets, W = 15: the top eigenvector turns over between consecutive bars
    (the top two eigenvalues cross; found from the data, not assumed). The warm-started signal path
    must stay equal to eigvalsh on every scan through the crossings."""
    from dolphin.scan import kernels as K

    bars = real_bars("binance_spot_1m_2021-04")
    closes, mask = bars.closes[5000:5300, :4], bars.mask[5000:5300, :4]
    ret, valid = K.log_returns(closes, mask)
    w = 15
    crossings = 0
    prev = None
    for t in range(w, closes.shape[0]):
        c, el = K.correlation_from_scratch(ret[t - w + 1 : t + 1], valid[t - w + 1 : t + 1], 0.9)
        if el.sum() < 4:
            prev = None
            continue
        v = np.linalg.eigh(c)[1][:, -1]
        crossings += prev is not None and abs(v @ prev) < 0.3
        prev = v
    assert crossings >= 1  # the data really has a crossing in this range
    cfg = ScanConfig(full_spectrum=False, windows=[15, 30], vel_div_short=15, vel_div_long=30,
                     exact_check_every_bars=0, regime=RegimeConfig(structure_window=15, min_assets=2))
    sonar = _run_and_check_arrays(closes, mask, cfg)
    assert sonar.counters.lanczos_steps > 0


def _run_and_check_arrays(closes: np.ndarray, mask: np.ndarray, cfg: ScanConfig) -> Sonar:
    sonar = Sonar(closes.shape[1], cfg)
    checked = 0
    for t in range(closes.shape[0]):
        rec = sonar.update(t + 1, closes[t], mask[t])
        for f in rec.windows:
            if not f.ready:
                continue
            lam, n_eff = reference_lambda_max(closes, mask, t, f.window, min_coverage=cfg.min_coverage,
                                              alpha=cfg.singular_shrinkage)
            assert f.n_assets == n_eff
            assert abs(f.lambda_max - lam) <= 1e-9 * lam, (t, f)
            checked += 1
    assert checked > 0
    return sonar


def _day_blocks(blocks: int, n_bars: int, t_start: int) -> tuple[np.ndarray, np.ndarray]:
    """REAL closes: the 50-asset spot set, block k taken k days later (every column a real series;
    the blocks are uncorrelated days, so the matrix has `blocks` comparable market modes)."""
    bars = real_bars("binance_spot_1m_2021-04")
    day = 1440
    cols = [bars.closes[t_start + k * day : t_start + k * day + n_bars] for k in range(blocks)]
    masks = [bars.mask[t_start + k * day : t_start + k * day + n_bars] for k in range(blocks)]
    return np.concatenate(cols, axis=1), np.concatenate(masks, axis=1)


@pytest.mark.parametrize("shift", [True, False])
def test_comparable_modes_certified_by_the_secular_bound_exact_every_scan(shared_data, shift: bool) -> None:
    """Two real day-blocks (N = 100, two comparable market modes): no split of the spectrum passes the
    trace / Frobenius test (before the secular bound, > 100 of these scans went to the exact solver
    without the shift certificate, and the shift certificate took every one). The secular bound on
    the top eigenvalue alone certifies every scan, with or without the Cholesky proof available,
    and every scan equals eigvalsh to 1e-9."""
    closes, mask = _day_blocks(2, 830, 200)
    cfg = ScanConfig(full_spectrum=False, exact_check_every_bars=0, shift_certificate=shift)
    sonar = _run_and_check_arrays(closes, mask, cfg)
    ev = sonar.counters.events
    assert sonar.counters.lanczos_fallbacks == 0
    assert "shift_certified" not in ev and "exact_direct" not in ev
    assert sonar.counters.lanczos_steps > 0


def test_shift_certificate_takes_over_when_lanczos_is_cut_short(shared_data) -> None:
    """Four real day-blocks (N = 200) with the Lanczos budget cut to 8 steps, too few for the top
    Ritz values to separate from the bulk (trace / Frobenius / secular all need ~10 here): the shift
    certificate (one Cholesky of sigma I - C) proves lambda_max for most scans and the rest come from
    the exact solver (counted); with it off, those scans are exact-solver scans too. Every scan equals
    eigvalsh to 1e-9 either way."""
    closes, mask = _day_blocks(4, 480, 200)
    counts = {}
    for shift in (True, False):
        cfg = ScanConfig(full_spectrum=False, exact_check_every_bars=0, shift_certificate=shift,
                         windows=[50, 150, 300], vel_div_long=300, lanczos_max_steps=8)
        sonar = _run_and_check_arrays(closes, mask, cfg)
        counts[shift] = (sonar.counters.events, sonar.counters.lanczos_fallbacks)
    ev_on, fb_on = counts[True]
    ev_off, fb_off = counts[False]
    assert ev_on.get("shift_certified", 0) > 100
    assert "shift_certified" not in ev_off and fb_off > fb_on + 100


@pytest.mark.parametrize("w", [150, 300])
def test_warm_tridiagonal_solver_converges_in_few_rounds_on_real_windows(shared_data, w: int) -> None:
    """Real day-block universe (the benchmark's: 2 blocks of the 50 spot assets, block 2 one day
    later = 100 real return series), 12 consecutive bars per window length: the warm solver,
    started from the previous bar's spectrum, has every eigenvalue of the Householder tridiagonal
    form within 16 rounds and equal to LAPACK's dsterf. Before the own-previous-value start and
    the crawl guard, eigenvalues started next to a neighbour crawled, ran out of Laguerre steps
    and bisected for 40-50 rounds on these windows."""
    from scipy.linalg import lapack

    from dolphin.scan import kernels as K

    bars = real_bars("binance_spot_1m_2021-04")
    closes = np.concatenate([bars.closes[: w + 20], bars.closes[1440 : 1440 + w + 20]], axis=1)
    assert np.isfinite(closes).all()
    ret = np.diff(np.log(closes), axis=0)
    prev = None
    for t in range(w, w + 13):
        c = np.corrcoef(ret[t - w : t].T)
        _, d, e, _, info = lapack.dsytrd(c, lower=1)
        assert info == 0
        ref = np.sort(lapack.dsterf(d.copy(), e.copy())[0])
        if prev is not None:
            got, ok = K.tridiag_eigvals_warm(d, e, prev, 16)
            assert ok, (w, t)
            tol = 32 * 2**-53 * (np.abs(d).max() + 2 * np.abs(e).max())
            assert np.max(np.abs(np.sort(got) - ref)) <= tol
        prev = ref
