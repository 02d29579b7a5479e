"""Benchmark: Sonar per-scan cost vs the naive baseline (np.corrcoef + eigvalsh for every window).

Unit of timing: one new bar in, all windows (50/150/300/750) updated, features out.
Data: real Binance spot 1-minute closes (../shared/data/binance_spot_1m_2021-04, 50 assets).
Where N exceeds the 50 real assets, the universe is resampled in blocks: block k holds the same
50 real assets taken k days later (offset k * 1440 bars), so every column is a real return
series and each block is a real synchronous cross-section (blocks are from different days, so
the N = 400 matrix has ~8 comparable market modes: a harder case for an iterative solver than a
real 400-asset market with one dominant mode).

One core: BLAS is limited to one thread (threadpoolctl) for the baseline and for Sonar.
Baseline, signal path and full scan run interleaved on every bar of the same data.
Each call is timed twice: wall clock (perf_counter_ns) and the calling thread's CPU time
(thread_time_ns). The 2-core machine is shared by parallel jobs, so wall time includes
waiting for the CPU; thread CPU time is the cost on one core. Goals are evaluated on both.

Run: PYTHONPATH=src python bench/bench_scan.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, write_results  # noqa: E402

from dolphin.core.paths import shared_data_dir  # noqa: E402
from dolphin.scan import kernels as K  # noqa: E402
from dolphin.scan.config import ScanConfig  # noqa: E402
from dolphin.scan.sonar import Sonar  # noqa: E402
from dolphin.data.sample import catalog_of  # noqa: E402
from dolphin.scan.source import CatalogSource  # noqa: E402

WINDOWS = (50, 150, 300, 750)
DAY_BARS = 1440


def _spot_bars():
    """The 50 real spot assets at 1 minute, through the catalog (ingested once into a cache)."""
    import tempfile

    cat = catalog_of(shared_data_dir() / "binance_spot_1m_2021-04", Path(tempfile.gettempdir()) / "dolphin-bench-catalogs")
    return CatalogSource(cat, "BINANCE_SPOT", "1m").load()


def universe(n: int, t_len: int, mode: str = "blocks") -> tuple[np.ndarray, np.ndarray, str]:
    bars = _spot_bars()
    base = bars.closes.shape[1]
    if mode == "columns" and n > base:
        # supplementary: the N columns drawn from the 50 real assets at the same time, with
        # replacement (duplicates are exactly correlated; one dominant market mode, rank <= 50)
        pick = np.random.default_rng(7).integers(0, base, n)
        pick[:base] = np.arange(base)
        closes = bars.closes[:t_len, pick]
        return closes, np.isfinite(closes), f"N={n}: {base} real assets resampled as columns with replacement"
    blocks = -(-n // base)
    if (blocks - 1) * DAY_BARS + t_len > bars.closes.shape[0]:
        raise SystemExit(f"not enough bars for N={n}, T={t_len}")
    cols = []
    for k in range(blocks):
        cols.append(bars.closes[k * DAY_BARS : k * DAY_BARS + t_len])
    closes = np.concatenate(cols, axis=1)[:, :n]
    mask = np.isfinite(closes)
    note = (
        f"N={n}: {base} real assets" if blocks == 1 else
        f"N={n}: {blocks} blocks of the {base} real assets, block k offset by k days ({DAY_BARS} bars)"
    )
    return closes, mask, note


def naive_scan(ret: np.ndarray, end: int) -> list[np.ndarray]:
    """The baseline: for every window, np.corrcoef of the window's returns and eigvalsh."""
    return [np.linalg.eigvalsh(np.corrcoef(ret[end - w : end].T)) for w in WINDOWS]


def _warmed(n: int, t_len: int, mode: str = "blocks"):
    """The universe's closes, mask, note, returns and bar times, and a signal-path and a
    full-spectrum scanner fed the first max(W) + 2 bars (so every window is full)."""
    warm = max(WINDOWS) + 2
    closes, mask, note = universe(n, t_len, mode)
    ret, _ = K.log_returns(closes, mask)
    ts = (np.arange(t_len, dtype=np.int64) + 1) * 60_000_000_000
    sig = Sonar(n, ScanConfig(full_spectrum=False))
    full = Sonar(n, ScanConfig(full_spectrum=True))
    for t in range(warm):
        sig.update(int(ts[t]), closes[t], mask[t])
        full.update(int(ts[t]), closes[t], mask[t])
    return closes, mask, note, ret, ts, sig, full


