"""The typed values dolphin keeps in the state grid.

Every record is a frozen msgspec Struct. The embedded backends store them as msgpack
(:func:`encode_value` / :func:`decode_value`); the Hazelcast backend stores them with Compact
serialization (``dolphin.grid.hazelcast_backend``), under the Compact type names listed in
:data:`COMPACT_TYPE_NAMES`. Plain ``str``, ``int``, ``float``, ``bool`` and ``bytes`` values are
allowed too. Equality (used by compare-and-set) is value equality of the whole record in both
backends: field by field here, byte by byte of the serialized form in Hazelcast.

Every backend validates a value before storing it (:func:`canonical_value`, the rules above
``_checked``), so a value the grid accepts reads back on every backend and a refused one is a
``GridValueError`` on every backend.
"""

from __future__ import annotations

import re
import struct
import typing
import zlib
from typing import Annotated, Union

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
    "canonical_value",
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

# ---- validation on write: the same value gets the same answer on every backend
#
# A value is exactly a bool, int, float, str or bytes, or a record of exactly one of the classes
# above (subclasses such as numpy scalars or enums are refused: convert them first). Ints are
# 64-bit signed everywhere (Hazelcast stores Java longs). A record's fields take their declared
# types, as msgspec decodes them: an int where a float is declared becomes that float, a list
# where a tuple is declared becomes the tuple; None, a bool where a number is declared, numpy
# scalars and out-of-range ints are refused. Before this check a record like
# HealthRecord(value=None) was stored by the embedded backends and then broke every read of the
# map; Hazelcast refused some such values and silently converted others.

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
_PLAIN_TYPES = (bool, int, float, str, bytes)


class _RecordSpec:
    """How one record class is checked: its exact field types (the fast path) and a decoder of
    a mirror struct (same tag and layout; ints limited to int64; float tuples kept raw)."""

    def __init__(self, cls: type) -> None:
        hints = typing.get_type_hints(cls)
        self.cls = cls
        self.tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
        self.fields: tuple[str, ...] = cls.__struct_fields__  # type: ignore[attr-defined]
        self.types = tuple(typing.get_origin(hints[f]) or hints[f] for f in self.fields)
        mirror = []
        for f, t in zip(self.fields, self.types):
            mirror.append((f, _Int64 if t is int else msgspec.Raw if t is tuple else hints[f]))
        self.raw_fields = [f for f, t in zip(self.fields, self.types) if t is tuple]
        self.int_indexes = [i for i, t in enumerate(self.types) if t is int]
        self._check = msgspec.msgpack.Decoder(
            msgspec.defstruct(f"_Check{cls.__name__}", mirror, tag=self.tag, array_like=True)
        )

    def as_given(self, fields: tuple[object, ...], raw: bytes) -> bool:
        """The record (its ``fields``, encoded as ``raw``) is storable exactly as given: every
        field of its declared type, ints within int64, float tuples of floats only."""
        if tuple(map(type, fields)) != self.types:
            return False
        for i in self.int_indexes:
            if not INT64_MIN <= fields[i] <= INT64_MAX:  # type: ignore[operator]
                return False
        return not self.raw_fields or self.problem(raw) is None

    def problem(self, raw: bytes) -> str | None:
        """Why the encoded record ``raw`` is not storable as is (None: it is)."""
        try:
            checked = self._check.decode(raw)
        except msgspec.ValidationError as exc:
            return self.where(str(exc))
        for f in self.raw_fields:
            if not _float64_array(getattr(checked, f)):
                return f"field {f!r} must hold floats only"
        return None

    def where(self, msg: str) -> str:
        # msgspec says "at `$[k]`": element k of the array is field k - 1 (element 0 is the tag)
        m = re.search(r"\$\[(\d+)\]", msg)
        if m and 1 <= int(m.group(1)) <= len(self.fields):
            msg = f"{msg} (field {self.fields[int(m.group(1)) - 1]!r})"
        return msg


