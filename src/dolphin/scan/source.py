"""Where the scanner's bars come from: aligned matrices out of the catalog.

The scanner works time-major: ``closes`` is T x N float64 with NaN where an asset has no bar,
``mask`` is T x N bool (True = a real bar); nothing is filled. :class:`CatalogSource` reads
them from the Parquet catalog through :func:`dolphin.data.align.align_bars` (which is
assets-major) on a regular bar grid.

``dolphin scan`` takes its data through the :class:`BarSource` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from dolphin.data import align as _align
from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError
from dolphin.data.schema import bar_interval_ns

__all__ = ["ScanBars", "BarSource", "CatalogSource", "from_catalog"]


@dataclass(frozen=True)
class ScanBars:
    """The scanner's time-major view of :class:`dolphin.data.align.AlignedBars`.

    ts_ms (T,), closes (T x N, NaN = no bar), mask (T x N, True = real bar).
    """

    ts_ms: np.ndarray
    symbols: tuple[str, ...]
    closes: np.ndarray
    mask: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        t, n = self.closes.shape
        if self.ts_ms.shape != (t,) or self.mask.shape != (t, n) or len(self.symbols) != n:
            raise ValueError(
                f"inconsistent shapes: ts {self.ts_ms.shape}, closes {self.closes.shape},"
                f" mask {self.mask.shape}, symbols {len(self.symbols)}"
            )


class BarSource(Protocol):
    """Anything that yields aligned bar matrices (the catalog will implement this)."""

    def load(self) -> ScanBars: ...


def from_catalog(bars: _align.AlignedBars, name: str = "") -> ScanBars:
    """The catalog's (assets x time) matrices as the scanner's time-major view."""
    return ScanBars(
        bars.ts_ns // 1_000_000, bars.symbols, np.ascontiguousarray(bars.close.T),
        np.ascontiguousarray(bars.mask.T), name=name,
    )  # fmt: skip


@dataclass(frozen=True)
class CatalogSource:
    """Aligned closes of ``venue`` at ``bar`` size from the catalog.

    ``symbols`` None: every symbol stored at a bar size that divides ``bar``. ``start_ns`` /
    ``end_ns`` None: the span the catalog holds for them.
    """

    catalog: Catalog
    venue: str
    bar: str
    symbols: Sequence[str] | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    max_assets: int | None = None

    def load(self) -> ScanBars:
        bar_ns = bar_interval_ns(self.bar)
        datasets = [d for d in self.catalog.datasets() if d.startswith("bars_") and self.venue in self.catalog.venues(d)
                    and bar_ns % bar_interval_ns(d) == 0]  # fmt: skip
        if not datasets:
            raise CatalogError(f"no bars for venue {self.venue} at a size dividing {self.bar} in {self.catalog.root}")
        stored = {d: set(self.catalog.symbols(d, self.venue)) for d in datasets}
        symbols = list(self.symbols) if self.symbols is not None else sorted(set().union(*stored.values()))
        unknown = [s for s in symbols if not any(s in held for held in stored.values())]
        if unknown:  # (they would be rows missing on every bar: a whole scan of VETO, review 2026-12-06)
            raise CatalogError(f"no {self.venue} bars at a size dividing {self.bar} for {unknown}")
        if self.max_assets is not None:
            symbols = symbols[: self.max_assets]
        start, end = self.start_ns, self.end_ns
        if start is None or end is None:
            # Each symbol's span in the dataset align_bars reads it from (the coarsest that holds
            # it); the end is its last bar's close, at that dataset's size (review 2026-12-06: the
            # last 1-minute bar's open + 5 minutes added an empty bar).
            source = {}
            for d in sorted(datasets, key=bar_interval_ns):  # finest first: the coarsest wins
                for sym in stored[d]:
                    source[sym] = d
            wanted = {(source[s], s) for s in symbols}
            spans = [(p.first_ns, p.last_ns + bar_interval_ns(p.dataset)) for p in self.catalog.partitions()
                     if p.venue == self.venue and (p.dataset, p.symbol) in wanted]  # fmt: skip
            if not spans:
                raise CatalogError(f"no stored bars for {symbols[:5]}... on {self.venue}")
            start = min(a for a, _ in spans) if start is None else start
            end = max(b for _, b in spans) if end is None else end
        bars = _align.align_bars(self.catalog, self.venue, symbols, start, end, self.bar)
        return from_catalog(bars, name=f"{self.venue}_{self.bar}")