def run(n: int, measured: int, mode: str = "blocks") -> dict:
    warm = max(WINDOWS) + 2
    t_len = warm + measured
    closes, mask, note, ret, ts, sig, full = _warmed(n, t_len, mode)
    tb = np.empty(measured)
    tsig = np.empty(measured)
    tfull = np.empty(measured)
    cb = np.empty(measured)
    csig = np.empty(measured)
    cfull = np.empty(measured)
    clk = time.thread_time_ns
    max_err = 0.0
    max_err_full = 0.0
    fb0 = sig.counters.lanczos_fallbacks
    sh0 = sig.counters.events.get("shift_certified", 0)
    for i in range(measured):
        t = warm + i
        c0, t0 = clk(), time.perf_counter_ns()
        ref = naive_scan(ret, t + 1)
        c1, t1 = clk(), time.perf_counter_ns()
        rs = sig.update(int(ts[t]), closes[t], mask[t])
        c2, t2 = clk(), time.perf_counter_ns()
        rf = full.update(int(ts[t]), closes[t], mask[t])
        c3, t3 = clk(), time.perf_counter_ns()
        tb[i], tsig[i], tfull[i] = (t1 - t0) * 1e-6, (t2 - t1) * 1e-6, (t3 - t2) * 1e-6
        cb[i], csig[i], cfull[i] = (c1 - c0) * 1e-6, (c2 - c1) * 1e-6, (c3 - c2) * 1e-6
        for k, w in enumerate(WINDOWS):
            lam_ref = ref[k][-1]
            alpha = rs.windows[k].shrinkage
            lam_s = (1 - alpha) * lam_ref + alpha
            max_err = max(max_err, abs(rs.windows[k].lambda_max - lam_s) / lam_s)
            max_err_full = max(max_err_full, abs(rf.windows[k].lambda_max - lam_s) / lam_s)
    exact_frac = (sig.counters.lanczos_fallbacks - fb0) / (measured * len(WINDOWS))
    shift_frac = (sig.counters.events.get("shift_certified", 0) - sh0) / (measured * len(WINDOWS))
    # memory: state held by a scanner, and peak temporary allocation of one scan
    state_bytes = sum(a.nbytes for a in (sig._ret, sig._valid)) + sum(
        sum(x.nbytes for x in (win.n, win.s, win.q, win.cs, win.cq, win.mass, win.mu, win.d, win.vec, win.spare, win.p))
        for win in sig._win.values()
    )
    tracemalloc.start()
    t = t_len - 1
    sig.update(int(ts[t]) + 60_000_000_000, closes[t], mask[t])
    _, peak_sig = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    full.update(int(ts[t]) + 60_000_000_000, closes[t], mask[t])
    _, peak_full = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    c = sig.counters
    return {
        "n": n, "note": note, "base": tb, "sig": tsig, "full": tfull, "max_err": max_err,
        "base_cpu": cb, "sig_cpu": csig, "full_cpu": cfull,
        "max_err_full": max_err_full, "state_mb": state_bytes / 1e6, "peak_sig_mb": peak_sig / 1e6,
        "peak_full_mb": peak_full / 1e6, "fallbacks": c.lanczos_fallbacks, "drift": c.drift_violations,
        "steps_per_window": c.lanczos_steps / max(1, c.bars * len(WINDOWS)),
        "exact_frac": exact_frac,
        "shift_frac": shift_frac,
    }


