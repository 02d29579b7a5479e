"""`dolphin run`: the main job on the embedded default (no external services).

Today it ingests the real sample data shipped in ``data/sample`` into the catalog (idempotent),
exports the perpetual bars to a NautilusTrader catalog, prints what the catalog holds and
writes a PNG overview. Later stages (scan, backtest, paper trading) are added here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from dolphin.core.config import DolphinConfig
from dolphin.core.paths import console_width, repo_root, sample_data_dir
from dolphin.data.catalog import Catalog
from dolphin.data.sample import sample_sources
from dolphin.data.commands import catalog_summary_table, ingest_with_progress, print_ingest_summary

__all__ = ["register", "run_main_job"]


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else repo_root() / p


def run_main_job(cfg: DolphinConfig, console: Console, *, out_dir: Path | None = None) -> int:
    """The main job. Where it writes is where the other commands read: the NautilusTrader bars
    go to ``execution.backtest.nautilus_dir`` (the backtest reads them there), the reports to
    ``execution.backtest.reports_dir`` as ``dolphin backtest`` writes them (the live gate reads
    the HELL report there), the scan to ``var/scan``. ``out_dir`` puts the reports and the scan
    under one folder instead (tests)."""
    catalog = Catalog(_resolve(cfg.data.catalog_dir), row_group_size=cfg.data.row_group_size)
    var = out_dir or _resolve("var")
    from dolphin.runtime.wiring import reports_path

    reports_dir = out_dir / "reports" if out_dir is not None else reports_path(cfg)
    sample = sample_data_dir()
    if not sample.is_dir():
        console.print(f"[red]sample data not found at {sample}")
        return 2
    console.rule("1/5 ingest the shipped sample (real Binance USDT-M data)")
    reports = ingest_with_progress(
        catalog, sample_sources(),
        _resolve(cfg.data.quarantine_dir), console, gap_tolerance_bars=cfg.data.gap_tolerance_bars,
    )  # fmt: skip
    if print_ingest_summary(reports, console):
        return 1
    console.rule("2/5 catalog")
    console.print(catalog_summary_table(catalog))
    from dolphin.data.plots import plot_catalog

    png = plot_catalog(catalog, reports_dir / "catalog.png")
    console.print(f"overview plot: {png}")
    console.rule("3/5 NautilusTrader catalog (bars of the perpetuals)")
    from dolphin.execution.feeds import ensure_exported

    nautilus_dir = _resolve(cfg.execution.backtest.nautilus_dir)
    venue = "BINANCE_USDM"
    # Each stream is exported when its catalog files changed since its export (the backtest's own
    # check: it then finds every export current and exports nothing again).
    n_objs = sum(
        ensure_exported(catalog, nautilus_dir, ds, venue, sym)
        for ds in catalog.datasets() if ds.startswith("bars_")
        for sym in catalog.symbols(ds, venue)
    )
    if n_objs:
        console.print(f"wrote {n_objs:,} bars to the NautilusTrader catalog at {nautilus_dir}")
    else:
        console.print(f"NautilusTrader catalog at {nautilus_dir} is up to date (nothing new ingested)")
    console.rule("4/5 Sonar regime scan (every USDT-M perpetual in the sample, 5-minute bars)")
    from dolphin.scan.commands import run_scan
    from dolphin.scan.source import CatalogSource

    bars = CatalogSource(catalog, venue, "5m").load()
    run_scan(cfg, bars, var / "scan", progress=console.is_terminal)
    console.rule("5/5 NautilusTrader backtest of the agent: nominal and HELL side by side")
    from dolphin.cli import build_parser

    args = build_parser().parse_args(["backtest", "--scenario", "hell", "--out", str(reports_dir)])
    return int(args.func(cfg, args) or 0)


def _cmd_run(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    return run_main_job(cfg, Console(width=console_width()))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job on the embedded default (ingest sample, catalog, ...)")
    p.set_defaults(func=_cmd_run)
