"""PNG plot of a scan: lambda_max, entropy and vel_div over time with the regime shaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["plot_scan"]


def _spans(flags: np.ndarray) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = None
    for i, f in enumerate(flags):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(flags)))
    return out


def plot_scan(table: pa.Table, windows: list[int], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = table.column("ts").to_numpy().astype("datetime64[ns]")
    attack = np.array([r == "ATTACK" for r in table.column("regime").to_pylist()])
    has_entropy = any(np.isfinite(table.column(f"entropy_w{w}").to_numpy(zero_copy_only=False)).any() for w in windows)
    panels = 3 if has_entropy else 2
    fig, axes = plt.subplots(panels, 1, figsize=(12, 2.8 * panels), sharex=True)
    ax = axes[0]
    for w in windows:
        ax.plot(ts, table.column(f"lambda_max_w{w}").to_numpy(zero_copy_only=False), lw=0.8, label=f"W={w}")
    ax.set_ylabel("lambda_max")
    ax.legend(loc="upper right", fontsize=7, ncol=len(windows))
    if has_entropy:
        ax = axes[1]
        for w in windows:
            ax.plot(ts, table.column(f"entropy_w{w}").to_numpy(zero_copy_only=False), lw=0.8, label=f"W={w}")
        ax.set_ylabel("entropy H/ln N")
    ax = axes[-1]
    vd = table.column("vel_div").to_numpy(zero_copy_only=False)
    ax.plot(ts, vd, lw=0.6, color="black")
    fin = vd[np.isfinite(vd)]
    if fin.size > 10:
        lo, hi = np.percentile(fin, [0.5, 99.5])
        pad = 0.25 * max(hi - lo, 1e-6)
        ax.set_ylim(lo - pad, hi + pad)
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel("vel_div")
    for a in axes:
        for s, e in _spans(attack):
            a.axvspan(ts[s], ts[min(e, len(ts) - 1)], color="tab:green", alpha=0.12, lw=0)
    axes[0].set_title((title + "  " if title else "") + "(green: ATTACK, white: VETO)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
