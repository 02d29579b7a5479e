"""`dolphin data ingest | validate | inspect | export-nautilus`."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dolphin.core.config import DolphinConfig
from dolphin.core.paths import console_width
from dolphin.data.catalog import Catalog
from dolphin.data.errors import DataError
from dolphin.data.ingest import IngestReport, check_source, discover_sources, ingest_file

__all__ = ["register", "ingest_with_progress", "print_ingest_summary", "catalog_summary_table"]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"), console=console, transient=False,
    )  # fmt: skip


def ingest_with_progress(
    catalog: Catalog, paths: list[str | Path], quarantine_dir: str | Path, console: Console,
    *, venue: str | None = None, gap_tolerance_bars: float = 1.0,
) -> list[IngestReport]:  # fmt: skip
    files = discover_sources(paths)
    reports = []
    with _progress(console) as prog:
        task = prog.add_task("ingest", total=len(files), current="")
        for f in files:
            prog.update(task, current=f.name)
            reports.append(
                ingest_file(catalog, f, quarantine_dir=quarantine_dir, venue=venue, gap_tolerance_bars=gap_tolerance_bars)
            )
            prog.advance(task)
    return reports


def print_ingest_summary(reports: list[IngestReport], console: Console, *, details: bool = False) -> int:
    """Print the files that failed or lost rows (all files with ``details``) and the totals.

    Returns the number of files that failed: an error (nothing or only part written), or a
    truncated capture (its rows before the cut are stored, the rest of the file is lost).
    """
    t = Table(title="ingest: files with errors, quarantined rows or gaps" if not details else "ingest")
    for col in ("file", "format", "venue", "datasets", "rows", "written", "present", "quarantined", "gaps", "note"):
        t.add_column(col, overflow="fold")
    failed = 0
    for r in reports:
        if not details and not (r.error or r.rows_quarantined or r.gaps):
            continue
        if r.error:
            failed += 1
            t.add_row(Path(r.source).name, "-", "-", "-", "-", "-", "-", "-", "-", f"[red]{r.error}")
            continue
        if r.reasons.get("truncated"):
            failed += 1
        note = ", ".join(f"{k}={v}" for k, v in sorted(r.reasons.items()))
        if r.rounded_values:
            note = (note + ", " if note else "") + f"rounded>18dp={r.rounded_values}"
        t.add_row(
            Path(r.source).name, r.format, r.venue, ",".join(r.datasets), str(r.rows_total), str(r.rows_written),
            str(r.rows_already_present), str(r.rows_quarantined), str(len(r.gaps)), note,
        )  # fmt: skip
    if t.row_count:
        console.print(t)
    for r in reports:
        if r.error:
            console.print(f"[red]error:[/] {r.error}", soft_wrap=True)
        elif r.reasons.get("truncated"):
            console.print(f"[red]error:[/] {r.source}: truncated (compressed stream ends early); the rows before "
                          f"the cut were kept, see {r.quarantine_file}", soft_wrap=True)  # fmt: skip
    ok = [r for r in reports if not r.error]
    console.print(
        f"files: {len(reports)} ({failed} failed)  rows: {sum(r.rows_total for r in ok)}  "
        f"written: {sum(r.rows_written for r in ok)}  already present: {sum(r.rows_already_present for r in ok)}  "
        f"quarantined: {sum(r.rows_quarantined for r in ok)}  gaps: {sum(len(r.gaps) for r in ok)}"
    )
    return failed


def catalog_summary_table(catalog: Catalog, *, by_symbol: bool = False) -> Table:
    """Rows, days, time span and size per dataset and venue (and symbol with ``by_symbol``)."""
    import numpy as np

    agg: dict[tuple[str, ...], list] = {}
    for p in catalog.partitions():
        key = (p.dataset, p.venue, p.symbol) if by_symbol else (p.dataset, p.venue)
        a = agg.setdefault(key, [0, set(), 2**63 - 1, 0, 0, set()])
        a[0] += p.rows
        a[1].add(p.date)
        a[2] = min(a[2], p.first_ns)
        a[3] = max(a[3], p.last_ns)
        a[4] += p.bytes
        a[5].add(p.symbol)
    t = Table(title=f"catalog {catalog.root}")
    cols = ["dataset", "venue"] + (["symbol"] if by_symbol else ["symbols"])
    for col in cols + ["rows", "days", "first (UTC)", "last (UTC)", "size"]:
        t.add_column(col)
    for key, (rows, days, lo, hi, size, syms) in sorted(agg.items()):
        third = [] if by_symbol else [str(len(syms))]
        t.add_row(
            *key, *third, f"{rows:,}", str(len(days)), str(np.datetime64(lo, "ns"))[:19],
            str(np.datetime64(hi, "ns"))[:19], f"{size / 1024:,.0f} KiB",
        )  # fmt: skip
    return t


def _catalog(cfg: DolphinConfig, args: argparse.Namespace) -> Catalog:
    return Catalog(args.catalog or cfg.data.catalog_dir, row_group_size=cfg.data.row_group_size)


def _cmd_ingest(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    console = Console(width=console_width())
    try:
        reports = ingest_with_progress(
            _catalog(cfg, args), args.paths, args.quarantine or cfg.data.quarantine_dir, console,
            venue=args.venue, gap_tolerance_bars=cfg.data.gap_tolerance_bars,
        )  # fmt: skip
    except DataError as exc:
        console.print(f"[red]error: {exc}")
        return 2
    failed = print_ingest_summary(reports, console, details=args.details)
    return 1 if failed else 0


def _cmd_validate(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    console = Console(width=console_width())
    t = Table(title="validate (nothing written)")
    for col in ("file", "format", "symbols", "rows", "accepted", "rejected", "gaps", "reasons"):
        t.add_column(col, overflow="fold")
    bad = 0
    try:
        files = discover_sources(args.paths)
    except DataError as exc:
        console.print(f"[red]error: {exc}")
        return 2
    with _progress(console) as prog:
        task = prog.add_task("validate", total=len(files), current="")
        for f in files:
            prog.update(task, current=f.name)
            try:
                parts = check_source(f, gap_tolerance_bars=cfg.data.gap_tolerance_bars)
            except Exception as exc:  # noqa: BLE001 - one bad file must not abort the batch
                bad += 1
                msg = str(exc) if isinstance(exc, DataError) else f"{f}: unexpected {type(exc).__name__}: {exc}"
                t.add_row(f.name, "-", "-", "-", "-", "-", "-", f"[red]{msg}")
                prog.advance(task)
                continue
            for parsed, per in parts:
                accepted = sum(v[1].num_rows for v in per.values())
                gaps = sum(len(v[2]) for v in per.values())
                reasons = parsed.rejects.counts()
                bad += bool(reasons)
                t.add_row(
                    f.name, parsed.fmt.name, ",".join(per)[:40], str(parsed.rows_total), str(accepted),
                    str(len(parsed.rejects)), str(gaps), ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())),
                )  # fmt: skip
            prog.advance(task)
    console.print(t)
    return 1 if bad else 0


def _cmd_inspect(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    console = Console(width=console_width())
    cat = _catalog(cfg, args)
    if not cat.datasets():
        console.print(f"catalog {cat.root} is empty: run `dolphin data ingest <files>` first")
        return 1
    console.print(catalog_summary_table(cat, by_symbol=args.by_symbol))
    if args.plot:
        from dolphin.data.plots import plot_catalog

        path = plot_catalog(cat, args.plot)
        console.print(f"plot written to {path}")
    return 0


def _cmd_export(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.data.nautilus import export_stream

    console = Console(width=console_width())
    cat = _catalog(cfg, args)
    symbols = args.symbol or cat.symbols(args.dataset, args.venue)
    if not symbols:
        console.print(f"[red]nothing stored for {args.dataset}/{args.venue}")
        return 1
    with _progress(console) as prog:
        task = prog.add_task("export", total=len(symbols), current="")
        for sym in symbols:
            prog.update(task, current=sym)
            try:
                inst, n = export_stream(cat, args.out, args.dataset, args.venue, sym)
            except DataError as exc:
                console.print(f"[red]{sym}: {exc}")
                return 1
            prog.advance(task)
    console.print(f"NautilusTrader catalog at {args.out}: {len(symbols)} instrument(s)")
    return 0


def _cmd_bars(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    """Bars from all stored trades. A stored bar built from trades that differs from its rebuild
    (trades for its interval were stored since) is replaced: it is recomputable, and the stored
    trades are its source. A differing stored bar from another source (venue klines, converted
    OHLCV) is kept, counted, and makes the command fail (exit 1): nothing is overwritten silently."""
    from dolphin.data.align import bars_from_trades, built_from_trades

    console = Console(width=console_width())
    cat = _catalog(cfg, args)
    symbols = args.symbol or cat.symbols("trades", args.venue)
    if not symbols:
        console.print(f"[red]no trades stored for venue {args.venue}: ingest trades or a capture first")
        return 1
    dataset = f"bars_{args.bar}"
    kept_conflicts = 0
    for sym in symbols:
        trades = cat.read("trades", args.venue, sym)
        bars = bars_from_trades(trades, args.bar)
        res = cat.write(dataset, args.venue, sym, bars, replace_if=built_from_trades)
        console.print(f"{sym}: {trades.num_rows:,} trades -> {bars.num_rows:,} {dataset} bars "
                      f"({res.rows_written:,} new, {res.rows_already_present:,} already stored, "
                      f"{res.rows_replaced:,} rebuilt with trades stored since)")  # fmt: skip
        if res.conflict_rows:
            kept_conflicts += len(res.conflict_rows)
            console.print(f"[red]{sym}: {len(res.conflict_rows):,} stored {dataset} bars from another source "
                          "(not built from trades) differ from the bars the stored trades give; kept, not "
                          "replaced")  # fmt: skip
    return 1 if kept_conflicts else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="market-data catalog: ingest, validate, inspect, export-nautilus")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--catalog", default=None, help="catalog folder (default: data.catalog_dir)")

    q = dsub.add_parser("ingest", help="parse, validate and store source files (CSV/ZIP/gz) in the catalog")
    q.add_argument("paths", nargs="+", help="files or folders")
    q.add_argument("--venue", default=None, choices=["BINANCE_USDM", "BINANCE_SPOT", "BYBIT", "DERIBIT", "BITMEX"],
                   help="venue (default: from the format, the file name and the nearest folders: "
                        "usdm/um/futures/perp -> BINANCE_USDM, else BINANCE_SPOT; funding -> BINANCE_USDM)")  # fmt: skip
    q.add_argument("--quarantine", default=None, help="quarantine folder (default: data.quarantine_dir)")
    q.add_argument("--details", action="store_true", help="a row per file, not only the files with problems")
    common(q)
    q.set_defaults(func=_cmd_ingest)

    q = dsub.add_parser("validate", help="check source files without writing; exit 1 if any row is rejected")
    q.add_argument("paths", nargs="+")
    q.set_defaults(func=_cmd_validate)

    q = dsub.add_parser("inspect", help="summarise what the catalog holds")
    q.add_argument("--plot", default=None, help="also write a PNG overview to this path")
    q.add_argument("--by-symbol", action="store_true", help="a row per symbol")
    common(q)
    q.set_defaults(func=_cmd_inspect)

    q = dsub.add_parser("bars", help="build bars (e.g. 5s) from stored trades; only bars with trades are "
                                     "written, bars built earlier are rebuilt when trades were stored since")
    q.add_argument("--venue", required=True)
    q.add_argument("--bar", default="5s", help="bar size, e.g. 5s, 1m")
    q.add_argument("--symbol", action="append", help="symbol (repeatable; default: all with trades)")
    common(q)
    q.set_defaults(func=_cmd_bars)

    q = dsub.add_parser("export-nautilus", help="write catalog streams into a NautilusTrader ParquetDataCatalog")
    q.add_argument("--dataset", required=True)
    q.add_argument("--venue", required=True)
    q.add_argument("--symbol", action="append", help="symbol (repeatable; default: all)")
    q.add_argument("--out", default="var/nautilus", help="NautilusTrader catalog folder")
    common(q)
    q.set_defaults(func=_cmd_export)
