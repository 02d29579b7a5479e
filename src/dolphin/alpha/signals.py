"""Entry signals: vel_div threshold rule, volatility gate, asset responsiveness, signal strength.

Pure functions over numpy arrays (bars on axis 0, assets on axis 1), shared unchanged by the
vectorised backtester, the NautilusTrader backtests and the live Oracle. Nothing looks ahead: the
value at bar t uses bars <= t only. Warm-up bars are NaN (floats) or "closed" (gates).

Definitions
-----------
- Direction (int8): SHORT (-1) when ``vel_div <= short_threshold``; LONG (+1) when the long rule is
  enabled and ``vel_div >= long_threshold``; else FLAT (0). NaN vel_div is FLAT.
- Signal strength in [0, 1] (unitless): ``clip((short_threshold - vel_div) / strength_span, 0, 1)``
  for SHORT (mirror image for LONG); 0 when FLAT. Monotone in the distance beyond the threshold.
- Volatility gate: ``sigma_t`` = rolling std (ddof=0) of BTC returns over ``window_bars`` bars (returns
  as fractions, e.g. log returns). Open when ``sigma_t`` > threshold:
  * static: threshold = the ``percentile``-th percentile (numpy's linear interpolation) of sigma over
    a calibration sample, computed once (:func:`vol_threshold_static`);
  * rolling: threshold_t = percentile of the previous ``lookback_bars`` sigma values (t-L .. t-1),
    so the gate adapts to the regime without look-ahead (:func:`vol_gate_rolling`).
- Market-mode return: equal-weight mean of the assets' returns at each bar (NaN-aware), or the
  return projected on the first principal component of the correlation matrix over the window
  (sign chosen so its loadings sum positive) (:func:`market_mode_returns`).
- Responsiveness in [0, 1] of an asset: rolling Pearson correlation (``window_bars``) of its returns
  with the market-mode return, clipped below at 0: how closely the asset follows the market mode.
  Assets below ``min_responsiveness`` (0.45 by default) are rejected.
"""

from __future__ import annotations

import math
import warnings
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from dolphin.alpha.config import SignalConfig

__all__ = [
    "Direction",
    "SignalReason",
    "entry_direction",
    "entry_signals",
    "market_mode_returns",
    "responsiveness",
    "rolling_percentile_prev",
    "rolling_std",
    "signal_strength",
    "vol_gate_rolling",
    "vol_gate_static",
    "vol_threshold_static",
]


class Direction(IntEnum):
    """Trade direction of an entry signal."""

    SHORT = -1
    FLAT = 0
    LONG = 1


class SignalReason(IntEnum):
    """Why an (bar, asset) cell is or is not a candidate (recorded per cell)."""

    CANDIDATE = 0
    NO_SIGNAL = 1  # vel_div inside the thresholds (or NaN)
    VOL_GATE_CLOSED = 2  # BTC volatility not above its percentile (or warm-up)
    UNRESPONSIVE = 3  # asset responsiveness below the minimum (or warm-up / missing data)


# --------------------------------------------------------------------------- entry rule


