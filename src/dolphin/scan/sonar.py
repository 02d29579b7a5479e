"""Sonar: the incremental eigenvalue regime scanner (stateful; one bar in, one ScanRecord out).

Per bar, for every window W: the window's per-asset sums slide by one row (add the new
return, drop the oldest: O(N), never a recompute), the standardisation is derived from the
sums, and lambda_max comes from a warm-started Lanczos run whose matrix-vector products read
the W x N return window directly (C is never formed). Each result carries a residual-based
error certificate; when it cannot be certified within the step cap the exact solver is used
(counted). The sums of returns and squares are compensated; the sums are re-anchored exactly
every ``resum_every_bars``, and at once when the cross-product's rounding bound could exceed
1e-12 (a large return left the window: counted ``resum_drift``); the iterative lambda_max is
checked against ``eigvalsh`` every ``exact_check_every_bars`` (drift check).

With ``full_spectrum`` the exact spectrum (Gram route when W < N_eff) gives lambda_max,
entropy and absorption ratio; without it only the signal path runs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import msgspec
import numpy as np

from dolphin.scan import kernels as K
from dolphin.scan.config import ScanConfig
from dolphin.scan.gate import (
    GateResult,
    InputCheck,
    bar_checksum,
    check_checksum,
    check_complete,
    check_fresh,
    evaluate_gate,
)
from dolphin.scan.record import ATTACK, VETO, ScanRecord, WindowFeatures

__all__ = ["ScanCounters", "Sonar", "scan_matrix"]

# Lanczos products from the maintained cross-product (N^2 / 2 elements, two rows per pass) rather
# than from the W x N window once W >= 0.3 N. Measured on the benchmark's real windows, signal
# path, alternating blocks in one process: N = 400, W = 150 on P 3-4 % faster per scan (it was on
# the window under the old W >= N / 2 rule); W = 50 on P 7 % slower at N = 400, 3 % at N = 200.
_P_PRODUCT_MIN_W_FRAC = 0.3

log = logging.getLogger(__name__)

_DRIFT_TOL_REL = 1e-9
# The sliding cross-product P is not compensated (that would double its rank-2 update, the
# signal path's largest memory stream); a window re-anchors at once when P's rounding since its
# last re-anchor could exceed this times sqrt(q_i q_j) (K.slide_sums): 1000x below the 1e-9 goal.
# In normal flow that bound grows ~2u per bar (the scheduled re-anchor every resum_every_bars = 256
# comes first; at 1e-13 the bound's worst case tripped it ~every 60 bars per window on the
# benchmark's real data, at 1e-12 never in 1500 bars); a bad print leaving the window trips it
# (decision 0003, "Sliding sums").
_MAX_CROSS_DRIFT = 1e-12


def _as_ns(name: str, value: object) -> int:
    """An integer nanosecond timestamp (ValueError naming the argument otherwise, e.g. NaN)."""
    try:
        ns = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be an integer nanosecond timestamp, got {value!r}") from None
    if ns != value:
        raise ValueError(f"{name} must be an integer nanosecond timestamp, got {value!r}")
    return ns


@dataclass
class ScanCounters:
    """Cumulative counts of every data-quality and numerical event (nothing is silent)."""

    bars: int = 0
    missing_bars: int = 0  # (asset, bar) pairs without a real bar
    gap_starts: int = 0  # an asset had a usable bar and now has none (gap, outage, delisting)
    gap_ends: int = 0  # an asset's bars resume (or it lists)
    bad_prices: int = 0  # bars flagged real with a NaN / inf / non-positive close
    low_coverage_exclusions: int = 0  # (window, scan, asset) exclusions for coverage
    zero_variance_exclusions: int = 0  # (window, scan, asset) exclusions for zero variance
    universe_changes: int = 0  # an asset entered or left a window's eligible set (list / delist / gaps)
    singular_shrinks: int = 0  # (window, scan) where N_eff >= W and shrinkage was applied
    lanczos_fallbacks: int = 0  # lambda_max from the exact solver: no certificate (or recent failure)
    exact_checks: int = 0
    drift_violations: int = 0  # exact check disagreed by more than 1e-9 relative
    resums: int = 0
    checksum_failures: int = 0
    stale_inputs: int = 0
    vetoes: int = 0
    attacks: int = 0
    lanczos_steps: int = 0
    events: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, k: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + k


class _Window:
    __slots__ = (
        "w", "n", "s", "q", "mu", "d", "eligible", "prev_eligible", "missing", "vec", "gap", "history",
        "n_eff", "initialised", "last_change_bar", "p", "spare", "last_steps", "offset", "fail_streak", "mv_p",
        "shift_mode", "mat", "spec", "warm_retry_bar", "pend_add", "pend_drop", "has_p", "cs", "cq", "mass",
    )

    def __init__(self, w: int, n_assets: int, lag: int, offset: int, signal_only: bool) -> None:
        self.w = w
        self.offset = offset  # index among the windows: staggers re-anchors and exact checks
        # W >= N: keep the N x N cross-product X^T X, packed (rank-2 update per bar); products and
        # the exact spectrum then cost ~N^2 instead of W N. On the signal path it is also kept when
        # W^2 >= 2 N: ||C||_F^2 for the certificate then costs ~1.5 N^2 (update + pass, one
        # triangle each) instead of W^2 N (Gram). Otherwise a 1-element placeholder (has_p False).
        self.mv_p = w >= n_assets
        keep = self.mv_p or (signal_only and w * w >= 2 * n_assets)
        self.has_p = keep
        self.p = np.zeros(K.packed_size(n_assets) if keep else 1)  # packed lower triangle (K.cross_update)
        # the cross-product's rank-2 update for the newest bar is applied when the window is
        # scanned (:meth:`Sonar._flush_cross`), so that P is still in cache for ||C||_F^2 and the
        # products; -1 = nothing pending
        self.pend_add = -1
        self.pend_drop = -1
        self.n = np.zeros(n_assets)
        self.s = np.zeros(n_assets)
        self.q = np.zeros(n_assets)
        # the rounding errors of the sliding sums s and q (compensated: K._accumulate_row)
        self.cs = np.zeros(n_assets)
        self.cq = np.zeros(n_assets)
        # since the last re-anchor: x^2 of every add and drop, plus q after each slide where P is
        # kept (the cross-product's rounding bound, K.slide_sums)
        self.mass = np.zeros(n_assets)
        self.mu = np.zeros(n_assets)
        self.d = np.zeros(n_assets)
        self.eligible = np.zeros(n_assets, dtype=np.bool_)
        self.prev_eligible = np.zeros(n_assets, dtype=np.bool_)
        self.missing = 0
        self.vec = np.ones(n_assets)
        self.spare = np.empty(n_assets)
        self.last_steps = 0
        self.fail_streak = 0  # consecutive scans without any certificate (exact solver used)
        self.shift_mode = False  # trace / Frobenius cannot certify here: converge, then shift certificate
        self.mat = np.empty(0)  # flat workspace for N_eff x N_eff matrices from the cross-product (lazy)
        self.spec = np.empty(0)  # last full spectrum (of the matrix solved): warm start of the next
        self.warm_retry_bar = 0  # no warm start before this bar (after a warm attempt failed)
        self.gap = 0.0
        self.history = np.full(lag + 1, np.nan)  # ring of lambda_max, index bar % (lag + 1)
        self.n_eff = 0
        self.initialised = False
        self.last_change_bar = -(10**9)


class Sonar:
    """The scanner for a fixed universe of ``n_assets`` (assets that list later start masked)."""

    def __init__(self, n_assets: int, config: ScanConfig | None = None) -> None:
        cfg = config or ScanConfig()
        cfg.validate()
        if n_assets < 1:
            raise ValueError(f"n_assets must be >= 1, got {n_assets}")
        self.cfg = cfg
        self.n_assets = n_assets
        self.windows = tuple(sorted(cfg.windows))
        self.max_w = max(self.windows)
        self._cap = self.max_w + max(self.max_w, 256)
        self._ret = np.zeros((self._cap, n_assets))
        self._valid = np.zeros((self._cap, n_assets), dtype=np.bool_)
        self._end = 0  # rows in the buffer
        self._returns_seen = 0
        self._prev_close = np.full(n_assets, np.nan)
        self._prev_ok = np.zeros(n_assets, dtype=np.bool_)
        self._ok_spare = np.zeros(n_assets, dtype=np.bool_)
        self._valid_work = np.zeros(n_assets, dtype=np.bool_)  # this bar's valid returns (copied by _push)
        self._r_work = np.zeros(n_assets)  # this bar's returns (copied by _push)
        self._win = {w: _Window(w, n_assets, cfg.velocity_lag_bars, k, not cfg.full_spectrum) for k, w in enumerate(self.windows)}
        self._bar = -1
        self._last_ts_ns: int | None = None
        self._last_record: ScanRecord | None = None
        self.counters = ScanCounters()
        jitter = np.random.default_rng(0x5EED).standard_normal(n_assets)  # fixed: results are reproducible
        self._jitter = jitter / np.linalg.norm(jitter)
        self._q_work = np.empty((cfg.lanczos_max_steps + 1, n_assets))  # shared Lanczos basis workspace

    # ------------------------------------------------------------------ public API

    def update(
        self,
        ts_ns: int,
        closes: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        now_ns: int | None = None,
        checksum: int | None = None,
        crossed_boundary: bool = False,
        extra_inputs: Sequence[InputCheck] = (),
        returns: np.ndarray | None = None,
    ) -> ScanRecord:
        """Ingest one bar (closes of all assets, mask True = real bar) and return its scan record.

        ``now_ns`` is the scan clock (injected; None means replay, where the bar is its own
        clock). ``checksum`` is the bar's :func:`bar_checksum` when it arrived from another
        process (``crossed_boundary``). ``extra_inputs`` are further verified inputs to gate on.
        ``returns`` are this bar's log returns when another process computed them (the scale-out
        workers, ``dolphin scan --workers K``); a return is used only where both bars are real
        here too, and a non-finite one counts as missing.
        """
        # -- the arguments first: a call that raises changes nothing (no bar, no row, no counter)
        closes = np.asarray(closes, dtype=np.float64)
        if closes.shape != (self.n_assets,):
            raise ValueError(f"closes has shape {closes.shape}, expected ({self.n_assets},)")
        mask = np.isfinite(closes) if mask is None else np.asarray(mask, dtype=np.bool_)
        if mask.shape != (self.n_assets,):
            raise ValueError(f"mask has shape {mask.shape}, expected ({self.n_assets},)")
        use_returns = returns is not None
        if use_returns:
            returns = np.asarray(returns, dtype=np.float64)
            if returns.shape != (self.n_assets,):
                raise ValueError(f"returns has shape {returns.shape}, expected ({self.n_assets},)")
        ts_ns = _as_ns("ts_ns", ts_ns)
        if now_ns is not None:
            now_ns = _as_ns("now_ns", now_ns)
        extra_inputs = tuple(extra_inputs)
        for x in extra_inputs:
            if not isinstance(x, InputCheck):
                raise TypeError(f"extra_inputs holds {type(x).__name__!r}, expected InputCheck")
        cfg = self.cfg
        c = self.counters
        checks: list[InputCheck] = []

        # -- checksum (before touching the data). A bar that fails it is not trusted: it enters the
        #    window masked whole (a gap: no return into or out of it is used by any later scan)
        #    and this scan is VETO.
        corrupt = False
        if crossed_boundary:
            chk = check_checksum("bar.checksum", True, checksum, bar_checksum(ts_ns, closes, mask))
            if not chk.ok:
                c.checksum_failures += 1
                corrupt = True
            checks.append(chk)

        # -- order: a bar at or before the last one (a repeat, a late bar) changes nothing; the
        #    record repeats the last scan's features, VETO with `bar.order`
        if self._last_ts_ns is not None and ts_ns <= self._last_ts_ns:
            c.count("out_of_order_bars")
            log.warning("bar at %d not after the last one (%d): ignored (state unchanged), scan VETO", ts_ns,
                        self._last_ts_ns)
            checks.append(InputCheck("bar.order", False, f"non-increasing timestamp {ts_ns} <= {self._last_ts_ns}"))
            return self._ignored(ts_ns, now_ns, closes, mask, checks, extra_inputs)

        self._bar += 1
        c.bars += 1
        bar = self._bar
        if corrupt:
            log.warning("bar %d at %d: checksum failed, masked whole (its returns are not used)", bar, ts_ns)
            mask = np.zeros(self.n_assets, dtype=np.bool_)

        # -- returns of this bar (one compiled pass: K.bar_returns)
        prev_ok = self._prev_ok
        ok = self._ok_spare  # double buffer: prev_ok is read while ok is written
        valid = self._valid_work
        r = self._r_work
        n_bad, n_missing, n_start, n_end, n_ok, n_valid, n_nonfinite = K.bar_returns(
            closes, mask, self._prev_close, prev_ok, returns if use_returns else self._r_work, use_returns, ok,
            valid, r,
        )
        self._prev_ok, self._ok_spare = ok, prev_ok
        if n_bad:
            c.bad_prices += n_bad
            log.info("bar %d: %d real bars with NaN/non-positive close masked", bar, n_bad)
        if n_nonfinite:
            c.count("nonfinite_returns", n_nonfinite)
            log.warning("bar %d: %d non-finite returns between real bars masked (price ratio out of range, or a "
                        "worker's return)", bar, n_nonfinite)
        c.missing_bars += n_missing
        if bar > 0:
            if n_start:
                c.gap_starts += n_start
                log.info("bar %d: gap starts for %d assets %s", bar, n_start,
                         np.flatnonzero(prev_ok & ~ok)[:10].tolist())
            if n_end:
                c.gap_ends += n_end
                log.info("bar %d: bars resume for %d assets %s", bar, n_end,
                         np.flatnonzero(ok & ~prev_ok)[:10].tolist())
            self._push(r, valid)

        # -- windows
        feats: list[WindowFeatures] = []
        for w in self.windows:
            feats.append(self._scan_window(self._win[w], bar))

        # -- velocities, vel_div, instability
        by_w = {f.window: f for f in feats}
        short, long_ = by_w[cfg.vel_div_short], by_w[cfg.vel_div_long]
        vel_div = short.velocity - long_.velocity
        all_ready = all(f.ready and math.isfinite(f.velocity) for f in feats)
        instability = max(abs(f.velocity) for f in feats) if all_ready else math.nan

        # -- zero-trust gate
        if now_ns is not None:
            checks.append(self._fresh(ts_ns, now_ns))
        self._last_ts_ns = ts_ns
        if not corrupt:  # (a corrupt bar's completeness is not information: bar.checksum says it)
            checks.append(check_complete("bar.complete", n_ok, self.n_assets, cfg.gate.min_bar_completeness))
            if bar > 0:
                checks.append(check_complete("bar.returns", n_valid, self.n_assets, cfg.gate.min_bar_completeness))
        for f in feats:
            checks.append(
                check_complete(f"window{f.window}.complete", f.n_assets, self.n_assets, cfg.gate.min_window_completeness)
            )
        gate = self._gate(checks, extra_inputs)

        # -- regime rule (config.RegimeConfig)
        reasons: list[str] = []
        if not gate.passed:
            reasons.append("gate")
        rc = cfg.regime
        if not all_ready or any(f.n_assets < rc.min_assets for f in feats):
            reasons.append("warmup")
        sw = by_w[rc.structure_window]
        if not (sw.ready and sw.lambda_max >= rc.min_signal_ratio * sw.mp_edge):
            reasons.append("no_structure")
        if not (instability <= rc.max_instability):
            reasons.append("unstable")
        if any(bar - self._win[f.window].last_change_bar <= cfg.velocity_lag_bars for f in feats):
            reasons.append("universe_change")  # velocities straddle a change of the eligible set
        regime = VETO if reasons else ATTACK
        if reasons:
            c.vetoes += 1
        else:
            c.attacks += 1
        self._last_record = record = ScanRecord(
            ts_ns=ts_ns,
            bar_index=bar,
            windows=tuple(feats),
            vel_div=float(vel_div),
            instability=float(instability),
            regime=regime,
            veto_reasons=tuple(reasons),
            failed_inputs=gate.failed_names,
            n_assets=self.n_assets,
            n_real_bars=n_ok,
            n_missing_bars=n_missing,
            n_bad_prices=n_bad,
        )
        return record

    def _gate(self, checks: list[InputCheck], extra_inputs: tuple[InputCheck, ...]) -> GateResult:
        """The verdict on this scan's inputs, the caller's extra inputs last; each failed input
        counted by name."""
        checks.extend(extra_inputs)
        gate = evaluate_gate(checks)
        for name in gate.failed_names:
            self.counters.count(f"failed_input.{name}")
        return gate

    def _fresh(self, ts_ns: int, now_ns: int) -> InputCheck:
        fresh = check_fresh("bar.fresh", now_ns - ts_ns, self.cfg.gate.bar_deadband_ns)
        if not fresh.ok:
            self.counters.stale_inputs += 1
        return fresh

    def _ignored(
        self, ts_ns: int, now_ns: int | None, closes: np.ndarray, mask: np.ndarray, checks: list[InputCheck],
        extra_inputs: tuple[InputCheck, ...],
    ) -> ScanRecord:
        """The record of a bar that is not after the last one: the state is untouched, so it
        repeats the last scan's features (and bar index), VETO, naming every failed input; its
        data-quality counts are this bar's."""
        c = self.counters
        if now_ns is not None:
            checks.append(self._fresh(ts_ns, now_ns))
        gate = self._gate(checks, extra_inputs)
        c.vetoes += 1
        last = self._last_record
        assert last is not None  # set with _last_ts_ns
        with np.errstate(invalid="ignore"):
            fin = np.isfinite(closes) & (closes > 0.0)
        return msgspec.structs.replace(
            last,
            ts_ns=ts_ns,
            regime=VETO,
            veto_reasons=("gate",) + tuple(r for r in last.veto_reasons if r != "gate"),
            failed_inputs=gate.failed_names,
            n_real_bars=int(np.count_nonzero(mask & fin)),
            n_missing_bars=int(self.n_assets - np.count_nonzero(mask)),
            n_bad_prices=int(np.count_nonzero(mask & ~fin)),
        )

    def window_view(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        """The current W x N return window and its validity mask (copies; for tests and audits)."""
        a, b = self._bounds(w)
        return self._ret[a:b].copy(), self._valid[a:b].copy()

    # ------------------------------------------------------------------ internals

    def _bounds(self, w: int) -> tuple[int, int]:
        return max(0, self._end - w), self._end

    def _push(self, r: np.ndarray, valid: np.ndarray) -> None:
        for win in self._win.values():
            self._flush_cross(win)  # pending only if the last update stopped mid-scan; before compaction moves rows
        if self._end == self._cap:
            keep = self.max_w
            self._ret[:keep] = self._ret[self._end - keep : self._end]
            self._valid[:keep] = self._valid[self._end - keep : self._end]
            self._end = keep
        row = self._end
        self._ret[row] = r
        self._valid[row] = valid
        self._end += 1
        self._returns_seen += 1
        every = self.cfg.resum_every_bars
        for win in self._win.values():
            a, b = self._bounds(win.w)
            # staggered across windows so that at most one window re-anchors on a bar
            if (self._returns_seen + win.offset * every // len(self._win)) % every == 0:
                self._resum_window(win, a, b)
            else:
                drop = row - win.w if self._returns_seen > win.w else -1
                delta, drift = K.slide_sums(self._ret, self._valid, row, drop, win.n, win.s, win.q, win.cs, win.cq,
                                            win.mass, _MAX_CROSS_DRIFT if win.has_p else 0.0)
                win.missing += delta
                if drift:
                    # the cross-product's sliding rounding may exceed _MAX_CROSS_DRIFT: re-anchor now
                    self.counters.count("resum_drift")
                    log.info("window %d return %d: cross-product rounding bound past %g (a large return, or an "
                             "asset's last returns, left the window); re-anchored", win.w, self._returns_seen,
                             _MAX_CROSS_DRIFT)
                    self._resum_window(win, a, b)
                elif win.has_p:
                    win.pend_add, win.pend_drop = row, drop

    def _flush_cross(self, win: _Window) -> None:
        """Apply the pending rank-2 update of the window's cross-product (before anything reads P)."""
        if win.pend_add >= 0:
            K.cross_update(win.p, self._ret, win.pend_add, win.pend_drop)
            win.pend_add = -1

    def _resum_window(self, win: _Window, a: int, b: int) -> None:
        """Recompute the window's sums (and cross-product) from the buffer; counted in ``resums``."""
        self.counters.resums += 1
        win.missing = K.resum(self._ret, self._valid, a, b, win.n, win.s, win.q, win.cs, win.cq, win.mass)
        if win.has_p:
            K.cross_resum(win.p, self._ret, a, b)
            win.pend_add = -1  # recomputed from the buffer, newest row included

    def _certified_lambda(
        self, win: _Window, a: int, b: int, rows: int, n_eff: int, has_missing: bool, use_p: bool, bar: int
    ) -> tuple[float, float, int, np.ndarray | None]:
        """(lambda_max, absolute error bound or +inf, Lanczos steps, spectral matrix or None) of C.

        Two rigorous certificates, cheapest first (docs/decisions/0003-scan-incremental-exact-lambda.md):
        1. trace / Frobenius (kernels._certify): the trace rule is free; the Frobenius rule needs
           ||C||_F^2, O(N^2) from the maintained cross-product, else ||G||_F^2 of the Gram matrix.
           The trace rule alone is tried first when the last lambda_max exceeded 0.55 N_eff.
        2. shift (kernels.shift_certificate): when 1 fails (several comparable modes), one Cholesky
           of sigma I - M, M the cheaper explicit form of C (N_eff x N_eff from the cross-product,
           or the Gram matrix). The window then stays in shift mode: Lanczos stops as soon as the
           Ritz value has converged by estimate and goes straight to the Cholesky proof; every
           64 bars route 1 is retried in full.
        The matrix built for either route is returned so that a failed certificate costs no
        second build: the caller's exact solver uses it. After both fail, the next scans go
        straight to the exact solver, retrying every 16 bars. +inf tells the caller to use the
        exact solver (counted).
        """
        cfg = self.cfg
        c = self.counters
        gram: np.ndarray | None = None
        if win.fail_streak and bar % 16:
            if not use_p:
                gram = self._gram(win, a, b, rows, n_eff, has_missing)
            return math.nan, math.inf, 0, gram
        shift_ok = cfg.shift_certificate
        shift_fast = shift_ok and win.shift_mode and bar % 64 != 0
        p_frob = win.has_p and not has_missing
        prev = win.history[(bar - 1) % win.history.size]
        frob = math.inf
        if not shift_fast and not (math.isfinite(prev) and prev > 0.55 * n_eff):
            if p_frob:
                frob = K.frobenius_sq_cross(win.p, win.mu, win.d, float(rows))
            else:
                gram = self._gram(win, a, b, rows, n_eff, has_missing)
                frob = K.frobenius_sq_gram(gram)
        conv_tol = 0.2 * cfg.shift_tol_rel if shift_fast else 0.0
        if shift_fast:
            frob = -1.0  # shift mode: Lanczos only converges; the Cholesky proof follows
        # products from the cross-product when it is kept and cheaper than the window (see _P_PRODUCT_MIN_W_FRAC)
        lz_p = use_p or (p_frob and _P_PRODUCT_MIN_W_FRAC * n_eff <= rows)
        steps = 0
        for _attempt in range(1 if shift_fast else 2):
            out = win.spare
            lam, bound, eta, k = K.lanczos_top(
                self._ret, self._valid, a, b, win.mu, win.d, has_missing, win.vec, self._jitter, win.p, lz_p,
                frob, cfg.lanczos_tol_rel, cfg.lanczos_max_steps, out, max(0, win.last_steps - 3), self._q_work,
                conv_tol,
            )
            steps += k
            win.last_steps = k
            win.vec, win.spare = out, win.vec
            if math.isfinite(bound) or math.isfinite(frob) or shift_fast:
                break  # (frob = -1 in shift mode is finite too)
            # the trace rule alone did not certify: add the Frobenius rule and continue from the Ritz vector
            c.count("frobenius_retries")
            if p_frob:
                frob = K.frobenius_sq_cross(win.p, win.mu, win.d, float(rows))
            else:
                gram = self._gram(win, a, b, rows, n_eff, has_missing)
                frob = K.frobenius_sq_gram(gram)
        c.lanczos_steps += steps
        if eta > 0.0:
            win.gap = eta
        if math.isfinite(bound):
            win.fail_streak = 0
            win.shift_mode = False
        elif shift_ok and math.isfinite(lam) and lam > 0.0:
            if gram is None and self._cross_is_cheaper(win, rows, n_eff, has_missing):
                idx = np.flatnonzero(win.eligible)
                sb = K.shift_certificate_cross(
                    win.p, win.mu, win.d, idx, float(rows), lam, cfg.shift_tol_rel, out=self._mat(win, idx.size)
                )
            else:
                if gram is None:
                    gram = self._gram(win, a, b, rows, n_eff, has_missing)
                sb = K.shift_certificate(gram, lam, cfg.shift_tol_rel)
            if sb <= cfg.shift_tol_rel * lam:
                c.count("shift_certified")
                win.fail_streak = 0
                win.shift_mode = True
                bound = sb
            else:
                c.count("shift_failed")
        return lam, bound, steps, gram

    def _mat(self, win: _Window, m: int) -> np.ndarray:
        """An m x m C-contiguous workspace of the window, reused across bars (no page faults per scan)."""
        if win.mat.size < m * m:
            win.mat = np.empty(self.n_assets * self.n_assets)
        return win.mat[: m * m].reshape(m, m)

    def _corr_lower(self, win: _Window, rows: int) -> np.ndarray:
        """C on the eligible assets from the cross-product, lower triangle only (what eigvalsh reads)."""
        idx = np.flatnonzero(win.eligible)
        return K.corr_from_cross(win.p, win.mu, win.d, idx, float(rows), out=self._mat(win, idx.size), lower_only=True)

    @staticmethod
    def _cross_is_cheaper(win: _Window, rows: int, n_eff: int, has_missing: bool) -> bool:
        """Whether sigma I - C from the maintained cross-product is cheaper than the Gram form.

        Cost model (multiply-adds): C from the cross-product costs N^2 to form and N^3 / 6 to
        factor; the W x W Gram matrix W^2 N to form and W^3 / 6 to factor.
        """
        if not win.has_p or has_missing:
            return False
        return rows >= n_eff or rows * rows * n_eff + rows**3 / 6 > n_eff**3 / 6

    def _gram(self, win: _Window, a: int, b: int, rows: int, n_eff: int, has_missing: bool) -> np.ndarray:
        """Z Z^T (W < N_eff) or Z^T Z: the smaller Gram form of C (same nonzero spectrum)."""
        idx = np.flatnonzero(win.eligible)
        z = K.build_z(self._ret, self._valid, a, b, win.mu, win.d, idx, has_missing)
        return z @ z.T if rows < n_eff else z.T @ z

    def _scan_window(self, win: _Window, bar: int) -> WindowFeatures:
        cfg = self.cfg
        c = self.counters
        self._flush_cross(win)
        w = win.w
        a, b = self._bounds(w)
        rows = b - a
        min_count = max(2.0, math.ceil(cfg.min_coverage * w - 1e-9))
        n_eff, n_low, n_zero, changed, has_missing = K.standardise_into(
            win.n, win.s, win.q, win.cs, win.cq, float(min_count), cfg.min_return_var, win.mu, win.d, win.eligible,
            win.prev_eligible, float(rows),
        )
        win.n_eff = n_eff
        ready = rows >= w and n_eff >= 2
        if rows >= w:
            c.low_coverage_exclusions += n_low
            c.zero_variance_exclusions += n_zero
            if changed:
                if win.initialised:
                    c.universe_changes += changed
                    win.last_change_bar = bar
                    log.info("window %d bar %d: eligible set changed for %d assets (now %d)", w, bar, changed, n_eff)
                win.prev_eligible[:] = win.eligible
            win.initialised = True
        nan = math.nan
        slot = bar % win.history.size
        if not ready:
            win.history[slot] = nan
            return WindowFeatures(
                window=w, ready=False, lambda_max=nan, entropy=nan, absorption=nan, mp_edge=nan, velocity=nan,
                n_assets=n_eff, n_low_coverage=n_low, n_zero_variance=n_zero, n_missing_returns=win.missing,
                shrinkage=0.0, error_bound=nan, lanczos_steps=0, exact=False,
            )
        alpha = cfg.singular_shrinkage if n_eff >= w else 0.0
        if alpha > 0.0:
            c.singular_shrinks += 1
        use_p = win.mv_p and not has_missing
        entropy = absorption = nan
        steps = 0
        if cfg.full_spectrum:
            n_zero_eigs = 0  # exact zeros the Gram route leaves out (not the zero-variance count)
            if use_p:
                mat = self._corr_lower(win, rows)
            else:
                idx = np.flatnonzero(win.eligible)
                z = K.build_z(self._ret, self._valid, a, b, win.mu, win.d, idx, has_missing)
                if rows < n_eff:  # Gram route: same nonzero spectrum, the other n_eff - W are zero
                    mat = K.gram_lower(z, outer=True)
                    n_zero_eigs = n_eff - rows
                else:
                    mat = K.gram_lower(z, outer=False)
            # the previous bar's spectrum of the same window warm-starts the tridiagonal solver;
            # after a warm attempt that did not converge, the next 16 bars go straight to LAPACK
            usable = win.spec.size == mat.shape[0] and bar >= win.warm_retry_bar
            eigs, how = K.sym_eigvalsh(mat, win.spec if usable else None)
            win.spec = eigs
            c.count(f"spectrum_{how}")
            if how == "fallback":
                win.warm_retry_bar = bar + 16
                log.info("window %d bar %d: warm spectrum solver did not converge; LAPACK for 16 bars", w, bar)
            lam = float(eigs[-1])
            bound = 0.0
            exact = True
            entropy, absorption = K.spectrum_features(eigs, n_zero_eigs, alpha, n_eff, cfg.absorption_frac)
        else:
            lam, bound, steps, gram = self._certified_lambda(win, a, b, rows, n_eff, has_missing, use_p, bar)
            exact = False
            every = cfg.exact_check_every_bars
            check = every > 0 and (bar + win.offset * every // len(self._win)) % every == 0
            if not math.isfinite(bound) or check:
                if check:
                    # re-anchor first: the exact reference uses sums recomputed from the buffer, so
                    # drift in the sliding sums is caught as well as a wrong Lanczos answer
                    self._resum_window(win, a, b)
                    n_eff, n_low, n_zero, changed, has_missing = K.standardise_into(
                        win.n, win.s, win.q, win.cs, win.cq, float(min_count), cfg.min_return_var, win.mu, win.d, win.eligible,
                        win.prev_eligible, float(rows),
                    )
                    if changed:  # the exact sums disagree with the sliding ones on who is eligible
                        c.universe_changes += changed
                        win.last_change_bar = bar  # lambda_max's velocity spans two asset sets: VETO
                        log.info("window %d bar %d: eligible set changed for %d assets on the exact re-anchor "
                                 "(now %d)", w, bar, changed, n_eff)  # fmt: skip
                    win.prev_eligible[:] = win.eligible
                    alpha = cfg.singular_shrinkage if n_eff >= w else 0.0
                if check:
                    eigs = K.exact_spectrum(self._ret[a:b], self._valid[a:b], win.mu, win.d, win.eligible)
                elif gram is not None:  # the Gram matrix built for ||C||_F^2: same nonzero spectrum as C
                    eigs = np.linalg.eigvalsh(gram)
                elif use_p:
                    eigs = np.linalg.eigvalsh(self._corr_lower(win, rows), UPLO="L")
                else:
                    eigs = K.exact_spectrum(self._ret[a:b], self._valid[a:b], win.mu, win.d, win.eligible)
                lam_exact = float(eigs[-1]) if eigs.size else 0.0
                if check and math.isfinite(bound):
                    c.exact_checks += 1
                    if abs(lam - lam_exact) > _DRIFT_TOL_REL * abs(lam_exact):
                        c.drift_violations += 1
                        log.warning(
                            "window %d bar %d: drift %.3g relative; re-anchored to exact", w, bar,
                            abs(lam - lam_exact) / lam_exact,
                        )
                        win.vec = np.ones(self.n_assets)
                else:
                    c.lanczos_fallbacks += 1
                    win.fail_streak += 1
                    if steps:
                        log.info("window %d bar %d: no certificate in %d Lanczos steps; exact solver", w, bar, steps)
                    else:
                        c.count("exact_direct")  # straight to the exact solver after a recent failure
                lam, bound, exact = lam_exact, 0.0, True
            bound = bound / lam if lam > 0 else bound
        lam_s = (1.0 - alpha) * lam + alpha
        prev = win.history[(bar - cfg.velocity_lag_bars) % win.history.size]
        velocity = float((lam_s - prev) / prev) if math.isfinite(prev) and prev > 0 else nan
        win.history[slot] = lam_s
        return WindowFeatures(
            window=w, ready=True, lambda_max=lam_s, entropy=entropy, absorption=absorption,
            mp_edge=K.mp_edge(n_eff, rows), velocity=velocity, n_assets=n_eff, n_low_coverage=n_low,
            n_zero_variance=n_zero, n_missing_returns=win.missing, shrinkage=alpha, error_bound=float(bound),
            lanczos_steps=int(steps), exact=exact,
        )


def scan_matrix(
    ts_ns: np.ndarray, closes: np.ndarray, mask: np.ndarray, config: ScanConfig | None = None
) -> Iterator[ScanRecord]:
    """Stream scan records over an aligned T x N bar matrix (replay: each bar is its own clock)."""
    sonar = Sonar(closes.shape[1], config)
    for t in range(closes.shape[0]):
        yield sonar.update(int(ts_ns[t]), closes[t], mask[t])
