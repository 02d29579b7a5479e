"""TEMPORARY ADAPTER: aligned bar matrices from the shared gzipped CSVs.

This module stands in for ``dolphin.data`` (the lead's catalog, issue 2) until it provides
aligned matrices; the lead replaces it at merge. It reads one ``<SYMBOL>.csv.gz`` per asset
(columns ``open_time_ms,open,high,low,close,volume``) and aligns them on the union of bar
timestamps: ``closes`` is T x N float64 with NaN where an asset has no bar, ``mask`` is
T x N bool (True = a real bar). Nothing is filled.

``dolphin scan`` takes its data through the :class:`BarSource` protocol, so swapping this
adapter for the catalog is a one-line change in the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

__all__ = ["AlignedBars", "BarSource", "CsvDirSource", "find_bar_dirs"]


@dataclass(frozen=True)
class AlignedBars:
    """Bars of N assets on one clock: ts_ms (T,), closes (T x N, NaN = none), mask (T x N, True = real)."""

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

    def load(self) -> AlignedBars: ...


def find_bar_dirs(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) that hold ``*.csv.gz`` bar files, most files first."""
    dirs = {p.parent for p in root.rglob("*.csv.gz")}
    return sorted(dirs, key=lambda p: (-len(list(p.glob("*.csv.gz"))), str(p)))


@dataclass(frozen=True)
class CsvDirSource:
    """One folder of per-symbol gzipped OHLCV CSVs (temporary, see module docstring)."""

    directory: Path
    symbols: Sequence[str] | None = None
    max_assets: int | None = None

    def load(self) -> AlignedBars:
        import pandas as pd

        files = sorted(self.directory.glob("*.csv.gz"))
        if self.symbols is not None:
            wanted = set(self.symbols)
            files = [f for f in files if f.name.split(".")[0] in wanted]
        if self.max_assets is not None:
            files = files[: self.max_assets]
        if not files:
            raise FileNotFoundError(f"no *.csv.gz bar files in {self.directory}")
        frames: list[tuple[str, np.ndarray, np.ndarray]] = []
        for f in files:
            df = pd.read_csv(f, usecols=["open_time_ms", "close"])
            df = df.drop_duplicates("open_time_ms", keep="last").sort_values("open_time_ms")
            frames.append((f.name.split(".")[0], df["open_time_ms"].to_numpy(np.int64), df["close"].to_numpy(np.float64)))
        ts = np.unique(np.concatenate([t for _, t, _ in frames]))
        closes = np.full((ts.size, len(frames)), np.nan)
        for j, (_, t, c) in enumerate(frames):
            closes[np.searchsorted(ts, t), j] = c
        mask = np.isfinite(closes)
        return AlignedBars(ts, tuple(s for s, _, _ in frames), closes, mask, name=self.directory.name)
