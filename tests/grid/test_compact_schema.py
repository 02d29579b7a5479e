"""Compact schema evolution of grid records (no member needed: the client's own serializer)."""

from __future__ import annotations

import math

import msgspec
import pytest
from hazelcast.config import Config
from hazelcast.serialization.compact import SchemaNotReplicatedError
from hazelcast.serialization.service import SerializationServiceV1

from dolphin.grid.hazelcast_backend import RecordCompactSerializer
from dolphin.grid.records import COMPACT_TYPE_NAMES, FeatureRecord


class _FeatureRecordBeforeCrc(msgspec.Struct, frozen=True, array_like=True):
    """FeatureRecord as workers wrote it before `crc` was added (a rolling upgrade)."""

    asset: str
    ts_ns: int
    last_bar: int
    log_returns: tuple[float, ...]
    wobi: float = float("nan")
    depth_quality: float = float("nan")
    spread_bps: float = float("nan")


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    COMPACT_TYPE_NAMES[_FeatureRecordBeforeCrc] = COMPACT_TYPE_NAMES[FeatureRecord]
    try:
        out = []
        for cls in (_FeatureRecordBeforeCrc, FeatureRecord):
            c = Config()
            c.compact_serializers = [RecordCompactSerializer(cls)]
            out.append(SerializationServiceV1(c))
        yield out
    finally:
        del COMPACT_TYPE_NAMES[_FeatureRecordBeforeCrc]


def _to_data(svc, obj, peers):  # type: ignore[no-untyped-def]
    # The cluster replicates the writer's schema to every reader; here by hand.
    try:
        return svc.to_data(obj)
    except SchemaNotReplicatedError as e:
        svc._compact_stream_serializer.register_schema_to_type(e.schema, e.clazz)
        for p in peers:
            p._compact_stream_serializer.register_schema_to_id(e.schema)
        return svc.to_data(obj)


def test_a_record_written_before_a_field_was_added_reads_with_its_default(services) -> None:  # type: ignore[no-untyped-def]
    """Before: reading `crc` from an old record raised, so one not-yet-upgraded worker failed the
    whole matrix read; now it reads as unsealed (crc 0), which the scan treats as unverified."""
    old, new = services
    data = _to_data(old, _FeatureRecordBeforeCrc("BTCUSDT", 1, 2, (0.1, float("nan")), 0.0, 0.5, 1.5), (old, new))
    rec = new.to_object(data)
    assert isinstance(rec, FeatureRecord) and rec.crc == 0
    assert rec.asset == "BTCUSDT" and rec.log_returns[0] == 0.1 and math.isnan(rec.log_returns[1])
    assert (rec.depth_quality, rec.spread_bps) == (0.5, 1.5)
    back = old.to_object(_to_data(new, FeatureRecord("ETHUSDT", 3, 4, (0.2,), crc=7), (old, new)))
    assert isinstance(back, _FeatureRecordBeforeCrc) and back.asset == "ETHUSDT"
