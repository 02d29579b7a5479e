"""Test control before live: no HELL report for this configuration, or a ruinous one, no live.

A configuration is identified by its hash (``dolphin.research.backtest.config_hash``). The
HELL run writes ``<reports_dir>/hell/<hash>.json``; live trading reads it before starting.
A refusal is data (a :class:`GateResult` naming the report and the command that makes it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dolphin.core.config import DolphinConfig

__all__ = ["GateResult", "check_live_allowed", "hell_report_path"]


@dataclass(frozen=True)
class GateResult:
    allowed: bool
    config_hash: str
    report_path: Path
    reason: str


def hell_report_path(cfg: DolphinConfig, reports_dir: Path | None = None) -> tuple[str, Path]:
    from dolphin.research.backtest import config_hash

    h = config_hash(cfg)
    base = Path(reports_dir) if reports_dir is not None else Path(cfg.execution.backtest.reports_dir)
    return h, base / "hell" / f"{h}.json"


def check_live_allowed(cfg: DolphinConfig, reports_dir: Path | None = None, config_path: str | None = None) -> GateResult:
    h, path = hell_report_path(cfg, reports_dir)
    cmd = "dolphin " + (f"-c {config_path} " if config_path else "") + "backtest --scenario hell"
    if not path.is_file():
        return GateResult(False, h, path, f"no HELL report for configuration {h}: missing {path}; run `{cmd}`")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return GateResult(False, h, path, f"HELL report {path} unreadable ({exc}); run `{cmd}` again")
    hell = next((r for r in doc.get("runs", [doc]) if r.get("scenario") == "hell"), None)
    if hell is None or doc.get("config_hash") != h:
        return GateResult(False, h, path, f"HELL report {path} is not a HELL run of configuration {h}; run `{cmd}`")
    if hell.get("ruin", True):
        return GateResult(
            False, h, path,
            f"HELL report {path} shows ruin (final equity {hell.get('final_equity')}, "
            f"max drawdown {hell.get('max_drawdown')}); change the configuration and run `{cmd}`",
        )
    return GateResult(True, h, path, f"HELL report {path} passed (no ruin)")
