"""In-memory Arrow window for the hot path: the last ``capacity`` bars of N assets.

A ring buffer of preallocated numpy arrays (no allocation per push); ``view()`` returns the
window oldest-first as (N, W) arrays with the mask of real bars, ``to_arrow()`` a RecordBatch
(one row per bar, one list per field) for the grid or the cold store. Single writer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["BarWindow"]


class BarWindow:
    """The last ``capacity`` closes of ``symbols`` (NaN + mask False where a bar is missing)."""

    __slots__ = ("symbols", "capacity", "_ts", "_close", "_mask", "_head", "_count")

    def __init__(self, symbols: Sequence[str], capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be unique")
        self.symbols = tuple(symbols)
        self.capacity = capacity
        n = len(self.symbols)
        self._ts = np.zeros(capacity, dtype=np.int64)
        self._close = np.full((n, capacity), np.nan)
        self._mask = np.zeros((n, capacity), dtype=bool)
        self._head = 0  # next slot to write
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def last_ts_ns(self) -> int | None:
        return int(self._ts[(self._head - 1) % self.capacity]) if self._count else None

    def push(self, ts_ns: int, close: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Append one bar for all assets; ``ts_ns`` must increase strictly."""
        last = self.last_ts_ns
        if last is not None and ts_ns <= last:
            raise ValueError(f"bar ts_ns {ts_ns} not after the last one {last}")
        close = np.asarray(close, dtype=np.float64)
        if close.shape != (len(self.symbols),):
            raise ValueError(f"close must have shape ({len(self.symbols)},), got {close.shape}")
        real = np.isfinite(close) if mask is None else (np.asarray(mask, dtype=bool) & np.isfinite(close))
        h = self._head
        self._ts[h] = ts_ns
        self._close[:, h] = np.where(real, close, np.nan)
        self._mask[:, h] = real
        self._head = (h + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def _order(self) -> np.ndarray:
        start = (self._head - self._count) % self.capacity
        return (start + np.arange(self._count)) % self.capacity

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts_ns (W,), close (N, W), mask (N, W)), oldest first (copies)."""
        o = self._order()
        return self._ts[o], self._close[:, o], self._mask[:, o]

    def to_arrow(self) -> pa.RecordBatch:
        ts, close, mask = self.view()
        n = len(self.symbols)
        return pa.RecordBatch.from_arrays(
            [
                pa.array(ts, pa.int64()),
                pa.FixedSizeListArray.from_arrays(pa.array(close.T.ravel(), pa.float64()), n),
                pa.FixedSizeListArray.from_arrays(pa.array(mask.T.ravel(), pa.bool_()), n),
            ],
            schema=pa.schema(
                [pa.field("ts_ns", pa.int64()), pa.field("close", pa.list_(pa.float64(), n)),
                 pa.field("mask", pa.list_(pa.bool_(), n))],
                metadata={b"symbols": ",".join(self.symbols).encode()},
            ),
        )  # fmt: skip