def _float64_array(raw: msgspec.Raw) -> bool:
    """The msgpack array ``raw`` holds float64 elements only. Exact, not a heuristic: a 0xcb
    marker means its element is 9 bytes long, so the next element starts 9 bytes further on."""
    b = bytes(raw)
    if not b:
        return False
    head = b[0]
    if 0x90 <= head <= 0x9F:
        n, start = head & 0x0F, 1
    elif head == 0xDC:
        n, start = int.from_bytes(b[1:3], "big"), 3
    elif head == 0xDD:
        n, start = int.from_bytes(b[1:5], "big"), 5
    else:
        return False
    return len(b) == start + 9 * n and b[start::9] == b"\xcb" * n


_SPECS: dict[type, _RecordSpec] = {cls: _RecordSpec(cls) for cls in COMPACT_TYPE_NAMES}


def _refuse(msg: str) -> Exception:
    from dolphin.grid.protocol import GridValueError  # protocol imports this module

    return GridValueError(msg)


def _checked(value: object) -> tuple[GridValue, bytes]:
    """(the value as every backend stores it, its msgpack encoding); GridValueError if refused."""
    t = type(value)
    if t in _PLAIN_TYPES:
        if t is int and not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
            raise _refuse(f"grid ints are 64-bit signed (a Java long), got {value}")
        try:
            return value, _ENCODER.encode(_Bytes(value) if t is bytes else value)  # type: ignore[arg-type]
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise _refuse(f"grid strings are UTF-8: {exc}") from None
    spec = _SPECS.get(t)
    if spec is None:
        raise _refuse(
            "grid values are exactly str/int/float/bool/bytes or a dolphin.grid.records record "
            f"(convert numpy scalars and enums first), got {type(value).__name__} {value!r:.80}"
        )
    fields = msgspec.structs.astuple(value)  # type: ignore[arg-type]
    try:
        raw = _ENCODER.encode(value)
        if spec.as_given(fields, raw):
            return value, raw  # type: ignore[return-value]  # the fast path: stored as given
    except (TypeError, OverflowError, UnicodeEncodeError):
        pass  # a numpy scalar, an int beyond 64 bits, a lone surrogate: the slow path says which
    # normalise (int where a float is declared, list where a tuple is) and validate
    name = t.__name__
    try:
        norm = msgspec.convert([spec.tag, *fields], t)
        raw = _ENCODER.encode(norm)
    except msgspec.ValidationError as exc:
        raise _refuse(f"{name} cannot be stored in the grid: {spec.where(str(exc))}") from None
    except OverflowError:
        raise _refuse(f"{name} cannot be stored in the grid: an int field is beyond 64 bits") from None
    except UnicodeEncodeError as exc:
        raise _refuse(f"{name} cannot be stored in the grid: its strings must be UTF-8: {exc}") from None
    problem = spec.problem(raw)
    if problem is not None:
        raise _refuse(f"{name} cannot be stored in the grid: {problem}")
    return norm, raw


def canonical_value(value: object) -> GridValue:
    """``value`` as the grid stores it (validated and normalised; what a read returns).

    Raises ``GridValueError`` for a value the grid refuses (see the rules above)."""
    return _checked(value)[0]


def encode_value(value: object) -> bytes:
    """Serialize a grid value (msgpack; records carry their tag), validated and normalised as
    :func:`canonical_value`: equal values encode to equal bytes (compare-and-set compares them).

    Raises ``GridValueError`` for a value the grid refuses."""
    return _checked(value)[1]


def decode_value(data: bytes | memoryview) -> GridValue:
    """Inverse of :func:`encode_value`; ``GridValueError`` if the bytes are not a grid value
    (e.g. written by an older, unvalidated writer)."""
    try:
        value = _DECODER.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise _refuse(f"a stored grid value cannot be decoded: {exc}") from None
    return value.data if isinstance(value, _Bytes) else value


def feature_checksum(asset: str, ts_ns: int, last_bar: int, returns: bytes) -> int:
    """CRC-32 of a FeatureRecord's identity and its returns as little-endian float64 bytes
    (oldest first); never 0, so 0 can mean "not sealed"."""
    head = asset.encode() + b"\0" + struct.pack("<qq", ts_ns, last_bar)
    return zlib.crc32(returns, zlib.crc32(head)) or 1