def standalone(n: int, measured: int, block: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thread-CPU ms per scan of the baseline, the signal scanner and the full scanner, each alone
    (as the scanner runs on its pinned hot-path core: no other code between its scans evicting
    its caches), in alternating blocks of ``block`` bars: baseline block, signal block, full block,
    then the next ``block`` bars. All three see the same bars in the same order, and a slow or
    fast spell of the shared machine falls on all three alike (one loop after the other would
    give each its own machine). The first scan of each block follows the other scanners' blocks
    (cold caches) and is not counted: ``measured`` counted scans each."""
    per = block - 1
    blocks = -(-measured // per)
    warm = max(WINDOWS) + 2
    closes, mask, _, ret, ts, sig, full = _warmed(n, warm + blocks * block)
    out = {"base": [], "sig": [], "full": []}
    clk = time.thread_time_ns
    for k in range(blocks):
        lo = warm + k * block
        for name, step in (
            ("base", lambda t: naive_scan(ret, t + 1)),
            ("sig", lambda t: sig.update(int(ts[t]), closes[t], mask[t])),
            ("full", lambda t: full.update(int(ts[t]), closes[t], mask[t])),
        ):
            dest = out[name]
            for t in range(lo, lo + block):
                c0 = clk()
                step(t)
                dt = (clk() - c0) * 1e-6
                if t > lo:
                    dest.append(dt)
    return tuple(np.array(out[name][:measured]) for name in ("base", "sig", "full"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer measured scans")
    args = ap.parse_args()
    sizes = (50, 100, 200, 400)
    measured = {50: 600, 100: 500, 200: 400, 400: 300}
    if args.quick:
        measured = {k: 60 for k in measured}
    figures: list[dict] = []
    notes: list[str] = [
        "unit: one new bar in, windows 50/150/300/750 updated, features out; one BLAS thread",
        "baseline: np.corrcoef + np.linalg.eigvalsh for every window on every scan",
        "signal path: lambda_max (warm-started Lanczos, certified by trace/Frobenius/secular bounds or by one"
        " Cholesky of sigma I - C (shift certificate), else exact), velocities,"
        " vel_div, regime",
        "full scan: exact spectrum per window (Gram route when W < N) -> lambda_max, entropy, absorption",
    ]
    results = {}
    load_start = os.getloadavg()[0]
    with threadpool_limits(1):
        # compile numba kernels outside the timed region
        run(50, 5)
        for n in sizes:
            r = run(n, measured[n])
            results[n] = r
            b, s, f = (np.median(r[k]) for k in ("base", "sig", "full"))
            bc, sc, fc = (np.median(r[k]) for k in ("base_cpu", "sig_cpu", "full_cpu"))
            print(f"         cpu: baseline {bc:7.3f} ms | signal {sc:6.3f} ms {bc / sc:6.1f}x | full {fc:6.3f} ms"
                  f" {bc / fc:5.2f}x")
            print(
                f"N={n:4d} baseline {b:7.3f} ms | signal {s:6.3f} ms (p99 {np.percentile(r['sig'], 99):6.3f}) "
                f"{b / s:6.1f}x | full {f:6.3f} ms (p99 {np.percentile(r['full'], 99):6.3f}) {b / f:5.2f}x | "
                f"err {r['max_err']:.2e} | steps/window {r['steps_per_window']:.2f} | fallbacks {r['fallbacks']}"
                f" | exact {r['exact_frac']:.3f}"
            )
            notes.append(r["note"])
    for n in sizes:
        r = results[n]
        big = n == 400
        for clock, suffix in (("", "wall"), ("_cpu", "cpu")):
            b = float(np.median(r["base" + clock]))
            s = float(np.median(r["sig" + clock]))
            f = float(np.median(r["full" + clock]))
            figures += [
                figure(f"baseline_median_ms_n{n}_{suffix}", b, "ms",
                       note=f"p99 {np.percentile(r['base' + clock], 99):.3f} ms"),
                figure(
                    f"signal_median_ms_n{n}_{suffix}", s, "ms", baseline_name="naive corrcoef+eigvalsh",
                    baseline_value=b, ratio=b / s, goal=1.0 if big else None, goal_op="<=" if big else None,
                ),
                figure(f"signal_p99_ms_n{n}_{suffix}", float(np.percentile(r["sig" + clock], 99)), "ms"),
                figure(
                    f"full_median_ms_n{n}_{suffix}", f, "ms", baseline_name="naive corrcoef+eigvalsh",
                    baseline_value=b, ratio=b / f, goal=8.0 if big else None, goal_op="<=" if big else None,
                ),
                figure(f"full_p99_ms_n{n}_{suffix}", float(np.percentile(r["full" + clock], 99)), "ms"),
            ]
            if big:
                figures += [
                    figure(f"signal_speedup_n400_{suffix}", b / s, "x", goal=20.0, goal_op=">="),
                    figure(f"full_speedup_n400_{suffix}", b / f, "x", goal=2.5, goal_op=">="),
                ]
        figures += [
            figure(
                f"signal_lambda_max_rel_err_n{n}", r["max_err"], "rel", goal=1e-9, goal_op="<=",
                note="max over all measured scans and windows vs eigvalsh(np.corrcoef(window))",
            ),
            figure(f"full_lambda_max_rel_err_n{n}", r["max_err_full"], "rel", goal=1e-9, goal_op="<="),
            figure(f"signal_lanczos_steps_per_window_n{n}", r["steps_per_window"], "steps",
                   note=f"exact fallbacks {r['fallbacks']}, drift violations {r['drift']}"),
            figure(f"signal_exact_scan_frac_n{n}", r["exact_frac"], "frac",
                   note="share of measured (window, scan) pairs whose lambda_max came from the exact solver"
                        " because no rigorous certificate held"),
            figure(f"signal_shift_cert_frac_n{n}", r["shift_frac"], "frac",
                   note="share of measured (window, scan) pairs certified by the shift certificate (one Cholesky)"),
            figure(f"state_mb_n{n}", r["state_mb"], "MB", note="return/mask buffers + per-window vectors"),
            figure(f"peak_alloc_signal_mb_n{n}", r["peak_sig_mb"], "MB", note="tracemalloc peak of one scan"),
            figure(f"peak_alloc_full_mb_n{n}", r["peak_full_mb"], "MB", note="tracemalloc peak of one scan"),
        ]
    # standalone: each scanner alone (no baseline between its scans evicting its caches)
    with threadpool_limits(1):
        alone_base, alone_sig, alone_full = standalone(400, measured[400])
    b400 = float(np.median(alone_base))
    sa, fa = float(np.median(alone_sig)), float(np.median(alone_full))
    print(f"N= 400 standalone cpu: baseline {b400:7.3f} ms | signal {sa:6.3f} ms (p99 {np.percentile(alone_sig, 99):6.3f})"
          f" {b400 / sa:6.1f}x | full {fa:6.3f} ms (p99 {np.percentile(alone_full, 99):6.3f}) {b400 / fa:5.2f}x")
    notes.append("standalone figures: each of baseline, signal scanner and full scanner alone (as the scanner"
                 " runs on its pinned hot-path core), in alternating blocks of 25 bars (the first scan of each"
                 " block, after the others' blocks, not counted), so that the shared machine's slow and fast"
                 " spells fall on all three alike; the interleaved figures run the three alternately on every"
                 " bar, which evicts each one's caches")
    figures += [
        figure("baseline_median_ms_n400_cpu_standalone", b400, "ms",
               note=f"p99 {np.percentile(alone_base, 99):.3f} ms"),
        figure("signal_median_ms_n400_cpu_standalone", sa, "ms", baseline_name="naive corrcoef+eigvalsh (standalone)",
               baseline_value=b400, ratio=b400 / sa, goal=1.0, goal_op="<="),
        figure("signal_speedup_n400_cpu_standalone", b400 / sa, "x", goal=20.0, goal_op=">="),
        figure("signal_p99_ms_n400_cpu_standalone", float(np.percentile(alone_sig, 99)), "ms"),
        figure("full_median_ms_n400_cpu_standalone", fa, "ms", baseline_name="naive corrcoef+eigvalsh (standalone)",
               baseline_value=b400, ratio=b400 / fa, goal=8.0, goal_op="<="),
        figure("full_speedup_n400_cpu_standalone", b400 / fa, "x", goal=2.5, goal_op=">="),
        figure("full_p99_ms_n400_cpu_standalone", float(np.percentile(alone_full, 99)), "ms"),
    ]
    # supplementary: N = 400 with a single dominant market mode (columns resampled at the same time)
    with threadpool_limits(1):
        r = run(400, measured[400], "columns")
    b, s_, f = (float(np.median(r[k])) for k in ("base_cpu", "sig_cpu", "full_cpu"))
    print(f"N= 400 (columns) baseline {b:7.3f} ms | signal {s_:6.3f} ms {b / s_:6.1f}x | full {f:6.3f} ms {b / f:5.2f}x"
          f" | err {r['max_err']:.2e} | steps/window {r['steps_per_window']:.2f} | exact {r['exact_frac']:.3f}")
    notes.append("supplementary (not the goal figures): " + r["note"])
    figures += [
        figure("supp_columns_signal_median_ms_n400_cpu", s_, "ms", baseline_name="naive corrcoef+eigvalsh",
               baseline_value=b, ratio=b / s_, note=r["note"]),
        figure("supp_columns_full_median_ms_n400_cpu", f, "ms", baseline_name="naive corrcoef+eigvalsh",
               baseline_value=b, ratio=b / f, note=r["note"]),
        figure("supp_columns_signal_lambda_max_rel_err_n400", r["max_err"], "rel", goal=1e-9, goal_op="<="),
        figure("supp_columns_signal_p99_ms_n400_cpu", float(np.percentile(r["sig_cpu"], 99)), "ms"),
        figure("supp_columns_signal_exact_scan_frac_n400", r["exact_frac"], "frac"),
    ]
    # growth with N: log-log slope of the median between N=50 and N=400
    ns = np.array(sizes, dtype=float)
    for key, label in (("sig_cpu", "signal"), ("full_cpu", "full"), ("base_cpu", "baseline")):
        med = np.array([np.median(results[n][key]) for n in sizes])
        slope = float(np.polyfit(np.log(ns), np.log(med), 1)[0])
        figures.append(figure(f"{label}_cost_growth_exponent", slope, "d log t / d log N",
                              note="fit of median thread-CPU ms over N = 50..400"))
    notes.append(
        f"machine load average (1 min) at start {load_start:.2f}, at end {os.getloadavg()[0]:.2f} on"
        f" {os.cpu_count()} cores shared with other jobs: compare ratios and thread-CPU figures"
    )
    notes.append(
        "full-scan floor here: LAPACK's Householder reduction (dsytrd) of the 400x400 (W=750) and 300x300 Gram"
        " (W=300) matrices alone costs ~5-6.5 ms of thread-CPU time depending on the machine's spell, the Gram"
        " products ~1 ms; the eigenvalues of the tridiagonal forms are found warm (docs/decisions/0003)"
    )
    path = write_results("scan", figures, notes=notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
