"""Where scan records go: the hot-path frame stream and the cold Parquet store, behind one protocol.

``FrameSink`` turns each record into a CRC-checked frame (:func:`encode_record`) and hands it to
any transport ``send(frame) -> bool`` (a shared-memory ring, a socket, a grid topic); a False
return is backpressure and is counted, never hidden. ``ParquetSink`` appends records to a
Parquet file in row groups without holding the whole run in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import pyarrow.parquet as pq

from dolphin.scan.record import ScanRecord, encode_record, records_to_table

__all__ = ["FrameSink", "ParquetSink", "ScanSink"]


class ScanSink(Protocol):
    def publish(self, record: ScanRecord) -> None: ...

    def close(self) -> None: ...


class FrameSink:
    """Hot-path stream: one framed record per bar to ``send``; counts sent and backpressured frames."""

    def __init__(self, send: Callable[[bytes], bool]) -> None:
        self._send = send
        self.sent = 0
        self.backpressured = 0

    def publish(self, record: ScanRecord) -> None:
        if self._send(encode_record(record)):
            self.sent += 1
        else:
            self.backpressured += 1

    def close(self) -> None:
        return None


class ParquetSink:
    """Cold store: records appended to one Parquet file, ``rows_per_group`` at a time."""

    def __init__(self, path: Path, rows_per_group: int = 4096) -> None:
        if rows_per_group < 1:
            raise ValueError(f"rows_per_group must be >= 1, got {rows_per_group}")
        self.path = path
        self._rows = rows_per_group
        self._buf: list[ScanRecord] = []
        self._writer: pq.ParquetWriter | None = None
        self.written = 0

    def publish(self, record: ScanRecord) -> None:
        self._buf.append(record)
        if len(self._buf) >= self._rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        table = records_to_table(self._buf)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table)
        self.written += len(self._buf)
        self._buf = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
