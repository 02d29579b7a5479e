"""`dolphin scan`: run Sonar over a bar set, write the features to Parquet and a PNG plot."""

from __future__ import annotations

import argparse
import logging

import numpy as np
from pathlib import Path
from typing import Callable

from dolphin.core.config import DolphinConfig
from dolphin.core.paths import repo_root

from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError
from dolphin.scan.source import ScanBars, BarSource, CatalogSource

__all__ = ["register", "run_scan", "SOURCE_FACTORY"]

log = logging.getLogger(__name__)


def catalog_source(cfg: DolphinConfig, args: argparse.Namespace) -> BarSource:
    """Bars from the configured catalog (the shipped sample is ingested first when it is empty)."""
    root = Path(args.catalog or cfg.data.catalog_dir)
    if not root.is_absolute():
        root = repo_root() / root
    catalog = Catalog(root, row_group_size=cfg.data.row_group_size)
    if not catalog.datasets():
        # Only into an empty catalog: one that holds other data is the user's (review 2026-12-06: a
        # venue typo, or the default venue on a spot-only catalog, merged the whole sample into it).
        from dolphin.data.sample import ensure_sample

        log.warning("catalog %s is empty: ingesting the shipped sample first", root)
        qdir = Path(cfg.data.quarantine_dir)
        ensure_sample(catalog, qdir if qdir.is_absolute() else repo_root() / qdir)
    return CatalogSource(catalog, args.venue, args.bar, symbols=args.symbol, start_ns=_ns(args.start), end_ns=_ns(args.end))


_EARLIEST = np.datetime64("2009-01-01", "ns")  # before any crypto market data


def _ns(text: str | None) -> int | None:
    """An ISO-8601 UTC time (``2023-07-05``, ``2023-07-05T12:00``) -> ns. Refused: anything else,
    e.g. epoch seconds (numpy read ``1688428800`` as a year: 1715, then asked for 8.7 GiB), an empty
    string (NaT), a time before 2009 or more than a day ahead (review 2026-12-06)."""
    if text is None:
        return None
    bad = ValueError(f"bad time {text!r}: use ISO-8601 UTC such as 2023-07-05 or 2023-07-05T12:00")
    t = text.strip()
    if len(t) < 10 or t[4:5] != "-" or t[7:8] != "-":  # YYYY-MM-DD first (not a bare number)
        raise bad
    try:
        ts = np.datetime64(t, "ns")
    except ValueError:
        raise bad from None
    if np.isnat(ts) or not _EARLIEST <= ts <= np.datetime64("now", "ns") + np.timedelta64(1, "D"):
        raise ValueError(f"bad time {text!r}: outside 2009-01-01 .. tomorrow (UTC)")
    return int(ts.astype(np.int64))


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of bars, got {text}")
    return n


# The data source is a swappable function: (config, args) -> BarSource.
SOURCE_FACTORY: Callable[[DolphinConfig, argparse.Namespace], BarSource] = catalog_source


