"""`dolphin backtest [--scenario nominal|hell]` and `dolphin knee`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from dolphin.core.config import DolphinConfig, validate_config

__all__ = ["register"]

CAPTURE_SYMBOL = "BTCUSDT"  # the L2 capture's one symbol (`load_l1` / `load_depth` default)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _with_overrides(cfg: DolphinConfig, args: argparse.Namespace) -> DolphinConfig:
    bt = cfg.execution.backtest
    changes = {}
    if getattr(args, "seed", None) is not None:
        changes["seed"] = args.seed
    if getattr(args, "symbols", None) is not None:
        changes["symbols"] = tuple(s.strip() for s in args.symbols.split(","))
    if not changes:
        return cfg
    ex = msgspec.structs.replace(cfg.execution, backtest=msgspec.structs.replace(bt, **changes))
    # structs.replace skips msgspec's constraints: check the result like a loaded config (ConfigError).
    return validate_config(msgspec.structs.replace(cfg, execution=ex))


def _backtest(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from dolphin.research.backtest import config_hash, load_bars, run_bar_backtest
    from dolphin.research.report import render_table, write_report

    if args.data in ("l1", "l2") and args.symbols is not None:
        # the L1/L2 data is the one capture (BTCUSDT): --symbols picks bar sets only
        print(f"dolphin: --symbols applies to --data bars; --data {args.data} replays the L2 capture "
              f"({CAPTURE_SYMBOL} only)", file=sys.stderr)  # fmt: skip
        return 2
    cfg = _with_overrides(cfg, args)
    bt = cfg.execution.backtest
    from dolphin.runtime.wiring import reports_path

    out = Path(args.out) if args.out else reports_path(cfg)
    h = config_hash(cfg)
    scenarios = ["nominal", "hell"] if args.scenario == "hell" else ["nominal"]
    results = []
    with Progress(transient=True) as progress:
        task = progress.add_task("backtest", total=len(scenarios) + 1)
        if args.data in ("l1", "l2"):
            from dolphin.research.backtest import load_depth, load_l1, run_depth_backtest, run_tick_backtest
            from dolphin.runtime.wiring import build_tick_ports

            if args.data == "l2":
                depth = load_depth(cfg)
            else:
                ticks = load_l1(cfg)
            progress.advance(task)
            for sc in scenarios:
                # One asset, no cross-section for the scanner's vel_div: the Oracle's order-book
                # candidates (WOBI, microprice edge, ARS, NEV after fees) on the replayed book.
                ports = build_tick_ports(cfg, book=True).ports
                if args.data == "l2":
                    res = run_depth_backtest(cfg, ports, depth=depth, scenario=sc, bar_seconds=args.bar_seconds)
                else:
                    res = run_tick_backtest(cfg, ports, ticks=ticks, scenario=sc, bar_seconds=args.bar_seconds)
                results.append(res)
                progress.advance(task)
        else:
            from dolphin.execution.live_gate import code_fingerprint, hell_data_fingerprint

            data_fp = None
            code_fp = code_fingerprint()  # the code that runs (checked again before the gate report)
            if args.scenario == "hell":
                from dolphin.runtime.wiring import catalog_lock, ensure_catalog

                with catalog_lock(cfg):  # (the shipped sample first, as load_bars would)
                    ensure_catalog(cfg)
                data_fp = hell_data_fingerprint(cfg)  # the data before and after it was read
            data = load_bars(cfg)
            if data_fp is not None and hell_data_fingerprint(cfg) != data_fp:
                data_fp = "changed while read"
            progress.advance(task)
            for sc in scenarios:
                results.append(run_bar_backtest(cfg, scenario=sc, data=data))
                progress.advance(task)
    reports = [dict(r.report, config_hash=h) for r in results]
    data = {
        "bars": f"{bt.dataset} ({bt.venue}/{bt.bars})",
        "l1": "L2 capture BTCUSDT 2024-08-08 (L1 bookTicker quotes + trades)",
        "l2": "L2 capture BTCUSDT 2024-08-08 (L2 book deltas + trades)",
    }[args.data]
    for r in reports:
        r["data"] = data
        if args.data != "bars":  # what the run traded, not the bar configuration's universe
            r["symbols"] = [CAPTURE_SYMBOL]
            r["dataset"] = data
    print(render_table(reports, title=f"dolphin backtest {data} (config {h}, seed {bt.seed})"))
    for r in reports:
        ob = r.get("oracle_book")
        if ob:
            print(f"{r['scenario']}: {r['signals']}: {ob['evaluated']} evaluated, {ob['proposed']} proposed "
                  f"{ob['nev_reasons']}" + (f"; {ob['why_none']}" if "why_none" in ob else ""))  # fmt: skip
    name = (f"backtest-{h}" if args.scenario != "hell" else f"hell-{h}") + ("" if args.data == "bars" else f"-{args.data}")
    paths = write_report(out, name, reports, [r.equity for r in results])
    no_signals = [r for r in reports if str(r.get("signals", "")).startswith("none")]
    no_trades = [r for r in reports if r.get("scenario") == "hell" and r.get("trades") == 0]
    if args.scenario == "hell" and args.data == "bars" and (no_signals or no_trades):
        # A run without signals, or a HELL run without a trade, shows nothing about ruin, so it is
        # no evidence for the live gate (which would refuse it). The report files stay for
        # inspection; no gate report is written.
        for kind, p in paths.items():
            print(f"{kind}: {p}")
        why = f"has no signals ({no_signals[0]['signals']})" if no_signals else "made no trade"
        print(f"dolphin: HELL run {why}; no gate report written, live stays locked for this configuration",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.scenario == "hell" and args.data == "bars":
        gate = out / "hell" / f"{h}.json"
        gate.parent.mkdir(parents=True, exist_ok=True)
        from dolphin.research.report import report_json

        if hell_data_fingerprint(cfg) != data_fp:  # an ingest during the run: the data is not what ran
            print("dolphin: the catalog's bars changed during the HELL run; no gate report written, run it again",
                  file=sys.stderr)  # fmt: skip
            return 1
        if code_fingerprint() != code_fp:
            print("dolphin: dolphin's code changed during the HELL run; no gate report written, run it again",
                  file=sys.stderr)  # fmt: skip
            return 1
        gate.write_text(report_json({"config_hash": h, "data_fingerprint": data_fp, "code_fingerprint": code_fp,
                                     "runs": reports}) + "\n")  # fmt: skip
        paths["gate"] = gate
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    return 0


def _knee(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from rich.progress import Progress
    from rich.table import Table
    from rich.console import Console

    from dolphin.research.knee import run_knee, write_knee

    if args.max_leverage < 1:
        print(f"dolphin: --max-leverage must be >= 1 (got {args.max_leverage})", file=sys.stderr)
        return 2
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
        mark = mark or ("ruin" if row["ruin"] else "")
        table.add_row(f"{row['leverage']:g}x", f"{row['ggr_annual']:+.4f}", f"{row['roi']:+.3%}",
                      f"{row['max_drawdown']:.2%}", str(row["trades"]), mark)
    Console().print(table)
    if result["knee_leverage"] is None:
        print("no knee: every leverage ended in ruin (or a non-finite GGR)")
    from dolphin.runtime.wiring import reports_path

    paths = write_knee(Path(args.out) if args.out else reports_path(cfg), result)
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="NautilusTrader backtest of the execution agent (nominal or HELL)")
    p.add_argument("--scenario", choices=["nominal", "hell"], default="nominal")
    p.add_argument("--data", choices=["bars", "l1", "l2"], default="bars",
                   help="bars: the multi-asset bar set; l2: the L2 capture as book deltas + trades; "
                        "l1: its bookTicker quotes + trades (both with 200 ms cancels and queue position)")
    p.add_argument("--bar-seconds", type=_positive_int, default=1, help="agent bar size for --data l1/l2 (internal bars)")
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
