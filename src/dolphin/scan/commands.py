"""`dolphin scan`: run Sonar over a bar set, write the features to Parquet and a PNG plot."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable

from dolphin.core.config import DolphinConfig
from dolphin.core.paths import repo_root

from dolphin.scan.source import AlignedBars, BarSource, CsvDirSource, find_bar_dirs

__all__ = ["register", "run_scan", "SOURCE_FACTORY"]

log = logging.getLogger(__name__)


def csv_source(cfg: DolphinConfig, args: argparse.Namespace) -> BarSource:
    """TEMPORARY: the shared-CSV adapter; replace with the catalog's aligned matrices at merge."""
    root = Path(args.input) if args.input else repo_root() / cfg.data.sample_dir
    if not root.is_dir():
        raise FileNotFoundError(f"bar folder not found: {root}")
    dirs = find_bar_dirs(root)
    if args.dataset:
        dirs = [d for d in dirs if d.name == args.dataset]
    if not dirs:
        raise FileNotFoundError(f"no *.csv.gz bar files under {root}" + (f" for dataset {args.dataset}" if args.dataset else ""))
    if len(dirs) > 1:
        log.warning("several bar folders under %s; scanning %s (choose with --dataset)", root, dirs[0].name)
    return CsvDirSource(dirs[0])


# The data source is a swappable function: (config, args) -> BarSource.
SOURCE_FACTORY: Callable[[DolphinConfig, argparse.Namespace], BarSource] = csv_source


def run_scan(cfg: DolphinConfig, bars: AlignedBars, out_dir: Path, *, limit: int | None = None,
             signal_only: bool = False, progress: bool = True) -> tuple[Path, Path]:
    import msgspec
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import pyarrow.parquet as pq

    from dolphin.scan.plot import plot_scan
    from dolphin.scan.sonar import Sonar
    from dolphin.scan.stream import ParquetSink

    scfg = cfg.scan
    if signal_only:
        scfg = msgspec.structs.replace(scfg, full_spectrum=False)
    t_len = bars.closes.shape[0] if limit is None else min(limit, bars.closes.shape[0])
    sonar = Sonar(bars.closes.shape[1], scfg)
    name = bars.name or "bars"
    sink = ParquetSink(out_dir / f"scan_{name}.parquet")
    try:
        with Progress(TextColumn("scan {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), disable=not progress) as bar:
            task = bar.add_task(name, total=t_len)
            for t in range(t_len):
                sink.publish(sonar.update(int(bars.ts_ms[t]) * 1_000_000, bars.closes[t], bars.mask[t]))
                if t % 64 == 0 or t == t_len - 1:
                    bar.update(task, completed=t + 1)
    finally:
        sink.close()
    pq_path = sink.path
    png_path = plot_scan(pq.read_table(pq_path), sorted(scfg.windows), out_dir / f"scan_{name}.png",
                         title=f"{name}: {bars.closes.shape[1]} assets, {t_len} bars")
    c = sonar.counters
    print(f"scanned {t_len} bars x {bars.closes.shape[1]} assets: ATTACK {c.attacks}, VETO {c.vetoes}")
    print(f"data quality: missing bars {c.missing_bars}, bad prices {c.bad_prices}, universe changes "
          f"{c.universe_changes}, low-coverage exclusions {c.low_coverage_exclusions}, zero-variance exclusions "
          f"{c.zero_variance_exclusions}, singular shrinks {c.singular_shrinks}, Lanczos fallbacks "
          f"{c.lanczos_fallbacks}, drift violations {c.drift_violations}")
    print(f"wrote {pq_path}\nwrote {png_path}")
    return pq_path, png_path


def _main(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    try:
        bars = SOURCE_FACTORY(cfg, args).load()
    except FileNotFoundError as exc:
        print(f"dolphin scan: {exc}")
        return 2
    run_scan(cfg, bars, Path(args.out), limit=args.limit, signal_only=args.signal_only, progress=not args.no_progress)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="Sonar regime scan over a bar set: features to Parquet + PNG plot")
    p.add_argument("--input", default=None, help="folder with per-symbol *.csv.gz bars (default: data.sample_dir)")
    p.add_argument("--dataset", default=None, help="sub-folder name to scan when --input holds several")
    p.add_argument("--out", default="var/scan", help="output folder (default: var/scan)")
    p.add_argument("--limit", type=int, default=None, help="scan only the first N bars")
    p.add_argument("--signal-only", action="store_true", help="lambda_max/velocities only (no entropy)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)
