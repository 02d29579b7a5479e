"""Pure numeric kernels of Sonar: correlation spectra of return windows (no I/O, no state).

Correlation with missing bars (the rule, also in docs/decisions/0002-scan-missing-bars.md):
a return r[t, j] = ln(close[t, j] / close[t-1, j]) is *valid* only when both bars are real
(mask True), finite and positive. In a window of W returns, asset j is *eligible* when it has
at least ``ceil(min_coverage * W)`` valid returns and a return variance above ``min_return_var``.
For eligible assets, with mu_j and SS_j the mean and centred sum of squares over j's valid
returns only,

    Z[t, j] = valid[t, j] * (r[t, j] - mu_j) / sqrt(SS_j),        C = Z^T Z.

C is positive semi-definite with a unit diagonal and equals the Pearson correlation
(``np.corrcoef``) when the window is complete. A missing return contributes nothing to any
cross product (it is masked, never filled with a price or a zero return that would be
counted as real). Ineligible assets get a zero column (weight 0): the spectrum then holds
exactly N_eff = #eligible non-trivial eigenvalues, and the output never depends on them.

Spectral features use p_i = lambda_i / N_eff (trace C = N_eff):
entropy H = -sum p_i ln p_i / ln N_eff in [0, 1]; absorption ratio = sum of the top
ceil(frac * N_eff) eigenvalues / N_eff; Marchenko-Pastur edge (1 + sqrt(N_eff / W))^2.
When N_eff >= W (singular C) the scanner applies linear shrinkage C_s = (1-a) C + a I, whose
spectrum is exactly (1-a) lambda + a; the kernels here expose that map.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = [
    "absorption_ratio",
    "corr_matvec",
    "correlation_from_scratch",
    "entropy_normalised",
    "exact_spectrum",
    "frobenius_sq_cross",
    "lanczos_top",
    "log_returns",
    "mp_edge",
    "shift_certificate",
    "shift_certificate_cross",
    "shrink_spectrum",
    "spectrum_features",
    "standardise",
    "sym_eigvalsh",
    "tridiag_eigvals_warm",
    "window_sums",
]

_FM = {"reassoc", "contract"}  # vectorisable reductions; no nnan/ninf (inputs are finite by construction)


# --------------------------------------------------------------------------- returns and sums


def log_returns(closes: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close-to-close log returns (T x N) and their validity mask from closes and a real-bar mask.

    Row 0 has no previous bar and is invalid. Invalid returns are 0.0 (never NaN).
    """
    closes = np.asarray(closes, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    ok = mask & np.isfinite(closes) & (closes > 0.0)
    valid = np.zeros_like(ok)
    valid[1:] = ok[1:] & ok[:-1]
    ret = np.zeros(closes.shape, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(closes[1:] / closes[:-1])
    ret[1:] = np.where(valid[1:], r, 0.0)
    return ret, valid


@nb.njit(cache=True)
def bar_returns(
    closes: np.ndarray, mask: np.ndarray, prev_close: np.ndarray, prev_ok: np.ndarray, returns: np.ndarray,
    use_returns: bool, ok: np.ndarray, valid: np.ndarray, r: np.ndarray,
) -> tuple[int, int, int, int, int, int, int]:
    """One bar in, in one pass (the scanner's per-bar bookkeeping, compiled):
    ok = mask & finite & positive close; valid = ok & prev_ok & a finite return;
    r = log(close / prev_close) on valid (or ``returns`` when ``use_returns``), 0 elsewhere;
    prev_close <- close where ok. Returns (bad prices: real bars with a NaN / non-positive close,
    missing bars, gap starts, gap ends, ok count, valid count, non-finite returns between two
    real bars: a price ratio that over- or underflows, or a worker's non-finite return)."""
    n = closes.shape[0]
    n_bad = n_missing = n_start = n_end = n_ok = n_valid = n_nonfinite = 0
    for j in range(n):
        x = closes[j]
        fin = np.isfinite(x) and x > 0.0
        m = mask[j]
        if not m:
            n_missing += 1
        elif not fin:
            n_bad += 1
        o = m and fin
        po = prev_ok[j]
        if po and not o:
            n_start += 1
        if o and not po:
            n_end += 1
        v = o and po
        val = 0.0
        if v:
            val = returns[j] if use_returns else math.log(x / prev_close[j])
            if not np.isfinite(val):
                v = False
                val = 0.0
                n_nonfinite += 1
        ok[j] = o
        valid[j] = v
        r[j] = val
        n_ok += o
        n_valid += v
        if o:
            prev_close[j] = x
    return n_bad, n_missing, n_start, n_end, n_ok, n_valid, n_nonfinite


def window_sums(ret: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-asset (count, sum, sum of squares) of the valid returns of a window (rows = time)."""
    v = valid.astype(np.float64)
    r = np.where(valid, ret, 0.0)
    return v.sum(axis=0), r.sum(axis=0), (r * r).sum(axis=0)


def standardise(
    n: np.ndarray, s: np.ndarray, q: np.ndarray, min_count: float, min_return_var: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mu, d, eligible, low_coverage, zero_var) from window sums; d = 1/sqrt(SS) or 0 if ineligible."""
    enough = n >= min_count
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(n > 0, s / np.maximum(n, 1.0), 0.0)
        ss = np.maximum(q - s * mu, 0.0)
        var = np.where(n > 0, ss / np.maximum(n, 1.0), 0.0)
    zero_var = enough & ~(var > min_return_var)
    eligible = enough & ~zero_var
    d = np.zeros_like(mu)
    d[eligible] = 1.0 / np.sqrt(ss[eligible])
    mu = np.where(eligible, mu, 0.0)
    return mu, d, eligible, ~enough, zero_var


def correlation_from_scratch(
    ret: np.ndarray, valid: np.ndarray, min_coverage: float = 0.9, min_return_var: float = 1e-18
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: (C restricted to eligible assets, eligible mask) for one window, two-pass numpy.

    The independent, non-incremental definition the scanner is tested against.
    """
    ret = np.asarray(ret, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    w = ret.shape[0]
    n = valid.sum(axis=0).astype(np.float64)
    min_count = math.ceil(min_coverage * w - 1e-9)
    r = np.where(valid, ret, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(n > 0, r.sum(axis=0) / np.maximum(n, 1.0), 0.0)
    dev = np.where(valid, r - mu, 0.0)
    ss = (dev * dev).sum(axis=0)
    var = np.where(n > 0, ss / np.maximum(n, 1.0), 0.0)
    eligible = (n >= min_count) & (var > min_return_var)
    z = dev[:, eligible] / np.sqrt(ss[eligible])
    return z.T @ z, eligible


# --------------------------------------------------------------------------- spectral features


def mp_edge(n_assets: int, n_obs: int) -> float:
    """Marchenko-Pastur upper edge (1 + sqrt(N/W))^2 of a pure-noise correlation matrix."""
    if n_assets <= 0 or n_obs <= 0:
        return float("nan")
    return (1.0 + math.sqrt(n_assets / n_obs)) ** 2


def shrink_spectrum(eigs: np.ndarray, alpha: float) -> np.ndarray:
    """Spectrum of (1 - alpha) C + alpha I given the spectrum of C."""
    return (1.0 - alpha) * eigs + alpha


def entropy_normalised(eigs: np.ndarray, n_assets: int) -> float:
    """-sum p ln p / ln N with p = lambda / N (eigenvalues of an N-asset correlation matrix)."""
    if n_assets < 2:
        return float("nan")
    return _spectrum_features(np.asarray(eigs, dtype=np.float64), 0, 0.0, float(n_assets), 1)[0]


def absorption_ratio(eigs: np.ndarray, n_assets: int, frac: float) -> float:
    """Share of total variance (N) absorbed by the top ceil(frac * N) eigenvalues."""
    if n_assets < 1:
        return float("nan")
    k = max(1, math.ceil(frac * n_assets - 1e-9))
    return _spectrum_features(np.asarray(eigs, dtype=np.float64), 0, 0.0, float(n_assets), k)[1]


def spectrum_features(eigs: np.ndarray, n_zero: int, alpha: float, n_assets: int, frac: float) -> tuple[float, float]:
    """(entropy_normalised, absorption_ratio) of the spectrum ``eigs`` (ascending) plus ``n_zero``
    exact zeros, shrunk to (1 - alpha) lambda + alpha, without building that spectrum: equal to
    the two functions on ``shrink_spectrum(concatenate([zeros(n_zero), eigs]), alpha)``."""
    if n_assets < 1:
        return float("nan"), float("nan")
    k = max(1, math.ceil(frac * n_assets - 1e-9))
    h, ar = _spectrum_features(np.asarray(eigs, dtype=np.float64), n_zero, alpha, float(n_assets), k)
    return (h if n_assets >= 2 else float("nan")), ar


@nb.njit(cache=True)
def _spectrum_features(eigs: np.ndarray, n_zero: int, alpha: float, n: float, k: int) -> tuple[float, float]:
    m = eigs.size
    for i in range(1, m):
        if eigs[i] < eigs[i - 1]:
            eigs = np.sort(eigs)
            break
    a1 = 1.0 - alpha
    h = 0.0
    for i in range(m):
        p = (a1 * eigs[i] + alpha) / n
        if p > 0.0:
            h -= p * math.log(p)
    pz = alpha / n  # each exact zero maps to alpha
    if n_zero > 0 and pz > 0.0:
        h -= n_zero * (pz * math.log(pz))
    h = min(max(h / math.log(n), 0.0), 1.0) if n > 1.0 else math.nan
    # top k of the union, largest first: eigs from the top, the zeros' value alpha where it ranks
    acc = 0.0
    i = m - 1
    z = n_zero
    zv = max(alpha, 0.0)
    for _ in range(k):
        if i >= 0:
            v = max(a1 * eigs[i] + alpha, 0.0)
            if z > 0 and zv > v:
                acc += zv
                z -= 1
            else:
                acc += v
                i -= 1
        elif z > 0:
            acc += zv
            z -= 1
        else:
            break
    return h, min(acc / n, 1.0)


# dsytrd's panel width. LAPACK's block size for it is 32 (ILAENV); dsytrd takes a narrower panel
# when the workspace is smaller (lwork = n x nb). Measured here (one thread, alternating sizes in
# one process): 12 is ~10 % faster than 32 at n = 150 / 300 / 400 (decision 0003). Same algorithm
# and backward error; only the blocking of the trailing updates changes.
TRD_BLOCK = 12


def gram_lower(z: np.ndarray, *, outer: bool) -> np.ndarray:
    """z z^T (``outer``) or z^T z of a C-ordered z, lower triangle only, C order (what
    :func:`sym_eigvalsh` reads; do not read the strict upper triangle). BLAS dsyrk computes one triangle:
    10 % less than the full GEMM here (W = 300 / 150, N = 400: 0.60 vs 0.67 ms, 0.17 vs 0.19 ms,
    one thread). z.T is z in Fortran order, so no copy is made."""
    from scipy.linalg import blas

    if z.dtype != np.float64 or not z.flags.c_contiguous:
        z = np.ascontiguousarray(z, dtype=np.float64)
    # dsyrk(trans=1) on A = z.T gives A^T A = z z^T; trans=0 gives A A^T = z^T z (upper, F order)
    return blas.dsyrk(1.0, z.T, trans=1 if outer else 0).T


def sym_eigvalsh(a: np.ndarray, guess: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """All eigenvalues (ascending) of the symmetric ``a`` (its lower triangle, C order, is read;
    ``a`` is overwritten), and how: "warm" (the warm-started tridiagonal solver), "cold" (no
    usable guess: LAPACK's dsterf) or "fallback" (the warm solver did not converge: dsterf).

    Householder tridiagonalisation T = Q^T a Q (LAPACK dsytrd, as numpy's eigvalsh), then the
    eigenvalues of T: with ``guess`` (the previous bar's spectrum of the same window, same size)
    by :func:`tridiag_eigvals_warm` (Sturm counts + safeguarded Newton, SIMD across
    eigenvalues), else, or if that does not converge, by LAPACK's dsterf (eigvalsh's solver).
    Both are backward stable: every eigenvalue within a small multiple of u ||T||.
    """
    from scipy.linalg import lapack

    n = a.shape[0]
    if n <= 1:
        return np.array(a, dtype=np.float64).reshape(n), "cold"
    if a.dtype != np.float64 or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=np.float64)
    lwork = max(1, n * TRD_BLOCK)
    # a.T is a in Fortran order (no copy); its upper triangle is a's lower triangle in C order
    _, d, e, _, info = lapack.dsytrd(a.T, lower=0, lwork=lwork, overwrite_a=1)
    if info != 0 or not (np.isfinite(d).all() and np.isfinite(e).all()):
        raise np.linalg.LinAlgError(f"dsytrd: non-finite matrix or failure (info {info})")
    how = "cold"
    if guess is not None and guess.size == n:
        w, ok = tridiag_eigvals_warm(d, e, guess, 64)
        if ok:
            if not (w[1:] >= w[:-1]).all():  # near-equal eigenvalues may swap within the tolerance
                w.sort()
            return w, "warm"
        how = "fallback"
    w, info = lapack.dsterf(d, e)
    if info != 0:
        raise np.linalg.LinAlgError(f"dsterf did not converge (info {info})")
    return w, how


@nb.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sturm_pass(
    d: np.ndarray, e2: np.ndarray, x: np.ndarray, pivmin: float, cnt: np.ndarray, g: np.ndarray, h: np.ndarray,
    r: np.ndarray, dq: np.ndarray, ddq: np.ndarray, m: int,
) -> None:
    """For every shift x_k at once, from the LDL^T pivots q_i of T - x_k I (LAPACK dstebz's
    recurrence and pivmin rule): cnt_k = #eigenvalues below x_k (negative pivots),
    g_k = f'/f = sum 1 / (x_k - lambda_i) and h_k = sum 1 / (x_k - lambda_i)^2 for
    f = det(T - x I) = prod q_i (ln f = sum ln q_i, differentiated through the recurrence).
    The inner loop runs across shifts (independent): vectorised. numpy's error model: 1 / q
    without a zero check (|q| >= pivmin by construction). Only the first m shifts are used."""
    n = d.size
    d0 = d[0]
    for k in range(m):
        qk = d0 - x[k]
        qk = qk if abs(qk) >= pivmin else -pivmin
        rk = 1.0 / qk
        r[k] = rk
        dq[k] = -1.0
        ddq[k] = 0.0
        cnt[k] = 1.0 if qk < 0.0 else 0.0
        g[k] = -rk
        h[k] = rk * rk
    for i in range(1, n):
        di = d[i]
        ei = e2[i - 1]
        for k in range(m):
            rp = r[k]
            t = ei * rp
            qk = (di - x[k]) - t
            u = dq[k] * rp  # q'_{i-1} / q_{i-1}
            dqk = -1.0 + t * u
            ddqk = t * rp * (ddq[k] - 2.0 * dq[k] * u)
            qk = qk if abs(qk) >= pivmin else -pivmin
            rk = 1.0 / qk
            cnt[k] += 1.0 if qk < 0.0 else 0.0
            a = dqk * rk
            g[k] += a
            h[k] += a * a - ddqk * rk
            dq[k] = dqk
            ddq[k] = ddqk
            r[k] = rk


@nb.njit(cache=True)
def _laguerre(x: float, g: float, h: float, n: float, right: bool) -> float:
    """Laguerre's step from x towards the next eigenvalue on the right (or left): for a
    polynomial with only real roots it stays between x and that root (Li & Zeng 1992),
    converging cubically. NaN when the formula breaks down (the caller bisects)."""
    if not (abs(g) < math.inf and abs(h) < math.inf):
        return math.nan  # a pivot at the pivmin floor: the derivatives are meaningless
    disc = (n - 1.0) * (n * h - g * g)
    sq = math.sqrt(disc) if disc > 0.0 else 0.0
    den = g - sq if right else g + sq
    if not (0.0 < abs(den) < math.inf):
        return math.nan
    return x - n / den


@nb.njit(cache=True, error_model="numpy")
def tridiag_eigvals_warm(d: np.ndarray, e: np.ndarray, guess: np.ndarray, max_pass: int) -> tuple[np.ndarray, bool]:
    """Eigenvalues (ascending) of the symmetric tridiagonal T (diagonal d, off-diagonal e),
    warm-started from ``guess`` (n values near them, e.g. the previous bar's spectrum).

    1. One Sturm pass at the sorted guesses brackets every eigenvalue k between the guesses
       whose counts straddle k (Gershgorin bounds at the ends).
    2. All eigenvalues at once, one Sturm pass per round: the count at the iterate moves one
       end of the bracket (count <= k: lambda_k >= x). When lambda_k is the next eigenvalue
       from the iterate (count k below it, k + 1 above), Laguerre's step towards it (cubic,
       never past it) plus tol / 2 (so that the next count lands on the other side and closes
       the bracket); otherwise bisection, also when a step leaves the bracket, when a pivot
       hit the pivmin floor (the derivatives are then meaningless), when a step grew by more
       than 1.5x (x is crawling away from another eigenvalue) and, once two Laguerre steps
       shrank by less than half (it is only linear on a near-multiple root) or 8 steps did not
       converge, for 3 rounds before Laguerre is tried once more, then for good.
       Convergence is decided by the counts alone, so these choices change the speed, never
       the result's accuracy.
    Done when every bracket is at most tol = 16 u ||T||_Gershgorin + 2 pivmin wide (bisection's
    accuracy: each count is exact for a T perturbed by a few u |T|). Returns (values, True),
    or (partial, False) when some eigenvalue did not converge within ``max_pass`` rounds.
    """
    n = d.size
    nf = float(n)
    e2 = np.empty(max(n - 1, 0))
    gl = d[0]
    gu = d[0]
    emax = 0.0
    for i in range(n):
        off = 0.0
        if i > 0:
            off += abs(e[i - 1])
        if i < n - 1:
            off += abs(e[i])
            e2[i] = e[i] * e[i]
            emax = max(emax, e2[i])
        gl = min(gl, d[i] - off)
        gu = max(gu, d[i] + off)
    tnorm = max(abs(gl), abs(gu))
    pivmin = 2.2250738585072014e-308 * max(1.0, emax)
    tol = 16.0 * 1.1102230246251565e-16 * tnorm + 2.0 * pivmin
    gl -= 2.0 * tol
    gu += 2.0 * tol
    wk = np.empty((6, n))  # per-shift work rows of the Sturm pass
    cnt, g, h, r, dq, ddq = wk[0], wk[1], wk[2], wk[3], wk[4], wk[5]
    # 1. probe at the sorted guesses: every eigenvalue gets the tightest probes around it
    xg = np.empty(n)
    for j in range(n):  # a non-finite guess would give a meaningless count: probe the centre
        v = guess[j]
        xg[j] = min(max(v, gl), gu) if abs(v) < math.inf else 0.5 * (gl + gu)
    xg.sort()
    _sturm_pass(d, e2, xg, pivmin, cnt, g, h, r, dq, ddq, n)
    for j in range(1, n):  # counts are monotone in exact arithmetic; keep them so
        cnt[j] = max(cnt[j], cnt[j - 1])
    lo = np.full(n, gl)
    hi = np.full(n, gu)
    clo = np.zeros(n)  # eigenvalue counts below lo_k and below hi_k
    chi = np.full(n, nf)
    x = np.empty(n)
    j = 0
    for k in range(n):
        while j < n and cnt[j] <= k:
            j += 1
        xn = math.nan
        if j > 0:  # the last probe with count <= k
            lo[k] = xg[j - 1]
            clo[k] = cnt[j - 1]
        if j < n:  # the first probe with count > k
            hi[k] = xg[j]
            chi[k] = cnt[j]
        # Laguerre from a probe whose next eigenvalue towards lambda_k is lambda_k itself; of
        # two, prefer lambda_k's own previous value (guess k: the eigenvalue moved from there; the
        # other probe is the previous value of a neighbour and sits next to that neighbour, where
        # Laguerre crawls away in doubling steps), then one in lambda_k's Newton basin (Newton's
        # step -1/g points at lambda_k, not back at the eigenvalue behind the probe), then the
        # nearer by Newton's estimate
        x1 = _laguerre(xg[j - 1], g[j - 1], h[j - 1], nf, True) if (j > 0 and clo[k] == k) else math.nan
        x2 = _laguerre(xg[j], g[j], h[j], nf, False) if (j < n and chi[k] == k + 1) else math.nan
        ok1 = x1 > lo[k] and x1 < hi[k]
        ok2 = x2 > lo[k] and x2 < hi[k]
        if ok1 and ok2:
            b1 = g[j - 1] < 0.0
            b2 = g[j] > 0.0
            if j - 1 == k:
                xn = x1
            elif j == k:
                xn = x2
            elif b1 != b2:
                xn = x1 if b1 else x2
            else:
                xn = x1 if abs(1.0 / g[j - 1]) <= abs(1.0 / g[j]) else x2
        elif ok1:
            xn = x1
        elif ok2:
            xn = x2
        x[k] = xn if (xn > lo[k] and xn < hi[k]) else 0.5 * (lo[k] + hi[k])
    # 2. rounds of one Sturm pass over the unconverged eigenvalues
    active = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(n):
        if hi[k] - lo[k] > tol:
            active[m] = k
            m += 1
        else:
            x[k] = 0.5 * (lo[k] + hi[k])
    xa = np.empty(n)
    last_step = np.full(n, np.inf)
    strikes = np.zeros(n, dtype=np.int64)
    used = np.zeros(n, dtype=np.int64)  # Laguerre steps taken per eigenvalue
    bis = np.zeros(n, dtype=np.int64)  # bisection rounds since Laguerre was given up
    retried = np.zeros(n, dtype=np.bool_)  # Laguerre given a second chance already
    rounds = 0
    while m > 0 and rounds < max_pass:
        rounds += 1
        for jj in range(m):
            xa[jj] = x[active[jj]]
        _sturm_pass(d, e2, xa, pivmin, cnt, g, h, r, dq, ddq, m)
        keep = 0
        for jj in range(m):
            k = active[jj]
            xk = xa[jj]
            below = cnt[jj] <= k  # x < lambda_k
            if below:
                lo[k] = max(lo[k], xk)
                clo[k] = max(clo[k], cnt[jj])
            else:
                hi[k] = min(hi[k], xk)
                chi[k] = min(chi[k], cnt[jj])
            width = hi[k] - lo[k]
            if width <= tol:
                x[k] = 0.5 * (lo[k] + hi[k])
                continue
            xn = math.nan
            # the next eigenvalue from x towards lambda_k is lambda_k itself: count(x) = k below
            # it, k + 1 above it (other eigenvalues in the bracket lie beyond lambda_k)
            if (cnt[jj] == k if below else cnt[jj] == k + 1) and strikes[k] < 2:
                xl = _laguerre(xk, g[jj], h[jj], nf, below)
                # Laguerre is cubic on a simple root, only linear on a (nearly) multiple one: two
                # steps shrinking by less than half, or 8 steps without convergence, and the
                # eigenvalue is bisected (for 3 rounds, then Laguerre once more from the narrower
                # bracket, then for good). A step more than 1.5x the last one means x is still leaving another
                # eigenvalue's pull (a crawl in doubling steps): bisect instead of following it
                step = abs(xl - xk)
                if step > 1.5 * last_step[k]:
                    last_step[k] = math.inf
                    xl = math.nan
                elif step == step:  # a step taken (not a breakdown of the formula)
                    if 0.5 * last_step[k] < step <= last_step[k]:
                        strikes[k] += 1
                    last_step[k] = step
                    used[k] += 1
                if used[k] > 8:
                    strikes[k] = 2
                if xl > lo[k] and xl < hi[k] and strikes[k] < 2:
                    # step past the root by half the tolerance (Laguerre's own rounding near the
                    # root is ~u ||T||): the next count then closes the bracket from that side;
                    # when the far end is nearer than that, probe between the estimate and it
                    xn = xl + (0.5 * tol if below else -0.5 * tol)
                    if not (xn > lo[k] and xn < hi[k]):
                        xn = 0.5 * (xl + (hi[k] if below else lo[k]))
            if not (xn > lo[k] and xn < hi[k]):
                xn = 0.5 * (lo[k] + hi[k])  # bisection
                if strikes[k] >= 2 and not retried[k]:
                    bis[k] += 1
                    if bis[k] >= 3:  # bracket 8x narrower: Laguerre again, once (a crawl from a
                        # bad start is over by then; a near-multiple root stays linear: bisect)
                        strikes[k] = 0
                        used[k] = 0
                        last_step[k] = math.inf
                        retried[k] = True
            x[k] = xn
            active[keep] = k
            keep += 1
        m = keep
    return x, m == 0


def exact_spectrum(
    ret_w: np.ndarray, valid_w: np.ndarray, mu: np.ndarray, d: np.ndarray, eligible: np.ndarray
) -> np.ndarray:
    """All N_eff eigenvalues of C (ascending), via the smaller of the W x W Gram and the N x N form.

    For W < N_eff the nonzero spectrum of Z^T Z equals that of Z Z^T; the remaining
    N_eff - W eigenvalues are exactly zero and are appended.
    """
    idx = np.flatnonzero(eligible)
    n_eff = idx.size
    if n_eff == 0:
        return np.zeros(0)
    z = ret_w[:, idx] - mu[idx]
    if not valid_w[:, idx].all():
        z *= valid_w[:, idx]
    z *= d[idx]
    w = z.shape[0]
    if w < n_eff:
        ev = np.linalg.eigvalsh(z @ z.T)
        return np.concatenate([np.zeros(n_eff - w), ev])
    return np.linalg.eigvalsh(z.T @ z)


# --------------------------------------------------------------------------- compiled kernels


@nb.njit(cache=True, fastmath=_FM)
def corr_matvec(
    ret: np.ndarray,
    valid: np.ndarray,
    a: int,
    b: int,
    mu: np.ndarray,
    d: np.ndarray,
    has_missing: bool,
    v: np.ndarray,
    out: np.ndarray,
) -> None:
    """out = C v for the window ret[a:b] without forming C: one fused pass over the rows.

    For each row t, y_t = z_t . v is computed and z_t * y_t accumulated while the row is in
    cache, so memory traffic is one read of the W x N window per product.
    """
    n = ret.shape[1]
    u = np.empty(n)
    c0 = 0.0
    for j in range(n):
        u[j] = d[j] * v[j]
        c0 += mu[j] * u[j]
        out[j] = 0.0
    if not has_missing:
        ysum = 0.0
        for t in range(a, b):
            acc = 0.0
            for j in range(n):
                acc += ret[t, j] * u[j]
            acc -= c0
            ysum += acc
            for j in range(n):
                out[j] += acc * ret[t, j]
        for j in range(n):
            out[j] = d[j] * (out[j] - mu[j] * ysum)
    else:
        for t in range(a, b):
            acc = 0.0
            for j in range(n):
                if valid[t, j]:
                    acc += (ret[t, j] - mu[j]) * u[j]
            for j in range(n):
                if valid[t, j]:
                    out[j] += acc * (ret[t, j] - mu[j])
        for j in range(n):
            out[j] *= d[j]


@nb.njit(cache=True)
def _sturm_below(alpha: np.ndarray, beta: np.ndarray, m: int, x: float) -> int:
    """Number of eigenvalues of the m x m tridiagonal (alpha, beta) strictly below x (Sturm count)."""
    cnt = 0
    dv = alpha[0] - x
    if dv == 0.0:
        dv = -1e-300
    if dv < 0.0:
        cnt += 1
    for i in range(1, m):
        dv = alpha[i] - x - beta[i - 1] * beta[i - 1] / dv
        if dv == 0.0:
            dv = -1e-300
        if dv < 0.0:
            cnt += 1
    return cnt


@nb.njit(cache=True)
def _tridiag_eig_k(alpha: np.ndarray, beta: np.ndarray, m: int, k: int) -> float:
    """The k-th largest eigenvalue (k = 1 is the largest) of the m x m tridiagonal, by bisection."""
    lo = np.inf
    hi = -np.inf
    for i in range(m):
        r = 0.0
        if i > 0:
            r += abs(beta[i - 1])
        if i + 1 < m:
            r += abs(beta[i])
        lo = min(lo, alpha[i] - r)
        hi = max(hi, alpha[i] + r)
    target = m - k + 1  # smallest x with count_below(x) >= target is the eigenvalue
    scale = max(abs(lo), abs(hi), 1e-300)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi or hi - lo <= 2e-16 * scale:
            break
        if _sturm_below(alpha, beta, m, mid) >= target:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@nb.njit(cache=True)
def _tridiag_vec(alpha: np.ndarray, beta: np.ndarray, m: int, theta: float, out: np.ndarray) -> None:
    """Unit eigenvector of the tridiagonal for eigenvalue ``theta`` by inverse iteration (pivoted LU)."""
    scale = 0.0
    for i in range(m):
        scale = max(scale, abs(alpha[i]) + (abs(beta[i]) if i + 1 < m else 0.0))
    shift = theta + 1e-13 * max(scale, 1e-300)
    x = np.ones(m)
    dl = np.empty(m)
    dd = np.empty(m)
    du = np.empty(m)
    du2 = np.zeros(m)
    b = np.empty(m)
    for _it in range(3):
        for i in range(m):
            dd[i] = alpha[i] - shift
            du[i] = beta[i] if i + 1 < m else 0.0
            dl[i] = beta[i] if i + 1 < m else 0.0
            du2[i] = 0.0
            b[i] = x[i]
        # gaussian elimination with partial pivoting on a tridiagonal (as LAPACK dgtsv)
        for i in range(m - 1):
            if abs(dd[i]) >= abs(dl[i]):
                if dd[i] == 0.0:
                    dd[i] = 1e-300
                f = dl[i] / dd[i]
                dd[i + 1] -= f * du[i]
                b[i + 1] -= f * b[i]
                dl[i] = 0.0
            else:
                f = dd[i] / dl[i]
                dd[i] = dl[i]
                tmp = dd[i + 1]
                dd[i + 1] = du[i] - f * tmp
                if i + 2 < m:
                    du2[i] = du[i + 1]
                    du[i + 1] = -f * du[i + 1]
                du[i] = tmp
                tb = b[i]
                b[i] = b[i + 1]
                b[i + 1] = tb - f * b[i + 1]
        if dd[m - 1] == 0.0:
            dd[m - 1] = 1e-300
        x[m - 1] = b[m - 1] / dd[m - 1]
        if m >= 2:
            x[m - 2] = (b[m - 2] - du[m - 2] * x[m - 1]) / dd[m - 2]
        for i in range(m - 3, -1, -1):
            x[i] = (b[i] - du[i] * x[i + 1] - du2[i] * x[i + 2]) / dd[i]
        nrm = 0.0
        for i in range(m):
            nrm += x[i] * x[i]
        nrm = math.sqrt(nrm)
        if not (nrm > 0.0) or not np.isfinite(nrm):
            for i in range(m):
                x[i] = 1.0 if i == 0 else 0.0
            break
        for i in range(m):
            x[i] /= nrm
    for i in range(m):
        out[i] = x[i]


@nb.njit(cache=True)
def _tridiag_top2(alpha: np.ndarray, beta: np.ndarray, m: int, y1: np.ndarray) -> tuple[float, float, float, float]:
    """(theta1, theta2, |s1[last]|, |s2[last]|) of the m x m Lanczos tridiagonal; y1 <- top eigenvector."""
    th1 = _tridiag_eig_k(alpha, beta, m, 1)
    _tridiag_vec(alpha, beta, m, th1, y1)
    s1 = abs(y1[m - 1])
    if m >= 2:
        th2 = _tridiag_eig_k(alpha, beta, m, 2)
        y2 = np.empty(m)
        _tridiag_vec(alpha, beta, m, th2, y2)
        return th1, th2, s1, abs(y2[m - 1])
    return th1, -np.inf, s1, 0.0


@nb.njit(cache=True, fastmath=_FM)
def _orthogonalise(q: np.ndarray, w: np.ndarray, k: int, n: int) -> None:
    """One classical Gram-Schmidt pass: remove from ``w`` its components along rows 0..k of ``q``."""
    for i in range(k + 1):
        c = 0.0
        for j in range(n):
            c += q[i, j] * w[j]
        for j in range(n):
            w[j] -= c * q[i, j]


@nb.njit(cache=True, fastmath=_FM)
def lanczos_top(
    ret: np.ndarray,
    valid: np.ndarray,
    a: int,
    b: int,
    mu: np.ndarray,
    d: np.ndarray,
    has_missing: bool,
    v0: np.ndarray,
    jitter: np.ndarray,
    p: np.ndarray,
    use_p: bool,
    frob_sq: float,
    tol_rel: float,
    max_steps: int,
    vec_out: np.ndarray,
    first_check: int = 0,
    q_work: np.ndarray = np.empty((0, 0)),
    conv_tol: float = 0.0,
) -> tuple[float, float, float, int]:
    """Largest eigenvalue of C (window ret[a:b]) by warm-started Lanczos with a rigorous certificate.

    Returns (theta, error_bound, eta, steps). Full re-orthogonalisation keeps the Krylov basis
    orthonormal. theta is the top Ritz value, so theta <= lambda_max always (Rayleigh
    quotient). The certificate (:func:`_certify`) proves lambda_max - theta <= error_bound:
    a residual alone only bounds the distance to *some* eigenvalue, so it is combined with an
    upper bound on the rest of the spectrum from the trace (= N_eff, C is PSD) and, when
    ``frob_sq`` = ||C||_F^2 is given (np.inf = unknown), the Frobenius norm. ``eta`` is the
    proven separation between the certified top cluster and the rest (0 if none).
    ``jitter`` (a fixed unit vector) is mixed into the start vector at 1e-3 so that a warm start
    orthogonal to the top eigenvector converges; correctness does not depend on it. On an
    invariant-subspace breakdown the basis is extended with jitter orthogonalised against it.
    ``error_bound`` is +inf when no certificate was reached within ``max_steps``; the caller
    must then fall back to an exact solver. The Ritz vector goes to ``vec_out`` (warm start).
    With ``use_p`` (complete window) products use the maintained cross-product ``p`` (N x N)
    instead of the W x N window: cheaper when W > N. The certificate is evaluated from step
    ``first_check`` on (the caller predicts it from the previous bar).
    With ``conv_tol`` > 0 the iteration also stops, uncertified, once the top Ritz value has
    converged by the usual estimate (residual^2 / Ritz gap <= conv_tol * theta): the caller then
    certifies it by other means (:func:`shift_certificate`). The estimate decides only when to
    stop, never what is published. ``frob_sq`` < 0 (with ``conv_tol`` > 0) skips the trace /
    Frobenius certificate altogether: every step only checks convergence.
    """
    n = ret.shape[1]
    m_cap = max_steps + 1
    # Krylov basis: the caller's workspace when it fits (no per-scan allocation); every row is
    # written before it is read
    q = q_work if (q_work.shape[0] >= m_cap and q_work.shape[1] == n) else np.empty((m_cap, n))
    alpha = np.zeros(m_cap)
    beta = np.zeros(m_cap)
    w = np.empty(n)
    y1 = np.zeros(m_cap)
    st = np.zeros(6)
    n_eff = _lz_start(v0, d, jitter, q[0])
    if n_eff == 0:
        for j in range(n):
            vec_out[j] = 0.0
        return 0.0, 0.0, 0.0, 0
    st[_GAP] = 0.0
    st[_BOUND] = np.inf
    trace_up = n_eff * (1.0 + 1e-9)  # trace C = N_eff (unit diagonal); slack for drifted sums
    frob_up = frob_sq * (1.0 + 1e-9) + 1e-12 * n_eff if np.isfinite(frob_sq) else np.inf
    if frob_sq < 0.0:
        frob_up = -1.0  # convergence only: skip the trace / Frobenius certificate (conv_tol must be > 0)
    for k in range(max_steps):
        if use_p:
            cross_matvec(p, mu, d, float(b - a), q[k], w)
        else:
            corr_matvec(ret, valid, a, b, mu, d, has_missing, q[k], w)
        if _lz_advance(q, alpha, beta, y1, k, w, d, jitter, n_eff, first_check, max_steps, tol_rel, trace_up,
                       frob_up, st, conv_tol, min(n_eff, b - a)):
            break
    return _lz_finish(q, alpha, beta, y1, st, tol_rel, vec_out)


_THETA, _BOUND, _GAP, _M, _STEPS, _DROP = 0, 1, 2, 3, 4, 5


@nb.njit(cache=True, fastmath=_FM)
def _lz_start(v0: np.ndarray, d: np.ndarray, jitter: np.ndarray, q0: np.ndarray) -> int:
    """Unit start vector (warm start + 1e-3 jitter, eligible assets only) into q0; returns N_eff."""
    n = d.shape[0]
    n_eff = 0
    v0n = 0.0
    for j in range(n):
        if d[j] > 0.0:
            n_eff += 1
            if np.isfinite(v0[j]):
                v0n += v0[j] * v0[j]
    if n_eff == 0:
        return 0
    v0n = math.sqrt(v0n) if v0n > 0.0 else 1.0
    nrm = 0.0
    for j in range(n):
        x = 0.0
        if d[j] > 0.0:
            x = (v0[j] if np.isfinite(v0[j]) else 0.0) / v0n + 1e-3 * jitter[j]
        q0[j] = x
        nrm += x * x
    if nrm <= 0.0:
        nrm = 0.0
        for j in range(n):
            q0[j] = 1.0 if d[j] > 0.0 else 0.0
            nrm += q0[j]
    inv = 1.0 / math.sqrt(nrm)
    for j in range(n):
        q0[j] *= inv
    return n_eff


@nb.njit(cache=True, fastmath=_FM)
def _lz_advance(
    q: np.ndarray, alpha: np.ndarray, beta: np.ndarray, y1: np.ndarray, k: int, w: np.ndarray, d: np.ndarray,
    jitter: np.ndarray, n_eff: int, first_check: int, max_steps: int, tol_rel: float, trace_up: float,
    frob_up: float, st: np.ndarray, conv_tol: float = 0.0, nz_cap: int = -1,
) -> bool:
    """One Lanczos step after the product w = C q[k]; updates st (theta, bound, gap, m, steps).

    Returns True when finished (certified, exhausted, breakdown without a new direction, or,
    with ``conv_tol`` > 0, converged by the residual estimate but not certified).
    """
    n = w.shape[0]
    st[_STEPS] = k + 1
    ak = 0.0
    for j in range(n):
        ak += q[k, j] * w[j]
    alpha[k] = ak
    # three-term recurrence, then full re-orthogonalisation against the whole basis (modified
    # Gram-Schmidt), repeated only when the norm collapsed by more than 1/sqrt(2) (DGKS)
    bprev = beta[k - 1] if k > 0 else 0.0
    before = 0.0
    for j in range(n):
        x = w[j] - ak * q[k, j]
        if k > 0:
            x -= bprev * q[k - 1, j]
        w[j] = x
        before += x * x
    bk = 0.0
    for _rep in range(2):
        _orthogonalise(q, w, k, n)
        bk = 0.0
        for j in range(n):
            bk += w[j] * w[j]
        if bk > 0.5 * before:
            break
        before = bk
    bk = math.sqrt(bk)
    beta[k] = bk
    m = k + 1
    st[_M] = m
    scale_a = 0.0
    for i in range(m):
        scale_a = max(scale_a, abs(alpha[i]))
    if bk <= 1e-13 * max(scale_a, 1e-300):
        # invariant subspace (residual <= bk): the Ritz values are eigenvalues, but the subspace
        # may miss lambda_max; certify against the rest of the spectrum or extend the basis.
        # The dropped coupling (<= bk) perturbs the eigenvalues by at most bk (Weyl): it is
        # added to every later bound (st[_DROP]).
        beta[k] = 0.0
        if m >= n_eff:  # the basis spans the whole eligible space: T is C in another basis
            th1, _t2, _s1, _s2 = _tridiag_top2(alpha, beta, m, y1)
            st[_THETA] = th1
            # exact up to the zeroed couplings (Weyl) and the rounding of T's eigenvalue (as in _certify)
            st[_BOUND] = st[_DROP] + bk + 1e-15 * m * _tnorm(alpha, beta, m)
            return True
        if _certify(alpha, beta, m, bk, trace_up, frob_up, tol_rel, y1, st, n_eff, nz_cap):
            return True
        st[_DROP] += bk
        for j in range(n):
            w[j] = jitter[(j + 7 * (k + 1)) % n] if d[j] > 0.0 else 0.0
        for _rep in range(2):
            _orthogonalise(q, w, k, n)
        rn = 0.0
        for j in range(n):
            rn += w[j] * w[j]
        rn = math.sqrt(rn)
        if rn <= 1e-10 or k + 1 >= max_steps:
            st[_BOUND] = np.inf  # cannot extend: no certificate (the caller uses the exact solver)
            return True
        for j in range(n):
            q[k + 1, j] = w[j] / rn
        return False
    if k < first_check and k + 1 < max_steps:
        inv = 1.0 / bk
        for j in range(n):
            q[k + 1, j] = w[j] * inv
        return False
    if conv_tol > 0.0 and frob_up < 0.0:
        # convergence only (the caller proves theta by the shift certificate): top Ritz pair of T
        th1 = _tridiag_eig_k(alpha, beta, m, 1)
        _tridiag_vec(alpha, beta, m, th1, y1)
        st[_THETA] = th1
        st[_BOUND] = np.inf
    elif _certify(alpha, beta, m, bk, trace_up, frob_up, tol_rel, y1, st, n_eff, nz_cap):
        return True
    if conv_tol > 0.0 and m >= 2:
        # converged by estimate: |lambda - theta| ~ r^2 / gap (r = bk |y1[m-1]|, gap to the next
        # Ritz value); the caller must still prove it (shift_certificate)
        th1 = st[_THETA]
        if frob_up >= 0.0:
            _tridiag_vec(alpha, beta, m, th1, y1)  # _certify leaves the vector to the end
        r1 = bk * abs(y1[m - 1])
        gap = th1 - _tridiag_eig_k(alpha, beta, m, 2)
        if th1 > 0.0 and gap > 0.0 and r1 * r1 <= conv_tol * th1 * gap:
            return True
    if k + 1 < max_steps:
        inv = 1.0 / bk
        for j in range(n):
            q[k + 1, j] = w[j] * inv
        return False
    return True


@nb.njit(cache=True)
def _tnorm(alpha: np.ndarray, beta: np.ndarray, m: int) -> float:
    """||T||_inf of the m x m Lanczos tridiagonal (max absolute row sum)."""
    scale = 0.0
    for i in range(m):
        r = abs(alpha[i])
        if i > 0:
            r += abs(beta[i - 1])
        if i + 1 < m:
            r += abs(beta[i])
        scale = max(scale, r)
    return scale


@nb.njit(cache=True)
def _tridiag_eig_last(alpha: np.ndarray, beta: np.ndarray, m: int, w: np.ndarray, z: np.ndarray) -> bool:
    """All eigenvalues of the m x m tridiagonal into w (descending) and the last components of
    their unit eigenvectors into z (absolute values), by implicit QL (EISPACK tql2) that carries
    only the last row of the rotation product: O(m^2). Backward stable: eigenvalues to a few u ||T||,
    components to a few u ||T|| / gap. False if a QL sweep did not converge in 60 iterations.
    """
    e = np.zeros(m)
    for i in range(m):
        w[i] = alpha[i]
        z[i] = 0.0
        if i + 1 < m:
            e[i] = beta[i]
    z[m - 1] = 1.0
    for lo in range(m):
        it = 0
        while True:
            mm = lo
            while mm < m - 1:
                dd = abs(w[mm]) + abs(w[mm + 1])
                if abs(e[mm]) + dd == dd:
                    break
                mm += 1
            if mm == lo:
                break
            it += 1
            if it > 60:
                return False
            g = (w[lo + 1] - w[lo]) / (2.0 * e[lo])
            r = math.sqrt(g * g + 1.0)
            g = w[mm] - w[lo] + e[lo] / (g + (r if g >= 0.0 else -r))
            sn = 1.0
            cs = 1.0
            pp = 0.0
            i = mm - 1
            early = False
            while i >= lo:
                f = sn * e[i]
                b = cs * e[i]
                r = math.sqrt(f * f + g * g)
                e[i + 1] = r
                if r == 0.0:
                    w[i + 1] -= pp
                    e[mm] = 0.0
                    early = True
                    break
                sn = f / r
                cs = g / r
                g = w[i + 1] - pp
                r = (w[i] - g) * sn + 2.0 * cs * b
                pp = sn * r
                w[i + 1] = g + pp
                g = cs * r - b
                f = z[i + 1]
                z[i + 1] = sn * z[i] + cs * f
                z[i] = cs * z[i] - sn * f
                i -= 1
            if early:
                continue
            w[lo] -= pp
            e[lo] = g
            e[mm] = 0.0
    for i in range(m):  # insertion sort, descending (m is small)
        wi = w[i]
        zi = abs(z[i])
        j = i - 1
        while j >= 0 and w[j] < wi:
            w[j + 1] = w[j]
            z[j + 1] = z[j]
            j -= 1
        w[j + 1] = wi
        z[j + 1] = zi
    return True


@nb.njit(cache=True)
def _max_of_spectrum(t_lo: float, t_hi: float, f2: float, r: int) -> float:
    """Upper bound on the largest of at most r real numbers (the rest zero) whose sum lies in
    [t_lo, t_hi] and whose sum of squares is <= f2 (Wolkowicz & Styan 1980):
    t / r + sqrt((r - 1) / r (f2 - t^2 / r)). It increases with f2 and, in t, up to t = sqrt(f2)
    (where it equals sqrt(f2), the Frobenius bound), so the end of the interval nearest sqrt(f2)
    is used. Never above sqrt(f2); +inf when the data are inconsistent (f2 < t^2 / r beyond rounding)."""
    if r < 1 or not (f2 >= 0.0):
        return np.inf
    f = math.sqrt(f2)
    t = t_hi if t_hi <= f else (t_lo if t_lo >= f else f)
    tt = t * t / r
    eps = 8.0 * _U * (f2 + tt)  # rounding of f2 - t^2 / r (equal numbers: exactly 0)
    val = f2 - tt
    if not (val >= -eps):
        return np.inf
    return min(f, t / r + math.sqrt((r - 1.0) / r * (max(val, 0.0) + eps)))


@nb.njit(cache=True)
def _keep_best(st: np.ndarray, bound: float, eta: float) -> float:
    """Record ``bound`` (and its separation ``eta``) in st when it beats the best so far (st[_BOUND]
    starts at +inf); returns the best bound."""
    if bound < st[_BOUND]:
        st[_BOUND] = bound
        st[_GAP] = eta
    return st[_BOUND]


@nb.njit(cache=True)
def _certify(
    alpha: np.ndarray, beta: np.ndarray, m: int, bm: float, trace_up: float, frob_up: float, tol_rel: float,
    y1: np.ndarray, st: np.ndarray, dim: int = -1, nz_cap: int = -1,
) -> bool:
    """Rigorous bound on lambda_max - theta1 from the m-step Lanczos relation C Q = Q T + bm q e_m^T.

    For k = 1..m, split C in the basis [Y_k, Y_k-perp] (Y_k = the top-k Ritz vectors):
    C = [[Theta_k, E^T], [E, B]] with E = bm w s_k^T (w a unit vector in Y_k-perp, s_k = last
    components of the top-k eigenvectors of T). B is the compression of C to the complement, so
      lambda_max(B) <= trace B = trace C - sum theta_i            (B is PSD: C is)
      lambda_max(B) <= ||B||_F <= sqrt(||C||_F^2 - sum theta_i^2)  (Frobenius)
      lambda_max(B) <= both together (:func:`_max_of_spectrum`, Wolkowicz & Styan): B has at most
                       min(N_eff - k, rank C) nonzero eigenvalues (rank C <= W for a W-row window).
    Two bounds from u >= lambda_max(B), the better one is kept:
    - split (Li & Li 2005): if theta_k > u the spectra of Theta_k and B are separated by
      eta = theta_k - u and |lambda_1(C) - theta_1| <= 2 ||E||^2 / (eta + sqrt(eta^2 + 4 ||E||^2)).
    - secular (top eigenvalue only): if theta_1 > u, then lambda_1 >= theta_1 > lambda_max(B) and
      lambda_1 is an eigenvalue of the Schur complement Theta_k + E^T (lambda_1 - B)^-1 E, which is
      <= Theta_k + rho s s^T with rho = bm^2 / (theta_1 - u). Its top eigenvalue solves
      1 = rho sum s_i^2 / (x - theta_i); with a = sum_{i >= 2} s_i^2 / (theta_1 - theta_i) < 1 / rho,
      x - theta_1 <= rho s_1^2 / (1 - rho a). Only theta_1 must have converged (s_1 small): the
      other k - 1 Ritz pairs only enter through a, so several comparable modes no longer need
      a full Cholesky proof (docs/decisions/0003).
    Since theta_1 <= lambda_1 always, theta_1 is certified when the bound is <= tol_rel theta_1.
    A residual alone (k = 1 without u) would only bound the distance to *some* eigenvalue:
    after two eigenvalues cross, a warm start converges to the second one with a tiny residual.
    Rounding: last components of nearly equal Ritz values are ill-determined, so ||s_k|| is
    inflated by sqrt(k) * 1e-13 m ||T|| / (smallest Ritz gap among the top k + 1) (each s_i of the
    secular bound by 1e-13 m ||T|| / its own gap, at most 1), rho by 1e-6 relative, and the
    bound by 1e-15 m ||T||, plus st[_DROP] (couplings zeroed at invariant-subspace breakdowns, Weyl).
    The Ritz values and last components come from one O(m^2) QL pass (:func:`_tridiag_eig_last`;
    the top Ritz vector itself is formed once, at the end: :func:`_lz_finish`).
    Writes st[_THETA], st[_BOUND] (best bound), st[_GAP] (its eta).
    """
    st[_BOUND] = np.inf
    st[_GAP] = 0.0
    th = np.empty(m)
    sv = np.empty(m)
    if not _tridiag_eig_last(alpha, beta, m, th, sv):
        st[_THETA] = _tridiag_eig_k(alpha, beta, m, 1)
        return False  # no certificate this step (never seen; the caller continues or goes exact)
    th1 = th[0]
    st[_THETA] = th1
    if not (th1 > 0.0):
        return False
    scale = _tnorm(alpha, beta, m)
    target = tol_rel * th1
    sum_th = 0.0
    sum_th2 = 0.0
    sum_s2 = 0.0
    gap_min = np.inf
    s1_up = np.inf
    sec_a = 0.0  # sum over i = 2..k of s_i^2 / (theta_1 - theta_i), s_i inflated by rounding slack
    for k in range(1, m + 1):
        th_k = th[k - 1]
        s_k = sv[k - 1]
        sum_th += th_k
        sum_th2 += th_k * th_k
        sum_s2 += s_k * s_k
        th_next = th[k] if k < m else -np.inf
        if k < m:
            gap_min = min(gap_min, th_k - th_next)
        # this Ritz vector's last component, inflated by its own rounding slack (gap to its neighbours)
        gap_k = th_k - th_next
        if k > 1:
            gap_k = min(gap_k, th[k - 2] - th_k)
        s_up = min(1.0, s_k + (1e-13 * m * scale / gap_k if gap_k > 0.0 else np.inf))
        if k == 1:
            s1_up = s_up
        elif th1 > th_k:
            sec_a += s_up * s_up / (th1 - th_k)
        else:
            sec_a = np.inf
        u = trace_up - sum_th
        if np.isfinite(frob_up) and frob_up >= 0.0:  # < 0: unknown (convergence-only mode)
            f2 = max(frob_up - sum_th2, 0.0)
            f = math.sqrt(f2)
            u = min(u, f)
            r = min(dim - k, nz_cap)  # B's nonzero eigenvalues: at most its size and rank C
            if r >= 1:
                t_slack = 1e-13 * k * scale
                u = min(u, _max_of_spectrum(trace_up * (1.0 - 2e-9) - sum_th - t_slack,
                                            trace_up - sum_th + t_slack, f2, r))
        eta = th_k - u
        if eta > 0.0:
            if k == m:
                e = bm  # the whole Krylov space: ||R|| = bm exactly
            else:
                slack = 1e-13 * m * scale / gap_min if gap_min > 0.0 else np.inf
                e = bm * (math.sqrt(sum_s2) + math.sqrt(k) * slack)
            bound = 2.0 * e * e / (eta + math.sqrt(eta * eta + 4.0 * e * e)) + 1e-15 * m * scale + st[_DROP]
            if _keep_best(st, bound, eta) <= target:
                return True
        eta1 = th1 - u
        if k > 1 and eta1 > 0.0:
            rho = bm * bm * (1.0 + 1e-6) / eta1
            if rho * sec_a < 1.0:
                bound = rho * s1_up * s1_up / (1.0 - rho * sec_a) + 1e-15 * m * scale + st[_DROP]
                if _keep_best(st, bound, eta1) <= target:
                    return True
        if k < m and not (th_next > 0.0):
            break  # the remaining Ritz values cannot separate a cluster from a PSD remainder
    return False


@nb.njit(cache=True, fastmath=_FM)
def _lz_finish(
    q: np.ndarray, alpha: np.ndarray, beta: np.ndarray, y1: np.ndarray, st: np.ndarray, tol_rel: float,
    vec_out: np.ndarray,
) -> tuple[float, float, float, int]:
    """Final (theta, bound or +inf if uncertified, gap, steps); the Ritz vector into vec_out."""
    theta = st[_THETA]
    bound = st[_BOUND]
    if not (bound <= tol_rel * (abs(theta) if theta != 0.0 else 1.0)):
        bound = np.inf
    n = vec_out.shape[0]
    m = int(st[_M])
    _tridiag_vec(alpha, beta, m, theta, y1)  # the top eigenvector of the final T
    for j in range(n):
        vec_out[j] = 0.0
    for i in range(m):
        c = y1[i]
        for j in range(n):
            vec_out[j] += c * q[i, j]
    return theta, bound, st[_GAP], int(st[_STEPS])


@nb.njit(cache=True, inline="always")
def _add_compensated(acc: np.ndarray, comp: np.ndarray, j: int, v: float) -> None:
    """acc[j] += v, its rounding error (exact, by Knuth's branch-free TwoSum) added to comp[j]."""
    a = acc[j]
    t = a + v
    bp = t - a
    comp[j] += (a - (t - bp)) + (v - bp)
    acc[j] = t


@nb.njit(cache=True)
def _accumulate_row(
    ret: np.ndarray, valid: np.ndarray, row: int, sign: float, n: np.ndarray, s: np.ndarray, q: np.ndarray,
    cs: np.ndarray, cq: np.ndarray, mass: np.ndarray,
) -> int:
    """Add (sign = 1) or remove (sign = -1) row ``row``'s valid returns to / from the window sums;
    returns the row's count of masked cells.

    The sums are compensated (Knuth's TwoSum, branch-free): the rounding error of every add goes
    into ``cs`` / ``cq`` and the sum's value is s + cs (q + cq). Plain sliding sums drift by ~u |q|
    per bar and by u x^2 when a return x far larger than the rest leaves the window (a bad tick),
    and the variance q - s^2 / n amplifies it; compensated, the drift is O(u^2). ``mass`` adds
    x^2 for every add and drop (see :func:`slide_sums`). Needs IEEE arithmetic: no fastmath here."""
    masked = 0
    for j in range(ret.shape[1]):
        if valid[row, j]:
            x = ret[row, j]
            n[j] += sign
            _add_compensated(s, cs, j, sign * x)
            xx = x * x
            mass[j] += xx
            _add_compensated(q, cq, j, sign * xx)
        else:
            masked += 1
    return masked


@nb.njit(cache=True)
def slide_sums(
    ret: np.ndarray, valid: np.ndarray, add_row: int, drop_row: int, n: np.ndarray, s: np.ndarray, q: np.ndarray,
    cs: np.ndarray, cq: np.ndarray, mass: np.ndarray, max_drift: float,
) -> tuple[int, bool]:
    """Add row ``add_row`` to and drop row ``drop_row`` (-1: none) from the window's compensated
    sums (see :func:`_accumulate_row`). Returns (change in the count of masked cells, drift).

    ``max_drift`` > 0 (windows that keep the uncompensated cross-product P, :func:`cross_update`):
    ``mass`` also gains q_i after the slide, so that mass_i = sum over the slides since the last
    re-anchor of (q_i + x_i^2 + y_i^2). Each slide rounds P_ij by at most ~2u (|P_ij| + |x_i x_j| +
    |y_i y_j|) (first order), and |P_ij| <= sqrt(q_i q_j), so by Cauchy-Schwarz the accumulated
    error is at most 2u sqrt(mass_i mass_j). drift is True when 2u mass_i > max_drift q_i for some
    asset, i.e. when that bound could exceed max_drift sqrt(q_i q_j): after a return much larger
    than the rest left the window (a bad print), after a calm spell that followed a loud one, or
    after ~max_drift / 2u slides; the caller then re-anchors (and resets ``mass``)."""
    delta = _accumulate_row(ret, valid, add_row, 1.0, n, s, q, cs, cq, mass)
    if drop_row >= 0:
        delta -= _accumulate_row(ret, valid, drop_row, -1.0, n, s, q, cs, cq, mass)
    excess = 0.0
    if max_drift > 0.0:
        two_u = 2.220446049250313e-16
        for j in range(q.shape[0]):  # branch-free (vectorises)
            qj = q[j] + cq[j]
            m = mass[j] + qj
            mass[j] = m
            excess = max(excess, two_u * m - max_drift * qj)
    return delta, excess > 0.0


@nb.njit(cache=True)
def resum(
    ret: np.ndarray, valid: np.ndarray, a: int, b: int, n: np.ndarray, s: np.ndarray, q: np.ndarray,
    cs: np.ndarray, cq: np.ndarray, mass: np.ndarray,
) -> int:
    """Window sums over rows [a, b) from scratch (the periodic re-anchor); returns masked cells."""
    n[:] = 0.0
    s[:] = 0.0
    q[:] = 0.0
    cs[:] = 0.0
    cq[:] = 0.0
    missing = 0
    for t in range(a, b):
        missing += _accumulate_row(ret, valid, t, 1.0, n, s, q, cs, cq, mass)
    mass[:] = 0.0  # it counts the sliding rounding since this re-anchor
    return missing


@nb.njit(cache=True)
def standardise_into(
    n: np.ndarray,
    s: np.ndarray,
    q: np.ndarray,
    cs: np.ndarray,
    cq: np.ndarray,
    min_count: float,
    min_return_var: float,
    mu: np.ndarray,
    d: np.ndarray,
    eligible: np.ndarray,
    prev_eligible: np.ndarray,
    rows: float,
) -> tuple[int, int, int, int, bool]:
    """In-place :func:`standardise`.

    Returns (n_eligible, n_low_coverage, n_zero_variance, n_changed, has_missing): n_changed
    counts assets whose eligibility differs from ``prev_eligible`` (not modified here);
    has_missing is True when an eligible asset has fewer valid returns than ``rows``.
    """
    m = n.shape[0]
    n_eff = 0
    n_low = 0
    n_zero = 0
    n_changed = 0
    has_missing = False
    for j in range(m):
        cnt = n[j]
        ok = True
        if cnt < min_count or cnt <= 0.0:
            n_low += 1
            ok = False
        else:
            sj = s[j] + cs[j]
            mj = sj / cnt
            ss = (q[j] + cq[j]) - sj * mj
            if not (ss / cnt > min_return_var):
                n_zero += 1
                ok = False
            else:
                mu[j] = mj
                d[j] = 1.0 / math.sqrt(ss)
                n_eff += 1
                if cnt < rows:
                    has_missing = True
        if not ok:
            mu[j] = 0.0
            d[j] = 0.0
        eligible[j] = ok
        if ok != prev_eligible[j]:
            n_changed += 1
    return n_eff, n_low, n_zero, n_changed, has_missing


@nb.njit(cache=True, fastmath=_FM)
def cross_update(p: np.ndarray, ret: np.ndarray, add_row: int, drop_row: int) -> None:
    """Rank-2 update of P = X^T X (zero-filled returns): + x x^T - y y^T.

    P is kept packed: its lower triangle row by row (:func:`packed_size`; row i is
    p[i (i + 1) / 2 : i (i + 1) / 2 + i + 1]). Every reader (:func:`cross_matvec`,
    :func:`frobenius_sq_cross`, :func:`corr_from_cross`, the shift certificate) needs only that
    half; packed, it is one contiguous stream of half the bytes (full storage read or written
    through one triangle costs ~2.5x more here when P is not in cache: the prefetcher and the TLB
    see the skipped halves).
    """
    n = ret.shape[1]
    x = ret[add_row]
    off = 0
    if drop_row >= 0:
        y = ret[drop_row]
        for i in range(n):
            xi = x[i]
            yi = y[i]
            row = p[off : off + i + 1]
            for j in range(i + 1):
                row[j] += xi * x[j] - yi * y[j]
            off += i + 1
    else:
        for i in range(n):
            xi = x[i]
            row = p[off : off + i + 1]
            for j in range(i + 1):
                row[j] += xi * x[j]
            off += i + 1


def packed_size(n: int) -> int:
    """Length of the packed lower triangle of an n x n symmetric matrix (see :func:`cross_update`)."""
    return n * (n + 1) // 2


@nb.njit(cache=True)
def _pair_rows(d: np.ndarray) -> bool:
    """Whether the packed cross-product readers take rows two at a time: at least 60 % of the
    assets eligible (d != 0). Below, one row at a time skipping the ineligible rows is cheaper."""
    n_eff = 0
    for j in range(d.shape[0]):
        if d[j] != 0.0:
            n_eff += 1
    return 5 * n_eff >= 3 * d.shape[0]


@nb.njit(cache=True, fastmath=_FM, inline="always")
def _cross_row(p: np.ndarray, i: int, u: np.ndarray, acc2: np.ndarray) -> None:
    """Row i of the packed P into the product accumulator: its dot product with u (the row) and
    its axpy (column i, by symmetry), one row at a time (:func:`cross_matvec`)."""
    off = i * (i + 1) // 2
    ui = u[i]
    acc = 0.0
    for j in range(i):
        pij = p[off + j]
        acc += pij * u[j]
        acc2[j] += pij * ui
    acc2[i] += acc + p[off + i] * ui


@nb.njit(cache=True, fastmath=_FM)
def cross_matvec(p: np.ndarray, mu: np.ndarray, d: np.ndarray, nobs: float, v: np.ndarray, out: np.ndarray) -> None:
    """out = C v from the maintained (packed) cross-product (complete windows): C = D (P - W mu mu^T) D.

    Reads P's lower triangle once: each row j < i gives a dot product (row i of P) and an axpy
    (column i, by symmetry); both vectorise. Half the bytes of the full product.
    With at least 60 % of the assets eligible, rows go two at a time: one pass over their columns
    makes both dot products and one combined axpy, so the accumulator is loaded and stored once
    per pair (n = 400: ~14 vs ~17 us; the one-row form is load/store-bound at ~1.7x the time of
    streaming P). Ineligible rows are then not skipped: their u is 0 and P is finite (the window
    buffer holds 0 for every missing return), so they add nothing. (A skip test inside the pair
    loop stops LLVM from vectorising it: 23 us, measured.) Fewer eligible: one row at a time,
    ineligible rows skipped.
    """
    n = mu.shape[0]
    u = np.empty(n)
    acc2 = np.zeros(n)
    c0 = 0.0
    for j in range(n):
        u[j] = d[j] * v[j]
        c0 += mu[j] * u[j]
    c0 *= nobs
    if _pair_rows(d):
        i = 0
        while i + 1 < n:
            o0 = i * (i + 1) // 2
            o1 = o0 + i + 1
            u0 = u[i]
            u1 = u[i + 1]
            a0 = 0.0
            a1 = 0.0
            for j in range(i):
                p0 = p[o0 + j]
                p1 = p[o1 + j]
                uj = u[j]
                a0 += p0 * uj
                a1 += p1 * uj
                acc2[j] += p0 * u0 + p1 * u1
            pji = p[o1 + i]  # P[i + 1, i]: the pair's off-diagonal entry
            acc2[i] += a0 + p[o0 + i] * u0 + pji * u1
            acc2[i + 1] += a1 + pji * u0 + p[o1 + i + 1] * u1
            i += 2
        if i < n:  # odd n: the last row alone
            _cross_row(p, i, u, acc2)
    else:
        for i in range(n):
            if d[i] != 0.0:  # else u[i] = 0: no column contribution, and out[i] = 0
                _cross_row(p, i, u, acc2)
    for i in range(n):
        out[i] = d[i] * (acc2[i] - mu[i] * c0) if d[i] != 0.0 else 0.0


def corr_from_cross(
    p: np.ndarray, mu: np.ndarray, d: np.ndarray, idx: np.ndarray, nobs: float, *, out: np.ndarray | None = None,
    lower_only: bool = False,
) -> np.ndarray:
    """C restricted to the eligible assets ``idx`` from the maintained cross-product (complete windows).

    ``out`` (m x m, C-contiguous) is filled and returned instead of a new array. ``lower_only``
    fills only the lower triangle (what ``eigvalsh`` with UPLO='L' and LAPACK read; the upper
    triangle is left as it was): writing the mirror costs more than the entries themselves.
    """
    m = idx.size
    c = np.empty((m, m)) if out is None else out
    _from_cross(p, mu, d, idx, nobs, 1.0, 0.0, c)
    if not lower_only:
        _mirror_lower(c)
    return c


@nb.njit(cache=True)
def _mirror_lower(c: np.ndarray) -> None:
    m = c.shape[0]
    for a in range(m):
        for b in range(a):
            c[b, a] = c[a, b]


@nb.njit(cache=True, fastmath=_FM)
def _from_cross(
    p: np.ndarray, mu: np.ndarray, d: np.ndarray, idx: np.ndarray, nobs: float, sign: float, sigma: float,
    c: np.ndarray,
) -> tuple[float, float]:
    """Lower triangle of sigma I + sign C on ``idx`` into ``c``, C = D (P - W mu mu^T) D, in one
    pass; returns (trace C, max |C_ii|). Rows of P are read and C written contiguously; with
    every asset eligible the index gather is skipped (it costs ~3x the arithmetic)."""
    m = idx.size
    tr = 0.0
    dmax = 0.0
    dense = m == mu.shape[0]
    for a in range(m):
        i = idx[a]
        off = i * (i + 1) // 2
        row = p[off : off + i + 1]  # idx ascending: every column read is <= i
        out = c[a]
        di = sign * d[i]
        mi = nobs * mu[i]
        if dense:
            for b in range(a + 1):
                out[b] = di * d[b] * (row[b] - mi * mu[b])
        else:
            for b in range(a + 1):
                j = idx[b]
                out[b] = di * d[j] * (row[j] - mi * mu[j])
        cii = sign * out[a]
        tr += cii
        dmax = max(dmax, abs(cii))
        out[a] = sigma + sign * cii
    return tr, dmax


@nb.njit(cache=True)
def cross_resum(p: np.ndarray, ret: np.ndarray, a: int, b: int) -> None:
    """Exact P = X^T X over rows [a, b), packed (the periodic re-anchor of the cross-product)."""
    x = ret[a:b]
    full = np.dot(x.T, x)
    n = full.shape[0]
    off = 0
    for i in range(n):
        for j in range(i + 1):
            p[off + j] = full[i, j]
        off += i + 1


@nb.njit(cache=True)
def build_z(
    ret: np.ndarray, valid: np.ndarray, a: int, b: int, mu: np.ndarray, d: np.ndarray, idx: np.ndarray,
    has_missing: bool,
) -> np.ndarray:
    """The standardised window Z (W x N_eff, eligible columns ``idx``) in one pass over the rows
    (no index gather when every asset is eligible, no mask test when no return is missing)."""
    w = b - a
    m = idx.size
    z = np.empty((w, m))
    dense = m == ret.shape[1]
    for t in range(w):
        row = ret[a + t]
        out = z[t]
        if dense and not has_missing:
            for k in range(m):
                out[k] = (row[k] - mu[k]) * d[k]
        else:
            ok = valid[a + t]
            for k in range(m):
                j = idx[k]
                out[k] = (row[j] - mu[j]) * d[j] if (not has_missing or ok[j]) else 0.0
    return z


@nb.njit(cache=True, fastmath=_FM)
def frobenius_sq_cross(p: np.ndarray, mu: np.ndarray, d: np.ndarray, nobs: float) -> float:
    """||C||_F^2 from the maintained (packed) cross-product (complete windows): sum_ij (d_i d_j (P_ij - W mu_i mu_j))^2.

    C is symmetric: twice the strict lower triangle plus the diagonal (half the work of the full sum).
    As :func:`cross_matvec`: with at least 60 % of the assets eligible, rows go two at a time
    (the column terms d_j and d_j mu_j are loaded once per pair; n = 400: ~15 vs ~18 us) and
    ineligible rows and columns add 0 (d = 0, P finite); else one row at a time, skipping them.
    """
    n = mu.shape[0]
    tot = 0.0
    diag = 0.0
    if _pair_rows(d):
        e = np.empty(n)
        for j in range(n):
            e[j] = d[j] * mu[j]
        i = 0
        while i + 1 < n:
            o0 = i * (i + 1) // 2
            o1 = o0 + i + 1
            a0 = nobs * mu[i]
            a1 = nobs * mu[i + 1]
            s0 = 0.0
            s1 = 0.0
            for j in range(i):
                dj = d[j]
                ej = e[j]
                x0 = dj * p[o0 + j] - a0 * ej
                x1 = dj * p[o1 + j] - a1 * ej
                s0 += x0 * x0
                s1 += x1 * x1
            x1 = d[i] * p[o1 + i] - a1 * e[i]  # row i + 1, column i (strict lower)
            s1 += x1 * x1
            tot += d[i] * d[i] * s0 + d[i + 1] * d[i + 1] * s1
            x = d[i] * d[i] * (p[o0 + i] - a0 * mu[i])
            diag += x * x
            x = d[i + 1] * d[i + 1] * (p[o1 + i + 1] - a1 * mu[i + 1])
            diag += x * x
            i += 2
        if i < n:  # odd n: the last row alone
            o0 = i * (i + 1) // 2
            a0 = nobs * mu[i]
            s0 = 0.0
            for j in range(i):
                x0 = d[j] * p[o0 + j] - a0 * e[j]
                s0 += x0 * x0
            tot += d[i] * d[i] * s0
            x = d[i] * d[i] * (p[o0 + i] - a0 * mu[i])
            diag += x * x
        return 2.0 * tot + diag
    for i in range(n):
        if d[i] == 0.0:
            continue
        off = i * (i + 1) // 2  # packed row i (see cross_update)
        row = p[off : off + i + 1]
        a = nobs * mu[i]
        acc = 0.0
        for j in range(i):
            x = d[j] * (row[j] - a * mu[j])
            acc += x * x
        tot += d[i] * d[i] * acc
        x = d[i] * d[i] * (row[i] - a * mu[i])
        diag += x * x
    return 2.0 * tot + diag


def frobenius_sq_gram(g: np.ndarray) -> float:
    """||G||_F^2 of a Gram matrix (Z Z^T or Z^T Z: both equal ||C||_F^2)."""
    return float(np.vdot(g, g))


_U = 2.0**-53  # unit roundoff of float64


def shift_certificate(m: np.ndarray, theta: float, tol_rel: float) -> float:
    """Proven bound on |lambda_max(m) - theta| from one Cholesky factorisation, or +inf.

    ``m`` is symmetric PSD with the nonzero spectrum of C (C itself or a Gram form), ``theta``
    a Ritz value (theta <= lambda_max up to the Ritz value's rounding, a small multiple of
    m_steps u ||T||, covered by the 1e-13 theta term). With sigma = theta (1 + tol_rel / 2):
    if the Cholesky factorisation of A = sigma I - m runs to completion, then (Demmel; Higham,
    Accuracy and Stability, Thm 10.3) R R^T = A_fl + dA with |dA| <= gamma_{n+1} |R| |R^T|, so
    ||dA||_2 <= gamma_{n+1} ||R||_F^2, and from the diagonal of the same relation
    ||R||_F^2 <= trace(A_fl) / (1 - gamma_{n+1}); forming A's diagonal adds at most
    u (sigma + max|m_ii|). Hence lambda_min(A) >= -delta and lambda_max(m) <= sigma + delta: the
    bound is sigma - theta + delta (+ 1e-13 theta). The factorisation fails (+inf) when theta is
    more than about tol_rel / 2 below lambda_max: a Ritz value that converged to another
    eigenvalue (eigenvalue crossing) or has not converged is never certified. Costs n^3 / 3
    flops in LAPACK (dpotrf), ~7x less than the eigenvalues (eigvalsh) of the same matrix.
    """
    n = m.shape[0]
    if n == 0 or not (theta > 0.0) or not math.isfinite(theta):
        return math.inf
    sigma = theta * (1.0 + 0.5 * tol_rel)
    a = np.negative(m)
    a.flat[:: n + 1] += sigma
    diag = np.diagonal(m)
    return _cholesky_bound(a, theta, sigma, float(np.sum(diag)), float(np.max(np.abs(diag))))


def shift_certificate_cross(
    p: np.ndarray, mu: np.ndarray, d: np.ndarray, idx: np.ndarray, nobs: float, theta: float, tol_rel: float,
    *, out: np.ndarray | None = None,
) -> float:
    """:func:`shift_certificate` of C formed from the maintained cross-product (complete windows),
    with the lower triangle of sigma I - C built in one pass (no separate C) into ``out``
    (m x m, C-contiguous, overwritten) or a new array."""
    m = idx.size
    if m == 0 or not (theta > 0.0) or not math.isfinite(theta):
        return math.inf
    sigma = theta * (1.0 + 0.5 * tol_rel)
    a = np.empty((m, m)) if out is None else out
    tr_m, dmax = _from_cross(p, mu, d, idx, nobs, -1.0, sigma, a)
    return _cholesky_bound(a, theta, sigma, tr_m, dmax)


def _cholesky_bound(a: np.ndarray, theta: float, sigma: float, tr_m: float, dmax: float) -> float:
    """Factor the symmetric ``a`` = sigma I - M in place (LAPACK dpotrf reads its lower triangle,
    C order); the bound or +inf."""
    from scipy.linalg import lapack

    n = a.shape[0]
    if (n + 1) * _U >= 0.01:
        return math.inf
    gamma = (n + 1) * _U / (1.0 - (n + 1) * _U)
    # a.T is a in Fortran order (no copy); its upper triangle is a's lower triangle in C order
    _, info = lapack.dpotrf(a.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        return math.inf
    tr_a = (n * sigma - tr_m) * (1.0 + 4.0 * n * _U) + n * _U * (sigma + dmax)
    if not (tr_a > 0.0) or not math.isfinite(tr_a):
        return math.inf
    fro2 = tr_a / (1.0 - gamma)
    delta = gamma * fro2 + _U * (sigma + dmax)
    return (sigma - theta) + delta + 1e-13 * theta