def entry_direction(
    vel_div: np.ndarray, short_threshold: float = -0.02, *, long_enabled: bool = False, long_threshold: float = 0.02
) -> np.ndarray:
    """Direction per bar (int8: -1 SHORT, 0 FLAT, +1 LONG) from vel_div (unitless velocity difference)."""
    v = np.asarray(vel_div, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        out[v <= short_threshold] = Direction.SHORT
        if long_enabled:
            if long_threshold <= short_threshold:
                raise ValueError(f"long_threshold {long_threshold} must be > short_threshold {short_threshold}")
            out[v >= long_threshold] = Direction.LONG
    return out


def signal_strength(
    vel_div: np.ndarray,
    direction: np.ndarray,
    *,
    short_threshold: float = -0.02,
    long_threshold: float = 0.02,
    strength_span: float = 0.03,
) -> np.ndarray:
    """Signal strength in [0, 1]: distance beyond the threshold in units of ``strength_span``, clipped."""
    if strength_span <= 0:
        raise ValueError(f"strength_span must be > 0, got {strength_span}")
    v = np.asarray(vel_div, dtype=np.float64)
    d = np.asarray(direction)
    dist = np.where(d < 0, short_threshold - v, np.where(d > 0, v - long_threshold, 0.0))
    with np.errstate(invalid="ignore"):
        s = np.clip(dist / strength_span, 0.0, 1.0)
    return np.where(d == 0, 0.0, np.nan_to_num(s, nan=0.0))


# --------------------------------------------------------------------------- volatility gate


@njit(cache=True, nogil=True)
def _rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    # Two-pass per window (O(T*W)): exact for constant windows, no running-sum cancellation.
    n = x.shape[0]
    out = np.full(n, np.nan)
    bad = 0  # NaNs inside the window
    for i in range(n):
        if math.isnan(x[i]):
            bad += 1
        if i >= window and math.isnan(x[i - window]):
            bad -= 1
        if i >= window - 1 and bad == 0:
            m = 0.0
            for j in range(i - window + 1, i + 1):
                m += x[j]
            m /= window
            v = 0.0
            for j in range(i - window + 1, i + 1):
                d = x[j] - m
                v += d * d
            out[i] = math.sqrt(v / window)
    return out


def rolling_std(x: np.ndarray, window_bars: int) -> np.ndarray:
    """Rolling population std (ddof=0, units of ``x``) over ``window_bars`` bars; NaN during warm-up
    or if the window holds a NaN."""
    if window_bars < 2:
        raise ValueError(f"window_bars must be >= 2, got {window_bars}")
    return _rolling_std(np.ascontiguousarray(x, dtype=np.float64), int(window_bars))


def vol_threshold_static(
    calibration_btc_returns: np.ndarray, *, window_bars: int = 50, percentile: float = 60.0
) -> float:
    """Static gate threshold: the ``percentile`` (0-100) of the rolling std over a calibration sample
    (return units, e.g. log-return fractions per bar)."""
    sig = rolling_std(calibration_btc_returns, window_bars)
    sig = sig[np.isfinite(sig)]
    if sig.size == 0:
        raise ValueError(f"calibration sample shorter than the window ({window_bars} bars) or all NaN")
    return float(np.percentile(sig, percentile))


def vol_gate_static(btc_returns: np.ndarray, threshold: float, *, window_bars: int = 50) -> np.ndarray:
    """Gate open (True) where the rolling std of BTC returns is above a calibrated ``threshold``
    (same units as the returns)."""
    sig = rolling_std(btc_returns, window_bars)
    with np.errstate(invalid="ignore"):
        return sig > threshold


@njit(cache=True, nogil=True)
def _rolling_percentile_prev(x: np.ndarray, lookback: int, q: float) -> np.ndarray:
    """Percentile (linear interpolation, as numpy) of the previous ``lookback`` finite values."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    buf = np.empty(lookback)  # sorted window of finite values
    m = 0
    for i in range(n):
        # window for out[i] is x[i-lookback .. i-1]
        if m == lookback:
            frac = q / 100.0 * (m - 1)
            lo = int(math.floor(frac))
            hi = min(lo + 1, m - 1)
            out[i] = buf[lo] + (buf[hi] - buf[lo]) * (frac - lo)
        # add x[i], drop x[i-lookback]
        if i >= lookback:
            xo = x[i - lookback]
            if not math.isnan(xo):
                lo_ = 0
                hi_ = m
                while lo_ < hi_:
                    mid = (lo_ + hi_) >> 1
                    if buf[mid] < xo:
                        lo_ = mid + 1
                    else:
                        hi_ = mid
                for j in range(lo_, m - 1):
                    buf[j] = buf[j + 1]
                m -= 1
        xi = x[i]
        if not math.isnan(xi):
            lo_ = 0
            hi_ = m
            while lo_ < hi_:
                mid = (lo_ + hi_) >> 1
                if buf[mid] < xi:
                    lo_ = mid + 1
                else:
                    hi_ = mid
            for j in range(m, lo_, -1):
                buf[j] = buf[j - 1]
            buf[lo_] = xi
            m += 1
    return out


def rolling_percentile_prev(x: np.ndarray, lookback_bars: int, percentile: float) -> np.ndarray:
    """At bar t: the ``percentile`` (0-100) of ``x[t-lookback_bars : t]`` (previous bars only); NaN
    unless all of them are finite."""
    lookback = lookback_bars
    if lookback < 2:
        raise ValueError(f"lookback_bars must be >= 2, got {lookback}")
    if not (0.0 <= percentile <= 100.0):
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return _rolling_percentile_prev(np.ascontiguousarray(x, dtype=np.float64), int(lookback), float(percentile))


def vol_gate_rolling(
    btc_returns: np.ndarray, *, window_bars: int = 50, percentile: float = 60.0, lookback_bars: int = 1440
) -> np.ndarray:
    """Gate open where the rolling std exceeds the percentile of its own previous ``lookback_bars`` values."""
    sig = rolling_std(btc_returns, window_bars)
    thr = rolling_percentile_prev(sig, lookback_bars, percentile)
    with np.errstate(invalid="ignore"):
        return sig > thr


# --------------------------------------------------------------------------- responsiveness


def market_mode_returns(returns: np.ndarray, *, method: str = "equal_weight", window_bars: int = 150) -> np.ndarray:
    """Market-mode return per bar from a (bars, assets) return matrix.

    ``equal_weight``: NaN-aware cross-sectional mean. ``pc1``: at each bar t >= W-1 (W = window_bars),
    the assets' returns at t (raw, not standardised) weighted by the first eigenvector of the
    correlation matrix of bars t-W+1..t, loadings normalised to sum 1 (sign so they sum positive):
    a loading-weighted mean return, in return units like ``equal_weight``; NaN before. ``pc1`` costs
    one eigen-decomposition per bar: use it for research, not in the hot path.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be 2-D (bars, assets), got shape {r.shape}")
    if method == "equal_weight":
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bars give NaN, as intended
            return np.nanmean(r, axis=1)
    if method != "pc1":
        raise ValueError(f"method must be 'equal_weight' or 'pc1', got {method!r}")
    t_n, _ = r.shape
    window = window_bars
    out = np.full(t_n, np.nan)
    for t in range(window - 1, t_n):
        w = r[t - window + 1 : t + 1]
        ok = np.all(np.isfinite(w), axis=0)
        if ok.sum() < 2:
            continue
        w = w[:, ok]
        mu = w.mean(axis=0)
        sd = w.std(axis=0)
        good = sd > 0
        if good.sum() < 2:
            continue
        z = (w[:, good] - mu[good]) / sd[good]
        c = (z.T @ z) / window
        _, vecs = np.linalg.eigh(c)
        v = vecs[:, -1]
        total = v.sum()
        if abs(total) < 1e-9:  # no common direction: the market mode is undefined this bar
            continue
        out[t] = float(w[-1, good] @ (v / total))  # loadings sum to 1, sign so they sum positive
    return out


@njit(cache=True, nogil=True)
def _rolling_corr(x: np.ndarray, m: np.ndarray, window: int) -> np.ndarray:
    # Two-pass (centred) per window: O(T*N*W), numerically safe for near-constant windows.
    t_n, n_a = x.shape
    out = np.full((t_n, n_a), np.nan)
    for a in range(n_a):
        for t in range(window - 1, t_n):
            sx = 0.0
            sm = 0.0
            ok = True
            for k in range(t - window + 1, t + 1):
                xv = x[k, a]
                mv = m[k]
                if math.isnan(xv) or math.isnan(mv):
                    ok = False
                    break
                sx += xv
                sm += mv
            if not ok:
                continue
            mx = sx / window
            mm = sm / window
            vx = 0.0
            vm = 0.0
            cv = 0.0
            for k in range(t - window + 1, t + 1):
                dx = x[k, a] - mx
                dm = m[k] - mm
                vx += dx * dx
                vm += dm * dm
                cv += dx * dm
            sdx = math.sqrt(vx / window)
            sdm = math.sqrt(vm / window)
            # A (numerically) constant series has no correlation.
            if sdx <= 1e-10 * abs(mx) or sdm <= 1e-10 * abs(mm) or sdx == 0.0 or sdm == 0.0:
                continue
            rx = math.sqrt(vx)
            rm = math.sqrt(vm)
            if rx == 0.0 or rm == 0.0:
                continue
            c = (cv / rx) / rm  # ordered to avoid underflow of vx * vm
            if math.isnan(c):
                continue
            out[t, a] = min(1.0, max(0.0, c))
    return out


def responsiveness(asset_returns: np.ndarray, market_returns: np.ndarray, *, window_bars: int = 150) -> np.ndarray:
    """Responsiveness in [0, 1] per (bar, asset): rolling correlation with the market mode, clipped at 0.

    NaN during warm-up, where a window holds a NaN, or where either series is constant.
    """
    x = np.asarray(asset_returns, dtype=np.float64)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    m = np.ascontiguousarray(market_returns, dtype=np.float64)
    if x.shape[0] != m.shape[0]:
        raise ValueError(f"asset_returns has {x.shape[0]} bars, market_returns {m.shape[0]}")
    if window_bars < 2:
        raise ValueError(f"window_bars must be >= 2, got {window_bars}")
    out = _rolling_corr(np.ascontiguousarray(x), m, int(window_bars))
    return out[:, 0] if squeeze else out


# --------------------------------------------------------------------------- composite


def entry_signals(
    vel_div: np.ndarray,
    btc_returns: np.ndarray,
    asset_returns: np.ndarray,
    cfg: "SignalConfig",
    *,
    market_returns: np.ndarray | None = None,
    static_vol_threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All entry rules on a (bars, assets) panel, per the ``[alpha.signal]`` config.

    Returns ``(direction[int8, (T, N)], strength[(T, N)] in [0, 1], responsiveness[(T, N)],
    reason[int8, (T, N)])``; ``reason`` is a :class:`SignalReason` per cell, CANDIDATE where all rules
    pass (direction != 0 exactly there). ``static_vol_threshold`` is required in static mode
    (calibrate it with :func:`vol_threshold_static` on a calibration sample); ``market_returns``
    defaults to :func:`market_mode_returns` of ``asset_returns``.
    """
    x = np.asarray(asset_returns, dtype=np.float64)
    t_n = x.shape[0]
    if np.shape(vel_div)[0] != t_n or np.shape(btc_returns)[0] != t_n:
        raise ValueError("vel_div, btc_returns and asset_returns must have the same number of bars")
    d = entry_direction(
        vel_div, cfg.short_threshold, long_enabled=cfg.long_enabled, long_threshold=cfg.long_threshold
    )
    s = signal_strength(
        vel_div,
        d,
        short_threshold=cfg.short_threshold,
        long_threshold=cfg.long_threshold,
        strength_span=cfg.strength_span,
    )
    if cfg.vol_gate_mode == "static":
        if static_vol_threshold is None:
            raise ValueError("vol_gate_mode 'static' needs static_vol_threshold (see vol_threshold_static)")
        gate = vol_gate_static(btc_returns, static_vol_threshold, window_bars=cfg.vol_window_bars)
    else:
        gate = vol_gate_rolling(
            btc_returns,
            window_bars=cfg.vol_window_bars,
            percentile=cfg.vol_percentile,
            lookback_bars=cfg.vol_rolling_lookback_bars,
        )
    m = (
        market_mode_returns(x, method=cfg.market_mode, window_bars=cfg.responsiveness_window_bars)
        if market_returns is None
        else market_returns
    )
    resp = responsiveness(x, m, window_bars=cfg.responsiveness_window_bars)
    reason = np.full(x.shape, SignalReason.CANDIDATE, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        unresponsive = ~(resp >= cfg.min_responsiveness)
    reason[unresponsive] = SignalReason.UNRESPONSIVE
    reason[~gate, :] = SignalReason.VOL_GATE_CLOSED
    reason[d == 0, :] = SignalReason.NO_SIGNAL
    cand = reason == SignalReason.CANDIDATE
    direction = np.where(cand, d[:, None], 0).astype(np.int8)
    strength = np.where(cand, s[:, None], 0.0)
    return direction, strength, resp, reason

