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
    "lanczos_top",
    "log_returns",
    "mp_edge",
    "shrink_spectrum",
    "standardise",
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
    p = np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None) / n_assets
    p = p[p > 0.0]
    h = float(-(p * np.log(p)).sum() / math.log(n_assets))
    return min(max(h, 0.0), 1.0)


def absorption_ratio(eigs: np.ndarray, n_assets: int, frac: float) -> float:
    """Share of total variance (N) absorbed by the top ceil(frac * N) eigenvalues."""
    if n_assets < 1:
        return float("nan")
    k = max(1, math.ceil(frac * n_assets - 1e-9))
    e = np.sort(np.clip(np.asarray(eigs, dtype=np.float64), 0.0, None))[::-1]
    return float(min(e[:k].sum() / n_assets, 1.0))


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
def _tridiag_top2(alpha: np.ndarray, beta: np.ndarray, m: int) -> tuple[float, float, float, float]:
    """(theta1, theta2, |s1[last]|, |s2[last]|) of the m x m Lanczos tridiagonal."""
    t = np.zeros((m, m))
    for i in range(m):
        t[i, i] = alpha[i]
        if i + 1 < m:
            t[i, i + 1] = beta[i]
            t[i + 1, i] = beta[i]
    ev, vec = np.linalg.eigh(t)
    th1 = ev[m - 1]
    s1 = abs(vec[m - 1, m - 1])
    if m >= 2:
        return th1, ev[m - 2], s1, abs(vec[m - 1, m - 2])
    return th1, -np.inf, s1, 0.0


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
    gap_hint: float,
    tol_rel: float,
    max_steps: int,
    vec_out: np.ndarray,
) -> tuple[float, float, float, int]:
    """Largest eigenvalue of C (window ret[a:b]) by warm-started Lanczos with a residual certificate.

    Returns (theta, error_bound, gap_estimate, steps). Full re-orthogonalisation keeps the
    Krylov basis orthonormal. After each step the Ritz pair (theta1, y1) has residual
    ||C y1 - theta1 y1|| = beta_k |s1[k]| and the eigenvalue error is bounded by
    min(r1, r1^2 / gap) with gap = theta1 - (theta2 + r2) (second Ritz value pushed up by its
    own residual); before a second Ritz value exists the caller's ``gap_hint`` is used.
    ``error_bound`` is +inf when no certificate was reached within ``max_steps``; the caller
    must then fall back to an exact solver. The Ritz vector goes to ``vec_out`` (warm start).
    """
    n = ret.shape[1]
    m_cap = max_steps + 1
    q = np.zeros((m_cap, n))
    alpha = np.zeros(m_cap)
    beta = np.zeros(m_cap)
    w = np.empty(n)
    # start vector restricted to eligible assets
    nrm = 0.0
    for j in range(n):
        x = v0[j] if d[j] > 0.0 else 0.0
        if not np.isfinite(x):
            x = 0.0
        q[0, j] = x
        nrm += x * x
    if nrm <= 0.0:
        nrm = 0.0
        for j in range(n):
            q[0, j] = 1.0 if d[j] > 0.0 else 0.0
            nrm += q[0, j]
    if nrm <= 0.0:
        for j in range(n):
            vec_out[j] = 0.0
        return 0.0, 0.0, 0.0, 0
    inv = 1.0 / math.sqrt(nrm)
    for j in range(n):
        q[0, j] *= inv
    theta = 0.0
    bound = np.inf
    gap = gap_hint
    steps = 0
    m = 0
    for k in range(max_steps):
        corr_matvec(ret, valid, a, b, mu, d, has_missing, q[k], w)
        steps = k + 1
        ak = 0.0
        for j in range(n):
            ak += q[k, j] * w[j]
        alpha[k] = ak
        # full re-orthogonalisation (twice is enough)
        for _rep in range(2):
            for i in range(k + 1):
                c = 0.0
                for j in range(n):
                    c += q[i, j] * w[j]
                for j in range(n):
                    w[j] -= c * q[i, j]
        bk = 0.0
        for j in range(n):
            bk += w[j] * w[j]
        bk = math.sqrt(bk)
        beta[k] = bk
        m = k + 1
        th1, th2, s1, s2 = _tridiag_top2(alpha, beta, m)
        theta = th1
        r1 = bk * s1
        if m >= 2:
            gap = th1 - (th2 + bk * s2)
        scale = abs(th1) if th1 != 0.0 else 1.0
        if gap > 0.0:
            bound = min(r1, r1 * r1 / gap)
        else:
            bound = r1
        if bound <= tol_rel * scale or bk <= 1e-14 * scale:
            if bk <= 1e-14 * scale:
                bound = min(bound, bk)
            break
        if k + 1 < max_steps:
            inv = 1.0 / bk
            for j in range(n):
                q[k + 1, j] = w[j] * inv
    if not (bound <= tol_rel * (abs(theta) if theta != 0.0 else 1.0)):
        bound = np.inf
    # Ritz vector for the warm start
    t = np.zeros((m, m))
    for i in range(m):
        t[i, i] = alpha[i]
        if i + 1 < m:
            t[i, i + 1] = beta[i]
            t[i + 1, i] = beta[i]
    ev, vec = np.linalg.eigh(t)
    for j in range(n):
        vec_out[j] = 0.0
    for i in range(m):
        c = vec[i, m - 1]
        for j in range(n):
            vec_out[j] += c * q[i, j]
    return theta, bound, gap, steps


