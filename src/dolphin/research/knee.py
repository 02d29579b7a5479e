"""The leverage knee: geometric growth rate against leverage 1x..10x, each a real backtest.

Every leverage is a full NautilusTrader run of the agent with the posture's leverage ceiling
set to that value (same data, same seed); GGR = ln(final / start) / years (-inf once equity
reached <= 0 anywhere on the path). The knee is the leverage with the highest finite GGR among
the runs without ruin (GGR ~ mu - sigma^2 / 2 peaks there); a ruined or NaN run is never the
knee, and when every run is ruined there is no knee (``knee_leverage`` is null).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from dolphin.core.config import DolphinConfig
from dolphin.research.backtest import load_bars, run_bar_backtest
from dolphin.research.report import report_json

__all__ = ["knee_index", "run_knee", "write_knee"]


def knee_index(ggr: Sequence[float], ruin: Sequence[bool] | None = None) -> int | None:
    """Index of the maximum finite GGR among the runs without ruin (first one on ties); None when
    no run qualifies (all ruined, -inf or NaN)."""
    best: int | None = None
    for i, g in enumerate(ggr):
        if g is None or not math.isfinite(g) or (ruin is not None and ruin[i]):
            continue
        if best is None or g > ggr[best]:
            best = i
    return best


def run_knee(cfg: DolphinConfig, leverages: Sequence[float] = tuple(range(1, 11)), progress=None) -> dict[str, Any]:
    if not leverages or any(not (math.isfinite(lev) and lev >= 1) for lev in leverages):
        raise ValueError(f"knee leverages {list(leverages)!r}: need at least one, each finite and >= 1")
    data = load_bars(cfg)
    rows = []
    for lev in leverages:
        r = run_bar_backtest(cfg, data=data, leverage_override=float(lev))
        rows.append(
            {"leverage": float(lev), "ggr_annual": r.report["ggr_annual"], "roi": r.report["roi"],
             "max_drawdown": r.report["max_drawdown"], "trades": r.report["trades"], "ruin": r.report["ruin"]}
        )
        if progress is not None:
            progress()
    k = knee_index([row["ggr_annual"] for row in rows], [row["ruin"] for row in rows])
    return {"seed": cfg.execution.backtest.seed, "rows": rows, "knee_leverage": None if k is None else rows[k]["leverage"]}


def write_knee(out_dir: Path, result: dict[str, Any]) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "knee.json", "png": out_dir / "knee.png"}
    paths["json"].write_text(report_json(result) + "\n")  # strict JSON: -inf GGR as null + flag
    lev = [r["leverage"] for r in result["rows"]]
    ggr = [r["ggr_annual"] if math.isfinite(r["ggr_annual"]) else math.nan for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lev, ggr, marker="o")
    k = result["knee_leverage"]
    if k is not None:
        ax.axvline(k, color="red", linestyle="--", label=f"knee {k:g}x")
        ax.legend()
    else:
        ax.set_title("no knee: every leverage ruined")
    ax.set_xlabel("leverage (x)")
    ax.set_ylabel("geometric growth rate / yr")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=90, metadata={"Software": None})
    plt.close(fig)
    return paths
