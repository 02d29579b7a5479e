"""PNG overview of the catalog: per bar dataset and venue, every symbol's close normalised to
its first bar (log scale) and the share of real bars per symbol."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dolphin.data.align import align_bars
from dolphin.data.catalog import Catalog

__all__ = ["plot_catalog"]


def plot_catalog(catalog: Catalog, out: str | Path, max_symbols: int = 60) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    spans: dict[tuple[str, str], list[int]] = {}
    for p in catalog.partitions():
        if p.dataset.startswith("bars_"):
            s = spans.setdefault((p.dataset, p.venue), [p.first_ns, p.last_ns])
            s[0], s[1] = min(s[0], p.first_ns), max(s[1], p.last_ns)
    for (ds, venue), (lo, hi) in sorted(spans.items()):
        syms = catalog.symbols(ds, venue)[:max_symbols]
        bars = align_bars(catalog, venue, syms, lo, hi + 1, ds.removeprefix("bars_"))
        panels.append((ds, venue, bars))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(max(len(panels), 1), 2, figsize=(14, 3.6 * max(len(panels), 1)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})  # fmt: skip
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no bar data in the catalog", ha="center")
    for row, (ds, venue, b) in enumerate(panels):
        ax, ax2 = axes[row]
        t = b.ts_ns.astype("datetime64[ns]")
        for i in range(len(b.symbols)):
            c = b.close[i]
            first = c[np.flatnonzero(b.mask[i])[:1]]
            if len(first):
                ax.plot(t, c / first[0], lw=0.6)
        ax.set_yscale("log")
        ax.set_title(f"{ds} {venue}: close / first close, {len(b.symbols)} symbols (gaps left blank)")
        cov = b.coverage()
        ax2.barh(range(len(b.symbols)), cov, color="tab:blue")
        ax2.set_yticks(range(len(b.symbols)), b.symbols, fontsize=5)
        ax2.set_xlim(0, 1)
        ax2.set_title("share of real bars")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
