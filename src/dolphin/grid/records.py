"""The typed values dolphin keeps in the state grid.

Every record is a frozen msgspec Struct. The embedded backends store them as msgpack
(:func:`encode_value` / :func:`decode_value`); the Hazelcast backend stores them with Compact
serialization (``dolphin.grid.hazelcast_backend``), under the Compact type names listed in
:data:`COMPACT_TYPE_NAMES`. Plain ``str``, ``int``, ``float``, ``bool`` and ``bytes`` values are
allowed too. Equality (used by compare-and-set) is value equality of the whole record in both
backends: field by field here, byte by byte of the serialized form in Hazelcast.
"""

from __future__ import annotations

import struct
import zlib
from typing import Union

import msgspec

__all__ = [
    "AcbState",
    "COMPACT_TYPE_NAMES",
    "EnvelopeRecord",
    "FeatureRecord",
    "GridValue",
    "HealthRecord",
    "PostureRecord",
    "SignalRecord",
    "decode_value",
    "encode_value",
    "feature_checksum",
]


class FeatureRecord(msgspec.Struct, frozen=True, tag="feat", array_like=True):
    """Per-asset features in ``DOLPHIN_FEATURES`` (key: asset).

    ``log_returns`` are close-to-close log returns of the last bars, oldest first, ending at
    bar ``last_bar``; the order-book slot holds WOBI in [-1, 1], depth quality in [0, 1] and the
    spread in basis points (NaN when no book was seen). ``crc`` is :func:`feature_checksum` of the
    record as its writer built it (0: not sealed); a reader in another process verifies it before
    using the returns (the scan's zero-trust gate: checksummed where it crossed a process boundary).
    """

    asset: str
    ts_ns: int
    last_bar: int
    log_returns: tuple[float, ...]
    wobi: float = float("nan")
    depth_quality: float = float("nan")
    spread_bps: float = float("nan")
    crc: int = 0


class HealthRecord(msgspec.Struct, frozen=True, tag="health", array_like=True):
    """A health reading in ``DOLPHIN_HEALTH_GRID`` (key: ``"<layer>/<sensor>"``)."""

    layer: str
    sensor: str
    ts_ns: int
    value: float
    ok: bool
    reason: str = ""
    seq: int = 0


class SignalRecord(msgspec.Struct, frozen=True, tag="signal", array_like=True):
    """A trading signal published on the ``DOLPHIN_SIGNALS`` topic."""

    asset: str
    ts_ns: int
    side: str
    strength: float
    vel_div: float = 0.0


class PostureRecord(msgspec.Struct, frozen=True, tag="posture", array_like=True):
    """A posture change published on the ``DOLPHIN_POSTURE`` topic."""

    ts_ns: int
    posture: str
    r_total: float
    reason: str = ""


class AcbState(msgspec.Struct, frozen=True, tag="acb", array_like=True):
    """The ACB v6 state written by the ACB entry processor (``dolphin.grid.acb``)."""

    stress_count: float
    cut_frac: float
    version: int
    ts_ns: int


class EnvelopeRecord(msgspec.Struct, frozen=True, tag="envelope", array_like=True):
    """The MC-Forewarner envelope verdict, replaced only by compare-and-set on its version."""

    version: int
    ts_ns: int
    decision_value: float
    zone: str
    model_id: str = ""


GridValue = Union[
    None,
    bool,
    int,
    float,
    str,
    bytes,
    FeatureRecord,
    HealthRecord,
    SignalRecord,
    PostureRecord,
    AcbState,
    EnvelopeRecord,
]

#: Compact type names used by the Hazelcast backend (AcbState's must match the Java processor).
COMPACT_TYPE_NAMES: dict[type, str] = {
    FeatureRecord: "dolphin.FeatureRecord",
    HealthRecord: "dolphin.HealthRecord",
    SignalRecord: "dolphin.SignalRecord",
    PostureRecord: "dolphin.PostureRecord",
    AcbState: "dolphin.AcbState",
    EnvelopeRecord: "dolphin.EnvelopeRecord",
}



class _Bytes(msgspec.Struct, frozen=True, tag="bytes", array_like=True):
    """Wrapper: msgspec unions allow one str-like type, so bytes travel inside a record."""

    data: bytes


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(
    Union[
        None, bool, int, float, str, _Bytes,
        FeatureRecord, HealthRecord, SignalRecord, PostureRecord, AcbState, EnvelopeRecord,
    ]
)


def encode_value(value: GridValue) -> bytes:
    """Serialize a grid value (msgpack; records carry their tag)."""
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if isinstance(value, bytes):
        value = _Bytes(value)
    try:
        return _ENCODER.encode(value)
    except TypeError as exc:
        raise TypeError(f"value of type {type(value).__name__} cannot be stored in the grid: {exc}") from None


def decode_value(data: bytes | memoryview) -> GridValue:
    """Inverse of :func:`encode_value`."""
    value = _DECODER.decode(data)
    return value.data if isinstance(value, _Bytes) else value


def feature_checksum(asset: str, ts_ns: int, last_bar: int, returns: bytes) -> int:
    """CRC-32 of a FeatureRecord's identity and its returns as little-endian float64 bytes
    (oldest first); never 0, so 0 can mean "not sealed"."""
    head = asset.encode() + b"\0" + struct.pack("<qq", ts_ns, last_bar)
    return zlib.crc32(returns, zlib.crc32(head)) or 1
