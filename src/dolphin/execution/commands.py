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
    from dolphin.runtime.wiring import build_live_ports

    w = build_live_ports(cfg)
    print(f"dolphin live: ports composed (survival layers {len(cfg.survival.layers)}, kill flag "
          f"{w.ports.kill.path}, signals {w.signal_status})")  # type: ignore[attr-defined]
    # The live TradingNode (Binance adapter, credentials from the environment) is not built yet.
    print("dolphin live: no live TradingNode in this build; not starting", file=sys.stderr)
    return 4


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="start live trading (refused without a passing HELL report)")
    p.set_defaults(func=_live)
