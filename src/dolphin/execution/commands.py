"""`dolphin live`: start live trading only behind the HELL test control; `dolphin kill`: the
global kill flag (status, raise, clear)."""

from __future__ import annotations

import argparse
import os
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
    from dolphin.runtime.live_node import LiveNodeRefused, prepare_live_node

    try:
        plan = prepare_live_node(cfg)
    except LiveNodeRefused as exc:
        print(f"dolphin live: refused: {exc}", file=sys.stderr)
        return 4
    # Credentials present and the endpoint reachable: the Binance node config is built, but the
    # live signal feed (scanner records -> Oracle) is not wired, so the node is not started.
    print(f"dolphin live: Binance USDT-M node configured ({plan.endpoint}); refused: the live signal feed "
          f"is not wired ({w.signal_status}); not starting", file=sys.stderr)  # fmt: skip
    return 4


def _kill(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.execution.ports import FileKillFlag
    from dolphin.runtime.wiring import kill_flag_path

    path = kill_flag_path(cfg)
    flag = FileKillFlag(path)  # (making it reads only; only raise_ / clear write)
    try:
        try:
            if args.action == "raise":
                flag.raise_()
            elif args.action == "clear":
                flag.clear()
        except OSError as exc:
            # Exit 1 means "raised" (status), so a failed write must not exit 1 (review 2026-12-06:
            # an uncaught PermissionError exited 1, which a script reads as a raised kill).
            if args.action == "clear":
                print(f"dolphin kill: NOT CLEARED: cannot write {path}: {exc}", file=sys.stderr)
                return KILL_WRITE_FAILED
            # A missing flag reads as raised: remove the file when its byte cannot be written.
            try:
                os.unlink(path)
            except OSError as exc2:
                print(f"dolphin kill: KILL NOT RAISED: cannot write {path} ({exc}) nor remove it ({exc2})",
                      file=sys.stderr)  # fmt: skip
                return KILL_WRITE_FAILED
            print(f"dolphin kill: cannot write {path} ({exc}); removed it instead (a missing flag reads as raised)",
                  file=sys.stderr)  # fmt: skip
        raised = flag.is_raised_now()
        state = flag.state
    finally:
        flag.close()
    detail = "" if state == "ok" else f" ({state}: counts as raised)"
    print(f"kill flag {path}: {'RAISED' if raised else 'clear'}{detail}")
    if args.action == "raise" and not raised:  # (cannot happen after a write: read back to be sure)
        print(f"dolphin kill: KILL NOT RAISED: {path} still reads clear", file=sys.stderr)
        return KILL_WRITE_FAILED
    return 1 if raised else 0


KILL_WRITE_FAILED = 3  # `dolphin kill raise|clear` could not change the flag (0: clear, 1: raised)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="start live trading (refused without a passing HELL report)")
    p.set_defaults(func=_live)
    k = sub.add_parser("kill", help="the global kill flag: status (exit 1 when raised, 0 when clear), raise, clear "
                                    "(arm); exit 3 when raise / clear could not change the flag")
    k.add_argument("action", nargs="?", default="status", choices=("status", "raise", "clear"),
                   help="status (default), raise (every agent cancels and stops submitting), clear (arm: "
                        "creates the file cleared when it is missing)")
    k.set_defaults(func=_kill)
