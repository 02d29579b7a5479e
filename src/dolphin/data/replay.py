"""Replay of catalog events in timestamp order, at real pace or any speed-up.

Streams are (dataset, venue, symbol) triples; their rows are merged by ``ts_ns`` (ties keep
stream order, then row order). ``speed=1`` replays at the recorded pace, ``speed=60`` sixty
times faster, ``speed=None`` as fast as possible. Clock and sleep are injected so tests run
the pacing deterministically.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import pyarrow as pa

from dolphin.data.catalog import Catalog

__all__ = ["ReplayEvent", "Replay"]


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    ts_ns: int
    dataset: str
    venue: str
    symbol: str
    row: dict


class Replay:
    """Iterate the merged events of several catalog streams in time order."""

    def __init__(
        self,
        catalog: Catalog,
        streams: Sequence[tuple[str, str, str]],
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        speed: float | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
        batch_rows: int = 65_536,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (as fast as possible), got {speed}")
        if not streams:
            raise ValueError("no streams to replay")
        self.catalog = catalog
        self.streams = list(streams)
        self.start_ns, self.end_ns = start_ns, end_ns
        self.speed = speed
        self._clock_ns, self._sleep = clock_ns, sleep
        self.batch_rows = batch_rows
        self.events_emitted = 0
        self.max_lag_ns = 0  # how far behind schedule the replay ever fell

    def _stream(self, k: int) -> Iterator[tuple[int, int, int, ReplayEvent]]:
        dataset, venue, symbol = self.streams[k]
        table: pa.Table = self.catalog.read(dataset, venue, symbol, self.start_ns, self.end_ns)
        seq = 0
        for batch in table.to_batches(max_chunksize=self.batch_rows):
            for row in batch.to_pylist():
                yield row["ts_ns"], k, seq, ReplayEvent(row["ts_ns"], dataset, venue, symbol, row)
                seq += 1

    def __iter__(self) -> Iterator[ReplayEvent]:
        merged = heapq.merge(*(self._stream(k) for k in range(len(self.streams))))
        t0_data: int | None = None
        t0_wall = 0
        for ts, _, _, event in merged:
            if self.speed is not None:
                if t0_data is None:
                    t0_data, t0_wall = ts, self._clock_ns()
                due = t0_wall + int((ts - t0_data) / self.speed)
                now = self._clock_ns()
                if due > now:
                    self._sleep((due - now) / 1e9)
                else:
                    self.max_lag_ns = max(self.max_lag_ns, now - due)
            self.events_emitted += 1
            yield event
