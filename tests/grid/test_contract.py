"""The grid contract, run against every backend: in-process, shared memory, Hazelcast.

The same assertions hold for each; the one documented difference is that a processor with no
Java twin cannot run on Hazelcast (GridProcessorError) while the embedded backends run any
Python processor.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from dolphin.grid.acb import AcbProcessor, acb_cut_frac, acb_stress_count
from dolphin.grid.embedded import InProcessGrid
from dolphin.grid.protocol import (
    Grid,
    GridProcessorError,
    GridValueError,
    QuorumState,
    health_key,
)
from dolphin.grid.records import (
    AcbState,
    EnvelopeRecord,
    FeatureRecord,
    HealthRecord,
    PostureRecord,
    SignalRecord,
)
from dolphin.grid.shm import SharedMemoryGrid

HZ = [pytest.mark.hazelcast, pytest.mark.xdist_group("hazelcast")]
BACKENDS = ["process", "shm", pytest.param("hazelcast", marks=HZ)]


class Views:
    """A grid plus a way to open another view of the same data (another process's view)."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._opened: list[Grid] = []
        self._shm_name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
        self._request = request
        self.grid = self.open()

    def open(self, *, near_cache: tuple[str, ...] = ()) -> Grid:
        if self.kind == "process":
            if self._opened:
                return self._opened[0]
            g: Grid = InProcessGrid()
        elif self.kind == "shm":
            g = SharedMemoryGrid(self._shm_name, n_slots=256, slot_bytes=2048, ring_slots=256, ring_msg_bytes=512)
        else:
            from dolphin.grid.hazelcast_backend import HazelcastGrid

            cluster, members = self._request.getfixturevalue("hz_cluster")
            g = HazelcastGrid(
                cluster_name=cluster, members=members, near_cache_maps=near_cache, near_cache_ttl_s=2.0
            )
        self._opened.append(g)
        return g

    def close(self) -> None:
        for i, g in enumerate(reversed(self._opened)):
            if isinstance(g, SharedMemoryGrid):
                g.close(unlink=(i == len(self._opened) - 1))
            else:
                g.close()


@pytest.fixture(params=BACKENDS)
def views(request: pytest.FixtureRequest) -> Iterator[Views]:
    v = Views(request.param, request)
    try:
        yield v
    finally:
        v.close()


def name(prefix: str = "DOLPHIN_T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def listener_live(grid: Grid, topic: str, got: list[object]) -> None:
    """Publish probes until the listener receives one, then forget them (registration is async)."""
    deadline = time.monotonic() + 20
    while not got and time.monotonic() < deadline:
        grid.topic(topic).publish("probe")
        time.sleep(0.05)
    assert got, "listener never received a probe"
    time.sleep(0.2)
    got.clear()


def wait_for(pred: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


FEATURE = FeatureRecord("BTCUSDT", 1_700_000_000_000_000_000, 42, (0.001, -0.002, 0.0005), 0.25, 0.9, 1.5)
VALUES = [
    "text",
    7,
    -(2**40),
    3.25,
    True,
    b"\x00\x01binary",
    FEATURE,
    HealthRecord("L1", "quorum", 5, 1.0, True, "", 3),
    SignalRecord("ETHUSDT", 9, "SHORT", 0.7, -0.03),
    PostureRecord(11, "STALKER", 0.75, "staleness"),
    AcbState(2.5, 0.5, 3, 12),
    EnvelopeRecord(1, 13, 0.42, "GREEN", "svm-1"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_put_get_round_trip_every_value_type(views: Views, value: object) -> None:
    m = views.grid.map(name())
    assert m.get("k") is None
    m.put("k", value)  # type: ignore[arg-type]
    got = m.get("k")
    assert type(got) is type(value)
    assert got == value


def test_second_view_sees_writes_and_overwrites(views: Views) -> None:
    mname = name()
    other = views.open()
    views.grid.map(mname).put("a", 1)
    assert other.map(mname).get("a") == 1
    other.map(mname).put("a", 2)
    assert views.grid.map(mname).get("a") == 2


def test_bulk_keys_entries_size_remove_clear(views: Views) -> None:
    m = views.grid.map(name())
    data = {f"asset{i}": float(i) for i in range(20)}
    m.put_all(data)
    assert m.size() == 20
    assert sorted(m.keys()) == sorted(data)
    assert m.entries() == data
    assert m.get_all(["asset1", "asset3", "missing"]) == {"asset1": 1.0, "asset3": 3.0}
    assert m.remove("asset1") == 1.0
    assert m.remove("asset1") is None
    assert m.size() == 19
    m.clear()
    assert m.size() == 0 and m.get("asset2") is None


def test_maps_are_isolated_by_name(views: Views) -> None:
    a, b = views.grid.map(name()), views.grid.map(name())
    a.put("x", "in-a")
    assert b.get("x") is None
    assert b.keys() == []


def test_put_if_absent(views: Views) -> None:
    m = views.grid.map(name())
    assert m.put_if_absent("k", "first") is None
    assert m.put_if_absent("k", "second") == "first"
    assert m.get("k") == "first"


def test_replace_if_same_is_compare_and_set(views: Views) -> None:
    m = views.grid.map(name())
    env1 = EnvelopeRecord(1, 1, 0.1, "GREEN")
    env2 = EnvelopeRecord(2, 2, -0.3, "ORANGE")
    assert m.replace_if_same("env", env1, env2) is False  # absent
    m.put("env", env1)
    assert m.replace_if_same("env", EnvelopeRecord(1, 1, 0.1, "RED"), env2) is False
    assert m.get("env") == env1
    assert m.replace_if_same("env", env1, env2) is True
    assert m.get("env") == env2


def test_compare_and_set_race_loses_no_update(views: Views) -> None:
    """Threads (each with its own view) increment one counter by CAS: no increment is lost."""
    mname = name()
    views.grid.map(mname).put("n", 0)
    n_threads, per_thread = 4, 40
    grids = [views.open() for _ in range(n_threads)] if views.kind != "process" else [views.grid] * n_threads
    retries = [0] * n_threads

    def work(t: int) -> None:
        m = grids[t].map(mname)
        for _ in range(per_thread):
            while True:
                cur = m.get("n")
                if m.replace_if_same("n", cur, cur + 1):  # type: ignore[operator]
                    break
                retries[t] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert views.grid.map(mname).get("n") == n_threads * per_thread


def test_acb_processor_runs_atomically_where_the_data_lives(views: Views) -> None:
    m = views.grid.map(name("DOLPHIN_ACB"))
    signals, weights = [1.0, 0.5, 0.0, 1.0], [1.0, 1.0, 2.0, 0.75]
    cut = m.execute_on_key("acb", AcbProcessor(signals, weights, ts_ns=100))
    expected_count = acb_stress_count(signals, weights)
    assert cut == acb_cut_frac(expected_count)
    assert m.get("acb") == AcbState(expected_count, acb_cut_frac(expected_count), 1, 100)
    # concurrent processors never interleave: the version counts every application
    n_threads, per_thread = 4, 25

    def work() -> None:
        for i in range(per_thread):
            m.execute_on_key("acb", AcbProcessor([1.0], [float(i % 6)], ts_ns=i))

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    state = m.get("acb")
    assert isinstance(state, AcbState)
    assert state.version == 1 + n_threads * per_thread


class _PythonOnlyProcessor:
    def apply(self, old: object) -> tuple[object, object]:
        return (old or 0) + 1, "ran"  # type: ignore[operator]


def test_python_only_processor(views: Views) -> None:
    m = views.grid.map(name())
    if views.kind == "hazelcast":
        with pytest.raises(GridProcessorError, match="no server-side"):
            m.execute_on_key("k", _PythonOnlyProcessor())
    else:
        assert m.execute_on_key("k", _PythonOnlyProcessor()) == "ran"
        assert m.get("k") == 1


@pytest.mark.parametrize("bad", [None, {"a": 1}, [1, 2], object()], ids=["none", "dict", "list", "object"])
def test_invalid_values_are_refused(views: Views, bad: object) -> None:
    m = views.grid.map(name())
    with pytest.raises(GridValueError):
        m.put("k", bad)  # type: ignore[arg-type]
    with pytest.raises(GridValueError):
        views.grid.topic(name()).publish(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", 5, b"k"], ids=["empty", "int", "bytes"])
def test_invalid_keys_are_refused(views: Views, bad: object) -> None:
    with pytest.raises(GridValueError):
        views.grid.map(name()).put(bad, 1)  # type: ignore[arg-type]


def test_topic_delivers_in_order_on_another_thread(views: Views) -> None:
    tname = name("DOLPHIN_SIGNALS")
    other = views.open()
    got: list[object] = []
    threads: set[int] = set()

    def on_message(msg: object) -> None:
        threads.add(threading.get_ident())
        got.append(msg)

    sid = other.topic(tname).subscribe(on_message)
    listener_live(views.grid, tname, got)
    sent = [SignalRecord(f"A{i}", i, "SHORT", i / 100) for i in range(50)]
    for msg in sent:
        views.grid.topic(tname).publish(msg)
    assert wait_for(lambda: len(got) >= len(sent))
    assert got == sent
    assert threading.get_ident() not in threads
    assert other.topic(tname).unsubscribe(sid) is True
    time.sleep(0.2)
    views.grid.topic(tname).publish(PostureRecord(1, "TURTLE", 0.3))
    time.sleep(0.3)
    assert len(got) == len(sent)


def test_topics_are_isolated(views: Views) -> None:
    t1, t2 = name(), name()
    got1: list[object] = []
    views.grid.topic(t1).subscribe(got1.append)
    listener_live(views.grid, t1, got1)
    views.grid.topic(t2).publish("other topic")
    views.grid.topic(t1).publish("mine")
    assert wait_for(lambda: got1 == ["mine"])
    time.sleep(0.2)
    assert got1 == ["mine"]


def test_health_map_keyed_by_layer_and_sensor(views: Views) -> None:
    m = views.grid.map(name("DOLPHIN_HEALTH_GRID"))
    rec = HealthRecord("L2", "staleness", 1, 0.4, False, "feed stale", 7)
    m.put(health_key(rec.layer, rec.sensor), rec)
    assert m.get("L2/staleness") == rec
    with pytest.raises(GridValueError):
        health_key("L2/x", "s")


def test_fresh_grid_reports_quorum_ok(views: Views) -> None:
    q = views.grid.quorum()
    assert q.state is QuorumState.OK, q
    assert q.client_connected and q.members_seen >= 1 and not q.lost


def test_closed_grid_is_unavailable(views: Views) -> None:
    from dolphin.grid.protocol import GridUnavailableError

    g = views.open() if views.kind != "process" else InProcessGrid()
    g.close()
    assert g.quorum().state is QuorumState.LOST
    with pytest.raises(GridUnavailableError):
        g.map(name()).put("k", 1)


# ---- values are validated on write, alike on every backend (2026-12-06 review)
# Before: HealthRecord(value=None) was stored by the embedded backends and then every read of the
# map raised a bare msgspec.ValidationError (the sink's tick died); Hazelcast refused it but
# stored value=True as 1.0 and a numpy int64 timestamp; an int of 2**63 was stored by one
# backend only.
def _refused_values() -> list[object]:
    import numpy as np

    return [
        HealthRecord("L2", "feed", 2, None, False, "no reading"),  # type: ignore[arg-type]
        HealthRecord("L1", "s", 1, True, True),  # a bool where a float is declared
        HealthRecord("L1", "s", 2**63, 1.0, True),  # beyond int64
        HealthRecord("L1", "s", 2**64, 1.0, True),  # beyond what msgpack encodes
        FeatureRecord("BTC", np.int64(1_700_000_000_000_000_000), 5, (0.1,)),  # type: ignore[arg-type]
        FeatureRecord("BTC", 1, 5, (0.1, None)),  # type: ignore[arg-type]
        FeatureRecord("BTC", 1, 5, (0.1, True)),
        EnvelopeRecord(1, 1, 0.5, None),  # type: ignore[arg-type]
        2**63,
        2**64,
        -(2**63) - 1,
        np.float64(0.5),  # numpy scalars are converted by the caller (float(x))
        "\ud800",  # not UTF-8
        HealthRecord("L1", "\ud800", 1, 1.0, True),
    ]


REFUSED = _refused_values()


@pytest.mark.parametrize("bad", REFUSED, ids=[f"{type(v).__name__}-{i}" for i, v in enumerate(REFUSED)])
def test_a_value_the_grid_cannot_read_back_is_refused_on_write_everywhere(views: Views, bad: object) -> None:
    m = views.grid.map(name())
    good = HealthRecord("L1", "ok", 1, 1.0, True)
    m.put("k", good)
    for write in (
        lambda: m.put("k", bad),
        lambda: m.put("new", bad),
        lambda: m.put_all({"a": 1.0, "new": bad}),
        lambda: m.put_if_absent("new", bad),
        lambda: m.replace_if_same("k", good, bad),
        lambda: views.grid.topic(name()).publish(bad),
    ):
        with pytest.raises(GridValueError):
            write()  # type: ignore[no-untyped-call]
    # nothing was stored: every read of the map still works
    assert m.get("k") == good and m.get("new") is None
    assert m.entries() == {"k": good} and m.get_all(["k", "new"]) == {"k": good}


def test_values_are_normalised_alike(views: Views) -> None:
    """An int where a float is declared and a list where a tuple is are stored as the declared
    type (as Hazelcast's Compact does), so compare-and-set agrees on every backend."""
    m = views.grid.map(name())
    m.put("h", HealthRecord("L1", "s", 1, 1, True))  # type: ignore[arg-type]
    got = m.get("h")
    assert got == HealthRecord("L1", "s", 1, 1.0, True)
    assert type(got.value) is float  # type: ignore[union-attr]
    h1, h2, h3 = (HealthRecord("L1", "s", n, float(n), True) for n in (1, 2, 3))
    assert m.replace_if_same("h", h1, HealthRecord("L1", "s", 2, 2, True))  # type: ignore[arg-type]
    assert m.replace_if_same("h", h2, h3)
    m.put("f", FeatureRecord("BTC", 1, 5, [0.1, 2], 0.0, 1, 2.5))  # type: ignore[arg-type]
    got = m.get("f")
    assert got == FeatureRecord("BTC", 1, 5, (0.1, 2.0), 0.0, 1.0, 2.5)
    assert type(got.log_returns) is tuple  # type: ignore[union-attr]
    assert [type(x) for x in got.log_returns] == [float, float]  # type: ignore[union-attr]
    m.put_all({"max": 2**63 - 1, "min": -(2**63)})
    assert m.get_all(["max", "min"]) == {"max": 2**63 - 1, "min": -(2**63)}


@pytest.mark.parametrize("kind", ["process", "shm"])
def test_a_stored_value_that_cannot_be_decoded_reads_as_a_grid_error(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A value written by an older, unvalidated writer (embedded backends store bytes): reads
    raise GridValueError, not a bare msgspec error, and the snapshot sink counts the failure."""
    import msgspec

    from dolphin.grid.protocol import HEALTH_MAP
    from dolphin.grid.records import _ENCODER
    from dolphin.grid.sink import GridSnapshotSink

    v = Views(kind, request)
    try:
        m = v.grid.map(HEALTH_MAP)
        m.put("L1/ok", HealthRecord("L1", "ok", 1, 1.0, True))
        raw = _ENCODER.encode(HealthRecord("L2", "feed", 2, None, False))  # type: ignore[arg-type]
        if kind == "process":
            m._data["L2/feed"] = raw  # type: ignore[attr-defined]
        else:
            from dolphin.grid import shm as shm_mod

            fk = m._full_key("L2/feed")  # type: ignore[attr-defined]
            h = shm_mod._hash64(fk)
            with v.grid._wlock:  # type: ignore[attr-defined]
                i, _ = m._find_for_write(fk, h)  # type: ignore[attr-defined]
                v.grid._seg_checked().write_slot(i, shm_mod.LIVE, h, fk, raw)  # type: ignore[attr-defined]
        for read in (lambda: m.get("L2/feed"), m.entries, lambda: m.get_all(["L1/ok", "L2/feed"])):
            with pytest.raises(GridValueError, match="cannot be decoded"):
                read()
        with pytest.raises(msgspec.ValidationError):
            msgspec.msgpack.decode(raw, type=HealthRecord)  # (what used to escape)
        assert m.get("L1/ok") == HealthRecord("L1", "ok", 1, 1.0, True)
        sink = GridSnapshotSink(v.grid, tmp_path, maps=(HEALTH_MAP,))
        assert sink.tick() == [] and sink.failures == 1  # counted, the loop goes on
    finally:
        v.close()
