"""The leverage knee: geometric growth rate against leverage 1x..10x, each a real backtest.

Every leverage is a full NautilusTrader run of the agent with the posture's leverage ceiling
set to that value (same data, same seed); GGR = ln(final / start) / years. The knee is the
leverage with the highest GGR (GGR ~ mu - sigma^2 / 2 peaks there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from dolphin.core.config import DolphinConfig
from dolphin.research.backtest import load_bars, run_bar_backtest

__all__ = ["knee_index", "run_knee", "write_knee"]


def knee_index(ggr: Sequence[float]) -> int:
    """Index of the maximum GGR (first one on ties)."""
    best = 0
    for i, g in enumerate(ggr):
        if g > ggr[best]:
            best = i
    return best


def run_knee(cfg: DolphinConfig, leverages: Sequence[float] = tuple(range(1, 11)), progress=None) -> dict[str, Any]:
    data = load_bars(cfg)
    rows = []
    for lev in leverages:
        r = run_bar_backtest(cfg, data=data, leverage_override=float(lev))
        rows.append(
            {"leverage": float(lev), "ggr_annual": r.report["ggr_annual"], "roi": r.report["roi"],
             "max_drawdown": r.report["max_drawdown"], "trades": r.report["trades"]}
        )
        if progress is not None:
            progress()
    k = knee_index([row["ggr_annual"] for row in rows])
    return {"seed": cfg.execution.backtest.seed, "rows": rows, "knee_leverage": rows[k]["leverage"]}


def write_knee(out_dir: Path, result: dict[str, Any]) -> dict[str, Path]:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "knee.json", "png": out_dir / "knee.png"}
    paths["json"].write_text(json.dumps(result, sort_keys=True, indent=1) + "\n")
    lev = [r["leverage"] for r in result["rows"]]
    ggr = [r["ggr_annual"] for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lev, ggr, marker="o")
    k = result["knee_leverage"]
    ax.axvline(k, color="red", linestyle="--", label=f"knee {k:g}x")
    ax.set_xlabel("leverage (x)")
    ax.set_ylabel("geometric growth rate / yr")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=90, metadata={"Software": None})
    plt.close(fig)
    return paths
