"""The shared-memory backend across real processes (spawned, not threads)."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from typing import Iterator

import pytest

from dolphin.grid.records import SignalRecord
from dolphin.grid.shm import SharedMemoryGrid, destroy_segment

CTX = mp.get_context("spawn")


def _cas_worker(name: str, n: int) -> None:
    g = SharedMemoryGrid(name, create=False)
    m = g.map("counters")
    for _ in range(n):
        while True:
            cur = m.get("n")
            if m.replace_if_same("n", cur, cur + 1):
                break
    g.close()


def _pattern_writer(name: str, max_seconds: float) -> None:
    g = SharedMemoryGrid(name, create=False)
    m = g.map("torn")
    deadline = time.monotonic() + max_seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        m.put("slot", bytes([i % 251]) * (200 + (i * 37) % 1500))
        if i % 200 == 0 and m.get("stop") == 1:
            break
    g.close()


def _publisher(name: str, n: int) -> None:
    g = SharedMemoryGrid(name, create=False)
    t = g.topic("DOLPHIN_SIGNALS")
    for i in range(n):
        t.publish(SignalRecord(f"A{i}", i, "SHORT", 0.5))
    g.close()


@pytest.fixture
def seg() -> Iterator[SharedMemoryGrid]:
    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    g = SharedMemoryGrid(name, n_slots=64, slot_bytes=2048, ring_slots=512, ring_msg_bytes=256)
    try:
        yield g
    finally:
        g.close(unlink=True)
        destroy_segment(name)


def _run(target: object, *args: object) -> mp.process.BaseProcess:
    p = CTX.Process(target=target, args=args)
    p.start()
    return p


def test_compare_and_set_across_processes_loses_no_update(seg: SharedMemoryGrid) -> None:
    seg.map("counters").put("n", 0)
    procs = [_run(_cas_worker, seg.name, 150) for _ in range(3)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert seg.map("counters").get("n") == 450


def test_seqlock_readers_never_see_a_torn_value(seg: SharedMemoryGrid) -> None:
    m = seg.map("torn")
    m.put("slot", b"\x00" * 200)
    writer = _run(_pattern_writer, seg.name, 60.0)
    start_deadline = time.monotonic() + 30
    while m.get("slot") == b"\x00" * 200 and time.monotonic() < start_deadline:
        time.sleep(0.001)  # wait for the spawned writer to start
    reads = 0
    changes = 0
    last = b""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        v = m.get("slot")
        assert isinstance(v, bytes) and len(v) >= 200
        assert v.count(v[0]) == len(v), "torn read: bytes from two different writes"
        reads += 1
        if v != last:
            changes += 1
            last = v
    m.put("stop", 1)
    writer.join(30)
    assert writer.exitcode == 0
    assert reads > 100 and changes > 10  # the reader really raced the writer


def test_topic_across_processes_in_order(seg: SharedMemoryGrid) -> None:
    got: list[object] = []
    seg.topic("DOLPHIN_SIGNALS").subscribe(got.append)
    pub = _run(_publisher, seg.name, 300)
    pub.join(60)
    assert pub.exitcode == 0
    deadline = time.monotonic() + 10
    while len(got) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [m.asset for m in got] == [f"A{i}" for i in range(300)]  # type: ignore[attr-defined]
    assert seg.dropped == 0


def test_slow_subscriber_counts_overwritten_messages(seg: SharedMemoryGrid) -> None:
    import threading

    gate = threading.Event()
    got: list[object] = []

    def slow(msg: object) -> None:
        gate.wait(10)
        got.append(msg)

    seg.topic("T").subscribe(slow)
    for i in range(2000):  # ring holds 512
        seg.topic("T").publish(i)
    gate.set()
    deadline = time.monotonic() + 10
    while len(got) + seg.dropped < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seg.dropped > 0
    assert len(got) + seg.dropped == 2000
    assert got == sorted(got)  # the survivors are in order


def test_attach_requires_existing_segment_and_full_table_is_reported() -> None:
    from dolphin.grid.protocol import GridUnavailableError, GridValueError

    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    with pytest.raises(GridUnavailableError, match="does not exist"):
        SharedMemoryGrid(name, create=False)
    g = SharedMemoryGrid(name, n_slots=16, slot_bytes=512, ring_slots=16, ring_msg_bytes=256)
    try:
        m = g.map("m")
        for i in range(16):
            m.put(f"k{i}", i)
        with pytest.raises(GridValueError, match="full"):
            m.put("one-too-many", 1)
        with pytest.raises(GridValueError, match="slot capacity"):
            m.put("k0", b"x" * 1000)
        m.remove("k3")
        m.put("reuses-tombstone", 3)
        assert m.get("reuses-tombstone") == 3 and m.size() == 16
    finally:
        g.close(unlink=True)
        destroy_segment(name)


def test_poller_stops_without_subscribers_and_restarts(seg: SharedMemoryGrid) -> None:
    got: list[object] = []
    sid = seg.topic("T").subscribe(got.append)
    seg.topic("T").publish(1)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.005)
    seg.topic("T").unsubscribe(sid)
    deadline = time.monotonic() + 5
    while seg._poller is not None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert seg._poller is None  # no idle wake-ups once nobody listens
    seg.topic("T").subscribe(got.append)
    seg.topic("T").publish(2)
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert got == [1, 2]


def test_reader_gives_up_on_a_slot_left_mid_write(seg: SharedMemoryGrid, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed between its two sequence stores leaves the slot odd: readers fail loudly."""
    from dolphin.grid import shm as shm_mod
    from dolphin.grid.protocol import GridUnavailableError

    m = seg.map("m")
    m.put("k", 1)
    s = seg._seg_checked()
    slot = next(i for i in range(s.n_slots) if s.header_of(i)[0] == shm_mod.LIVE)
    w = s.slot_off(slot) // 8
    s.q[w] += 1  # simulate the dead writer: sequence left odd
    monkeypatch.setattr(shm_mod, "MAX_SPINS", 10_000)
    with pytest.raises(GridUnavailableError, match="stuck mid-write"):
        m.get("k")
    s.q[w] += 1
    assert m.get("k") == 1