def run_scan(cfg: DolphinConfig, bars: ScanBars, out_dir: Path, *, limit: int | None = None,
             signal_only: bool = False, progress: bool = True, workers: int = 0) -> tuple[Path, Path]:
    """Scan every bar; with ``workers`` K > 0 the per-asset return computation runs in K worker
    processes that write to the state grid, and the scan reads the whole return row back from it."""
    import msgspec
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import pyarrow.parquet as pq

    from dolphin.scan.gate import check_records
    from dolphin.scan.plot import plot_scan
    from dolphin.scan.sonar import Sonar
    from dolphin.scan.stream import ParquetSink

    scfg = cfg.scan
    if signal_only:
        scfg = msgspec.structs.replace(scfg, full_spectrum=False)
    t_len = bars.closes.shape[0] if limit is None else min(limit, bars.closes.shape[0])
    if t_len < 1:  # nothing would be written, and an earlier run's file would be reported as this one's
        raise ValueError(f"nothing to scan: {bars.closes.shape[0]} bars" + ("" if limit is None else f", limit {limit}"))
    sonar = Sonar(bars.closes.shape[1], scfg)
    name = bars.name or "bars"
    sink = ParquetSink(out_dir / f"scan_{name}.parquet")
    import contextlib

    pool_cm = contextlib.nullcontext(None)
    returns_crc_failures = 0
    if workers > 0:
        from dolphin.grid.scaleout import scan_workers

        closes = np.where(bars.mask, bars.closes, np.nan)
        pool_cm = scan_workers(cfg.grid, list(bars.symbols), closes, workers=workers, window=1)
    try:
        with pool_cm as pool, Progress(TextColumn("scan {task.description}"), BarColumn(), MofNCompleteColumn(),
                                       TimeRemainingColumn(), disable=not progress) as bar:  # fmt: skip
            task = bar.add_task(name, total=t_len)
            for t in range(t_len):
                ts_ns = int(bars.ts_ms[t]) * 1_000_000
                returns = None
                extra: tuple = ()
                if pool is not None and t > 0:
                    step = pool.step(t, ts_ns)
                    returns = step.returns[-1]  # the whole return row, read from the grid
                    # The returns crossed a process boundary: each asset's record carries a CRC-32
                    # (failed ones are NaN in the row) and any failure vetoes this scan.
                    bad = step.checksum_failures
                    returns_crc_failures += len(bad)
                    extra = (check_records("returns.checksum", bad),)
                sink.publish(sonar.update(ts_ns, bars.closes[t], bars.mask[t], returns=returns, extra_inputs=extra))
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
    ev = dict(c.events)
    drift = ev.pop("resum_drift", 0)
    other = ", ".join(f"{k} {v}" for k, v in sorted(ev.items()))
    print(f"numerics: re-anchors {c.resums} ({drift} after a large return left a window), exact checks "
          f"{c.exact_checks}" + (f"; {other}" if other else ""))
    if workers > 0:
        print(f"scale-out: {workers} workers; feature records failing their checksum: {returns_crc_failures}")
    print(f"wrote {pq_path}\nwrote {png_path}")
    return pq_path, png_path


def _main(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    try:
        bars = SOURCE_FACTORY(cfg, args).load()
        if bars.closes.shape[0] < 1:
            raise ValueError("nothing to scan: the source holds no bars in the range")
    except (FileNotFoundError, ValueError, CatalogError) as exc:
        print(f"dolphin scan: {exc}")
        return 2
    run_scan(cfg, bars, Path(args.out), limit=args.limit, signal_only=args.signal_only, progress=not args.no_progress,
             workers=args.workers)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="Sonar regime scan over a bar set: features to Parquet + PNG plot")
    p.add_argument("--catalog", default=None, help="catalog folder (default: data.catalog_dir)")
    p.add_argument("--venue", default="BINANCE_USDM", help="venue (default: BINANCE_USDM)")
    p.add_argument("--bar", default="5m", help="bar size (default: 5m; finer stored bars are aggregated)")
    p.add_argument("--symbol", action="append", default=None, help="symbol (repeatable; default: all stored)")
    p.add_argument("--start", default=None, help="first bar, ISO-8601 UTC (default: start of the data)")
    p.add_argument("--end", default=None, help="end (exclusive), ISO-8601 UTC (default: end of the data)")
    p.add_argument("--out", default="var/scan", help="output folder (default: var/scan)")
    p.add_argument("--limit", type=_positive_int, default=None, help="scan only the first N bars (N >= 1)")
    p.add_argument("--signal-only", action="store_true", help="lambda_max/velocities only (no entropy)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, default=0,
                   help="K worker processes compute per-asset returns into the state grid (grid.backend; "
                        "the embedded default switches to shared memory); 0: in-process")
    p.set_defaults(func=_main)
