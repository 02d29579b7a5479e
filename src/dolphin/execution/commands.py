"""`dolphin live`: start live trading only behind the HELL test control."""

from __future__ import annotations

import argparse
import sys

from dolphin.core.config import DolphinConfig

__all__ = ["register"]


def _live(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.execution.live_gate import check_live_allowed

    gate = check_live_allowed(cfg, config_path=args.config)
    if not gate.allowed:
        print(f"dolphin live: refused: {gate.reason}", file=sys.stderr)
        return 3
    print(f"dolphin live: {gate.reason}")
    # The live TradingNode (Binance adapter, credentials from the environment) is composed by
    # the runtime plane; this command only owns the test control in front of it.
    print("dolphin live: gate passed; live node start is wired by the runtime composition root", file=sys.stderr)
    return 4


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="start live trading (refused without a passing HELL report)")
    p.set_defaults(func=_live)
