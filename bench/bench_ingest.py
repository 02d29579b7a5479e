"""Ingest throughput vs a plain pandas.read_csv + to_parquet baseline, and aligned-matrix build
time for 50 and 400 assets. Real data from ../shared/data (see the notes in the output).

    python bench/bench_ingest.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, time_calls, write_results  # noqa: E402

from dolphin.core.paths import shared_data_dir  # noqa: E402
from dolphin.data.align import align_bars  # noqa: E402
from dolphin.data.catalog import Catalog  # noqa: E402
from dolphin.data.ingest import ingest_file  # noqa: E402


def baseline(files: list[Path], out: Path) -> int:
    rows = 0
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        df = pd.read_csv(f)
        df.to_parquet(out / (f.name.split(".")[0] + ".parquet"), compression="zstd")
        rows += len(df)
    return rows


def ours(files: list[Path], root: Path) -> int:
    cat = Catalog(root / "catalog")
    rows = 0
    for f in files:
        rep = ingest_file(cat, f, quarantine_dir=root / "q")
        if rep.error:
            raise SystemExit(rep.error)
        rows += rep.rows_written
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = shared_data_dir()
    spot = sorted((data / "binance_spot_1m_2021-04").glob("*.csv.gz"))
    perp = sorted((data / "binance_usdm_1m_2023-07").glob("*.csv.gz")) + sorted(
        (data / "binance_usdm_5m_2023-07").glob("*.csv.gz")
    )
    files = spot + perp
    tmp = Path(tempfile.mkdtemp(prefix="dolphin-bench-"))
    base_rates, our_rates = [], []
    n_rows = 0
    try:
        for i in range(args.repeat):  # interleaved: baseline, then ours, each on a fresh folder
            t0 = time.perf_counter()
            n_base = baseline(files, tmp / f"b{i}")
            base_rates.append(n_base / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            n_rows = ours(files, tmp / f"o{i}")
            our_rates.append(n_rows / (time.perf_counter() - t0))
            assert n_rows == n_base, (n_rows, n_base)
            print(f"run {i}: pandas {base_rates[-1]:,.0f} rows/s, dolphin {our_rates[-1]:,.0f} rows/s")

        # Aligned matrices: 50 real spot assets; 400 = the 50 real assets stored 8 times under
        # distinct names (replication stated in the output; no value is altered).
        cat = Catalog(tmp / "o0" / "catalog")
        syms = cat.symbols("bars_1m", "BINANCE_SPOT")
        assert len(syms) == 50, len(syms)
        for k in range(1, 8):
            for s in syms:
                src = cat.root / "bars_1m" / "BINANCE_SPOT" / s
                shutil.copytree(src, cat.root / "bars_1m" / "BINANCE_SPOT" / f"{s}R{k}")
        all_syms = cat.symbols("bars_1m", "BINANCE_SPOT")
        start = int(np.datetime64("2021-04-02").astype("datetime64[ns]").astype(np.int64))
        day = 86_400 * 10**9
        align_figs = []
        for n_assets in (50, 400):
            chosen = syms if n_assets == 50 else all_syms[:400]
            for span_days, bar in ((1, "1m"), (10, "1m"), (10, "5m")):
                t = time_calls(lambda: align_bars(cat, "BINANCE_SPOT", chosen, start, start + span_days * day, bar),
                               repeat=max(3, args.repeat), warmup=1)  # fmt: skip
                b = align_bars(cat, "BINANCE_SPOT", chosen, start, start + span_days * day, bar)
                med, p99 = float(np.median(t)) * 1e3, float(np.percentile(t, 99)) * 1e3
                print(f"align {n_assets} assets x {b.shape[1]} bars ({span_days}d {bar}): median {med:.1f} ms, p99 {p99:.1f} ms")
                align_figs.append(figure(f"align_median_ms_n{n_assets}_{span_days}d_{bar}", med, "ms",
                                         note=f"{n_assets} x {b.shape[1]} matrix from the Parquet catalog"))  # fmt: skip
                align_figs.append(figure(f"align_p99_ms_n{n_assets}_{span_days}d_{bar}", p99, "ms"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    b_med, o_med = float(np.median(base_rates)), float(np.median(our_rates))
    figures = [
        figure("ingest_rows_per_s", o_med, "rows/s", baseline_name="pandas.read_csv + to_parquet",
               baseline_value=b_med, ratio=o_med / b_med,
               note="dolphin parses, validates every row (13 rules), writes decimal128 day partitions and "
                    "quarantine; the baseline only parses floats and writes one file"),
        figure("ingest_rows_per_s_min", float(np.min(our_rates)), "rows/s"),
    ] + align_figs  # fmt: skip
    notes = [
        f"ingest: {len(files)} real files ({len(spot)} spot 1m 2021 + {len(perp)} USDT-M 1m/5m 2023), "
        f"{n_rows:,} rows, {args.repeat} interleaved runs, medians",
        "align n400: the 50 real spot assets stored 8 times under distinct names (replicated, values unchanged)",
    ]
    print(write_results("ingest", figures, notes=notes))


if __name__ == "__main__":
    main()
