"""`dolphin paper`: the agent in a live NautilusTrader TradingNode on replayed catalog data."""

from __future__ import annotations

import argparse
import sys

from dolphin.core.config import DolphinConfig

__all__ = ["register"]


def _paper(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from rich.console import Console

    from dolphin.core.paths import console_width
    from dolphin.research.backtest import config_hash
    from dolphin.runtime.paper import run_paper

    console = Console(width=console_width())
    import msgspec

    from dolphin.core.config import validate_config

    pc = cfg.paper
    overrides = {k: v for k, v in (("speed", args.speed), ("max_seconds", args.max_seconds), ("data", args.data))
                 if v is not None}  # fmt: skip
    if overrides:  # the command-line values obey the config's rules (ConfigError: exit 2, one line);
        # they are run parameters, not the configuration: its hash and summary name stay the file's
        checked = validate_config(msgspec.structs.replace(cfg, paper=msgspec.structs.replace(pc, **overrides)))
        pc = checked.paper
    speed, data, max_s = pc.speed, pc.data, pc.max_seconds
    # Paper trades no money: no HELL gate (that is `dolphin live`'s), but the run names its config.
    console.print(f"dolphin paper: configuration {config_hash(cfg)}, data {data}, speed x{speed:g}, "
                  f"max {max_s:g} s (0 = to the end of the replay); Ctrl-C stops cleanly")  # fmt: skip
    res = run_paper(cfg, speed=speed, max_seconds=max_s, data=data, console=console if pc.progress else None)
    s = res.summary
    o, p, sh = s["orders"], s["pnl"], s["shutdown"]
    console.print(
        f"stopped by {s['stopped_by']}; replayed {s['replay']['events_replayed']:,} events "
        f"({s['replay']['groups_replayed']}/{s['replay']['groups_total']} timestamps), data errors "
        f"{s['replay']['errors'] or 'none'}\n"
        f"orders {o['submitted']} (post-only {o['post_only']}), filled {o['filled']}, canceled {o['canceled']} "
        f"(ttl {o['cancel_ttl']}), OTR {s['otr']['otr']:.2f}; trades {p['trades']}, realised "
        f"{p['realised_usdt']:.2f} USDT, balance {p['final_balance_usdt']:.2f} USDT"
        + (f", equity {p['final_equity_usdt']:.2f} USDT (open positions marked at their last price)"
           if p["equity_is_marked"] else "") + "\n"
        f"shutdown: open orders {o['open_at_end']}, open positions {sh['open_positions_at_end']}, "
        f"pending tasks {len(sh['pending_tasks'])}\nsummary: {res.path}"
    )  # fmt: skip
    if s["error"]:
        print(f"dolphin paper: {s['error']}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="paper trading: the live node on a replay of the catalog (sandbox fills)")
    p.add_argument("--speed", type=float, default=None, help="replay speed-up (default: paper.speed)")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock bound, 0 = whole replay")
    p.add_argument("--data", choices=("bars", "l2"), default=None, help="bars (5m sample) or l2 (BTCUSDT capture)")
    p.set_defaults(func=_paper)
