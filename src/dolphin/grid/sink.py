"""Hot to cold: snapshot the grid's feature and health maps into Parquet on a schedule.

Every ``interval_s`` (hourly by default) :class:`GridSnapshotSink` reads ``DOLPHIN_FEATURES``
and ``DOLPHIN_HEALTH_GRID`` and writes one Parquet file per map::

    <sink_dir>/<MAP>/date=YYYY-MM-DD/snapshot-<snapshot_ts_ns>.parquet

with one row per key: ``snapshot_ts_ns``, ``key`` and the record's fields (float lists as
``list<double>``). :func:`read_snapshot` returns, for a time ``t``, the latest snapshot taken
at or before ``t`` as ``{key: record}``, equal to what the live grid held, so a backtest reads
exactly what the live system saw. (The partitioned layout is the catalog's hive style; the
lead's catalog can register these folders as-is.)
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from dolphin.grid.protocol import FEATURES_MAP, HEALTH_MAP, Grid, GridError
from dolphin.grid.records import FeatureRecord, HealthRecord

__all__ = ["GridSnapshotSink", "read_snapshot", "snapshot_times"]

log = logging.getLogger(__name__)

RECORD_OF_MAP: dict[str, type] = {FEATURES_MAP: FeatureRecord, HEALTH_MAP: HealthRecord}


def _table(records: dict[str, object], cls: type, snapshot_ts_ns: int) -> pa.Table:
    keys = sorted(records)
    cols: dict[str, list[object]] = {"snapshot_ts_ns": [snapshot_ts_ns] * len(keys), "key": keys}
    for f in cls.__struct_fields__:  # type: ignore[attr-defined]
        cols[f] = [getattr(records[k], f) for k in keys]
        if f == "log_returns":
            cols[f] = [list(v) for v in cols[f]]  # type: ignore[arg-type]
    return pa.table(cols)


class GridSnapshotSink:
    """Writes grid snapshots to Parquet; ``tick()`` writes when one is due (clock injected)."""

    def __init__(
        self,
        grid: Grid,
        out_dir: Path,
        *,
        interval_s: float = 3600.0,
        maps: Sequence[str] = (FEATURES_MAP, HEALTH_MAP),
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        unknown = [m for m in maps if m not in RECORD_OF_MAP]
        if unknown:
            raise ValueError(f"no snapshot schema for maps {unknown}; known: {sorted(RECORD_OF_MAP)}")
        self._grid = grid
        self._out = Path(out_dir)
        self._interval_ns = int(interval_s * 1e9)
        self._maps = tuple(maps)
        self._clock_ns = clock_ns
        self._next_due_ns: int | None = None
        self._stop = threading.Event()
        self.snapshots = 0
        self.failures = 0
        self._failing = 0  # failed attempts since the last snapshot written
        self.skipped_values = 0

    def run_once(self) -> list[Path]:
        """Snapshot every map now; return the files written."""
        ts = self._clock_ns()
        day = datetime.fromtimestamp(ts / 1e9, tz=timezone.utc).strftime("%Y-%m-%d")
        written: list[Path] = []
        for name in self._maps:
            cls = RECORD_OF_MAP[name]
            entries = self._grid.map(name).entries()
            records = {k: v for k, v in entries.items() if isinstance(v, cls)}
            self.skipped_values += len(entries) - len(records)
            folder = self._out / name / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"snapshot-{ts}.parquet"
            tmp = path.with_suffix(".parquet.tmp")
            pq.write_table(_table(records, cls, ts), tmp)
            tmp.replace(path)  # readers never see a half-written file
            written.append(path)
        self.snapshots += 1
        return written

    def tick(self) -> list[Path]:
        """Write a snapshot if one is due (the first call always writes).

        A failed snapshot is counted and tried again at the next tick; only a written one
        moves the next due time an interval on."""
        now = self._clock_ns()
        if self._next_due_ns is not None and now < self._next_due_ns:
            return []
        try:
            written = self.run_once()
        except (GridError, OSError, pa.ArrowException) as exc:  # counted; the next tick tries again
            self.failures += 1
            self._failing += 1
            # the first failure of a run is an error; its retries (every tick) are counted quietly
            log.log(logging.ERROR if self._failing == 1 else logging.DEBUG,
                    "grid snapshot failed (retrying at every tick): %s", exc)  # fmt: skip
            return []
        if self._failing:
            log.warning("grid snapshot written after %d failed attempts", self._failing)
            self._failing = 0
        self._next_due_ns = now + self._interval_ns
        return written

    def run_forever(self, poll_s: float = 1.0) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(poll_s)

    def stop(self) -> None:
        self._stop.set()


def snapshot_times(out_dir: Path, map_name: str) -> list[int]:
    """Snapshot times (ns) available for ``map_name``, ascending."""
    return sorted(int(p.stem.split("-", 1)[1]) for p in (Path(out_dir) / map_name).glob("date=*/snapshot-*.parquet"))


def read_snapshot(out_dir: Path, map_name: str, at_ns: int) -> tuple[int, dict[str, object]] | None:
    """(snapshot_ts_ns, {key: record}) of the latest snapshot at or before ``at_ns``, or None."""
    times = [t for t in snapshot_times(out_dir, map_name) if t <= at_ns]
    if not times:
        return None
    ts = times[-1]
    day = datetime.fromtimestamp(ts / 1e9, tz=timezone.utc).strftime("%Y-%m-%d")
    table = pq.read_table(Path(out_dir) / map_name / f"date={day}" / f"snapshot-{ts}.parquet")
    cls = RECORD_OF_MAP[map_name]
    fields = cls.__struct_fields__  # type: ignore[attr-defined]
    rows = table.to_pylist()
    out: dict[str, object] = {}
    for row in rows:
        kwargs = {f: row[f] for f in fields}
        if "log_returns" in kwargs:
            kwargs["log_returns"] = tuple(kwargs["log_returns"])
        out[row["key"]] = cls(**kwargs)
    return ts, out
