"""The typed scan record: one per bar, as Arrow/Parquet (cold) and as framed bytes (hot stream).

Features of a window that is not ready yet (fewer than W returns, or fewer than 2 eligible
assets) are NaN and ``ready`` is False; once ready, every feature is finite (input NaNs are
masked out and never reach the output).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Iterable, Sequence

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "ATTACK",
    "VETO",
    "RecordChecksumError",
    "ScanRecord",
    "WindowFeatures",
    "decode_record",
    "encode_record",
    "records_to_table",
    "write_parquet",
]

ATTACK = "ATTACK"
VETO = "VETO"


class WindowFeatures(msgspec.Struct, frozen=True, kw_only=True):
    """Spectral features of one window W at one bar."""

    window: int
    ready: bool
    lambda_max: float
    entropy: float  # normalised to [0, 1]; NaN on the signal-only path
    absorption: float  # NaN on the signal-only path
    mp_edge: float
    velocity: float
    n_assets: int  # eligible assets N_eff
    n_low_coverage: int  # excluded: too few real returns in the window (incl. listed/delisted)
    n_zero_variance: int  # excluded: constant price in the window
    n_missing_returns: int  # masked return cells in the window (all assets)
    shrinkage: float  # alpha of (1-a) C + a I applied (0 unless singular)
    error_bound: float  # certified bound on |lambda_max error| / lambda_max (0 when solved exactly)
    lanczos_steps: int
    exact: bool  # lambda_max came from an exact solver on this bar


class ScanRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One scan: timestamp, per-window features, regime and data-quality counts."""

    ts_ns: int
    bar_index: int
    windows: tuple[WindowFeatures, ...]
    vel_div: float
    instability: float
    regime: str
    veto_reasons: tuple[str, ...]
    failed_inputs: tuple[str, ...]
    n_assets: int  # universe size
    n_real_bars: int  # real bars on this scan
    n_missing_bars: int  # assets with no real bar on this scan
    n_bad_prices: int  # bars flagged real but with a NaN / non-positive close (masked, counted)

    def window(self, w: int) -> WindowFeatures:
        for f in self.windows:
            if f.window == w:
                return f
        raise KeyError(f"window {w} not in record (have {[f.window for f in self.windows]})")


_WINDOW_FIELDS = [f for f in WindowFeatures.__struct_fields__ if f != "window"]


def records_to_table(records: Sequence[ScanRecord]) -> pa.Table:
    """Flat Arrow table: one row per scan, per-window columns suffixed ``_w<W>``."""
    if not records:
        raise ValueError("no scan records to convert")
    windows = [f.window for f in records[0].windows]
    cols: dict[str, list] = {
        "ts_ns": [r.ts_ns for r in records],
        "bar_index": [r.bar_index for r in records],
        "vel_div": [r.vel_div for r in records],
        "instability": [r.instability for r in records],
        "regime": [r.regime for r in records],
        "veto_reasons": [";".join(r.veto_reasons) for r in records],
        "failed_inputs": [";".join(r.failed_inputs) for r in records],
        "n_assets": [r.n_assets for r in records],
        "n_real_bars": [r.n_real_bars for r in records],
        "n_missing_bars": [r.n_missing_bars for r in records],
        "n_bad_prices": [r.n_bad_prices for r in records],
    }
    for k, w in enumerate(windows):
        for name in _WINDOW_FIELDS:
            cols[f"{name}_w{w}"] = [getattr(r.windows[k], name) for r in records]
    table = pa.table(cols)
    ts = pa.array(cols["ts_ns"], type=pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    return table.append_column("ts", ts)


def write_parquet(records: Sequence[ScanRecord], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(records_to_table(records), path, compression="zstd")
    return path


# --------------------------------------------------------------------------- hot-path framing

_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(ScanRecord)


class RecordChecksumError(ValueError):
    """A framed scan record whose CRC-32 does not match its payload (corrupt across a boundary)."""


def encode_record(record: ScanRecord) -> bytes:
    """msgpack payload followed by its CRC-32 (4 bytes, little endian), for rings and sockets."""
    payload = _ENC.encode(record)
    return payload + zlib.crc32(payload).to_bytes(4, "little")


def decode_record(frame: bytes) -> ScanRecord:
    if len(frame) < 5:
        raise RecordChecksumError(f"frame of {len(frame)} bytes is too short")
    payload, crc = frame[:-4], int.from_bytes(frame[-4:], "little")
    if zlib.crc32(payload) != crc:
        raise RecordChecksumError(f"scan record checksum mismatch ({zlib.crc32(payload):#010x} != {crc:#010x})")
    return _DEC.decode(payload)


def iter_frames(records: Iterable[ScanRecord]) -> Iterable[bytes]:
    for r in records:
        yield encode_record(r)
