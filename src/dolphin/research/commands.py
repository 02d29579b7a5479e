"""`dolphin backtest [--scenario nominal|hell]` and `dolphin knee`."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec

from dolphin.core.config import DolphinConfig

__all__ = ["register"]


def _with_overrides(cfg: DolphinConfig, args: argparse.Namespace) -> DolphinConfig:
    bt = cfg.execution.backtest
    changes = {}
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    if getattr(args, "symbols", None):
        changes["symbols"] = tuple(args.symbols.split(","))
    if not changes:
        return cfg
    ex = msgspec.structs.replace(cfg.execution, backtest=msgspec.structs.replace(bt, **changes))
    return msgspec.structs.replace(cfg, execution=ex)


def _backtest(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from dolphin.research.backtest import config_hash, load_bars, run_bar_backtest
    from dolphin.research.report import render_table, write_report

    cfg = _with_overrides(cfg, args)
    bt = cfg.execution.backtest
    out = Path(args.out or bt.reports_dir)
    h = config_hash(cfg)
    scenarios = ["nominal", "hell"] if args.scenario == "hell" else ["nominal"]
    results = []
    with Progress(transient=True) as progress:
        task = progress.add_task("backtest", total=len(scenarios) + 1)
        sets = load_bars(bt)
        progress.advance(task)
        for sc in scenarios:
            results.append(run_bar_backtest(cfg, scenario=sc, bar_sets=sets))
            progress.advance(task)
    reports = [dict(r.report, config_hash=h) for r in results]
    print(render_table(reports, title=f"dolphin backtest {bt.dataset} (config {h}, seed {bt.seed})"))
    name = f"backtest-{h}" if args.scenario != "hell" else f"hell-{h}"
    paths = write_report(out, name, reports, [r.equity for r in results])
    if args.scenario == "hell":
        gate = out / "hell" / f"{h}.json"
        gate.parent.mkdir(parents=True, exist_ok=True)
        from dolphin.research.report import report_json

        gate.write_text(report_json({"config_hash": h, "runs": reports}) + "\n")
        paths["gate"] = gate
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    return 0


def _knee(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from rich.progress import Progress
    from rich.table import Table
    from rich.console import Console

    from dolphin.research.knee import run_knee, write_knee

    cfg = _with_overrides(cfg, args)
    levs = [float(x) for x in range(1, args.max_leverage + 1)]
    with Progress(transient=True) as progress:
        task = progress.add_task("knee", total=len(levs))
        result = run_knee(cfg, levs, progress=lambda: progress.advance(task))
    table = Table(title="GGR against leverage")
    for col in ("leverage", "GGR / yr", "ROI", "max DD", "trades", ""):
        table.add_column(col, justify="right")
    for row in result["rows"]:
        mark = "<- knee" if row["leverage"] == result["knee_leverage"] else ""
        table.add_row(f"{row['leverage']:g}x", f"{row['ggr_annual']:+.4f}", f"{row['roi']:+.3%}",
                      f"{row['max_drawdown']:.2%}", str(row["trades"]), mark)
    Console().print(table)
    paths = write_knee(Path(args.out or cfg.execution.backtest.reports_dir), result)
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="NautilusTrader backtest of the execution agent (nominal or HELL)")
    p.add_argument("--scenario", choices=["nominal", "hell"], default="nominal")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--symbols", default=None, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--out", default=None, help="report folder (default execution.backtest.reports_dir)")
    p.set_defaults(func=_backtest)
    k = sub.add_parser("knee", help="geometric growth rate against leverage 1x..10x with the knee marked")
    k.add_argument("--max-leverage", type=int, default=10)
    k.add_argument("--seed", type=int, default=None)
    k.add_argument("--symbols", default=None)
    k.add_argument("--out", default=None)
    k.set_defaults(func=_knee)