@nb.njit(cache=True)
def slide_sums(
    ret: np.ndarray, valid: np.ndarray, add_row: int, drop_row: int, n: np.ndarray, s: np.ndarray, q: np.ndarray
) -> int:
    """Add row ``add_row`` to and drop row ``drop_row`` (-1: none) from window sums; returns the change
    in the count of masked cells in the window."""
    m = ret.shape[1]
    delta = 0
    for j in range(m):
        if valid[add_row, j]:
            x = ret[add_row, j]
            n[j] += 1.0
            s[j] += x
            q[j] += x * x
        else:
            delta += 1
    if drop_row >= 0:
        for j in range(m):
            if valid[drop_row, j]:
                x = ret[drop_row, j]
                n[j] -= 1.0
                s[j] -= x
                q[j] -= x * x
            else:
                delta -= 1
    return delta


@nb.njit(cache=True)
def resum(
    ret: np.ndarray, valid: np.ndarray, a: int, b: int, n: np.ndarray, s: np.ndarray, q: np.ndarray
) -> int:
    """Exact window sums over rows [a, b) from scratch (the periodic re-anchor); returns masked cells."""
    m = ret.shape[1]
    missing = 0
    for j in range(m):
        n[j] = 0.0
        s[j] = 0.0
        q[j] = 0.0
    for t in range(a, b):
        for j in range(m):
            if valid[t, j]:
                x = ret[t, j]
                n[j] += 1.0
                s[j] += x
                q[j] += x * x
            else:
                missing += 1
    return missing


@nb.njit(cache=True)
def standardise_into(
    n: np.ndarray,
    s: np.ndarray,
    q: np.ndarray,
    min_count: float,
    min_return_var: float,
    mu: np.ndarray,
    d: np.ndarray,
    eligible: np.ndarray,
) -> tuple[int, int, int]:
    """In-place :func:`standardise`; returns (n_eligible, n_low_coverage, n_zero_variance)."""
    m = n.shape[0]
    n_eff = 0
    n_low = 0
    n_zero = 0
    for j in range(m):
        cnt = n[j]
        if cnt < min_count or cnt <= 0.0:
            n_low += 1
            eligible[j] = False
            mu[j] = 0.0
            d[j] = 0.0
            continue
        mj = s[j] / cnt
        ss = q[j] - s[j] * mj
        if not (ss / cnt > min_return_var):
            n_zero += 1
            eligible[j] = False
            mu[j] = 0.0
            d[j] = 0.0
            continue
        eligible[j] = True
        mu[j] = mj
        d[j] = 1.0 / math.sqrt(ss)
        n_eff += 1
    return n_eff, n_low, n_zero
