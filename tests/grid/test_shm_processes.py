"""The shared-memory backend across real processes (spawned, not threads)."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from pathlib import Path
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
    from dolphin.grid import shm as shm_mod

    assert not shm_mod._lock_path(name).exists()  # the failed attach leaves no lock file behind
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


def _dies_mid_write(name: str, what: str) -> None:
    """Take the write lock, start a write (sequence odd, half a payload) and die by SIGKILL."""
    import os
    import signal

    from dolphin.grid import shm as shm_mod

    g = SharedMemoryGrid(name, create=False)
    s = g._seg_checked()
    with g._wlock:
        if what == "map":
            i = next(i for i in range(s.n_slots) if s.header_of(i)[0] == shm_mod.LIVE)
            w = s.slot_off(i) // 8
        else:
            idx = s.q[shm_mod.H_HEAD]
            w = (s.ring_off + (idx % s.ring_slots) * s.ring_bytes) // 8
            s.q[w + 1] = idx
        s.q[w] += 1  # odd: writer inside
        start = w * 8 + shm_mod.SLOT_HEADER_BYTES
        s.buf[start : start + 8] = b"\xff" * 8  # half a write
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_map_slot_left_mid_write_by_a_killed_writer_is_repaired(seg: SharedMemoryGrid) -> None:
    """The dead writer's slot is neither old nor new entry: readers drop it (counted), writers go on."""
    m = seg.map("m")
    m.put("k", 1)
    m.put("other", 7)
    p = _run(_dies_mid_write, seg.name, "map")
    p.join(60)
    assert p.exitcode == -9
    assert [m.get("k"), m.get("other")].count(None) == 1  # the slot it died in reads as absent
    assert seg.repaired_slots == 1
    m.put("k", 2)
    m.put("other", 8)
    assert (m.get("k"), m.get("other")) == (2, 8)
    assert seg.quorum().state.value == "ok"


def test_a_ring_slot_left_mid_write_by_a_killed_publisher_does_not_stop_delivery(seg: SharedMemoryGrid) -> None:
    """Before: the next publisher kept the slot's parity reversed and every poller died."""
    from dolphin.grid import shm as shm_mod

    got: list[object] = []
    t = seg.topic("T")
    t.subscribe(got.append)
    t.publish(0)
    p = _run(_dies_mid_write, seg.name, "ring")
    p.join(60)
    assert p.exitcode == -9
    for i in range(1, 4):
        t.publish(i)
    deadline = time.monotonic() + 10
    while len(got) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert got == [0, 1, 2, 3]
    s = seg._seg_checked()
    w = (s.ring_off + (1 % s.ring_slots) * s.ring_bytes) // 8  # the slot it died in, rewritten
    assert s.q[w] % 2 == 0
    assert seg._poller is not None and seg._poller.is_alive()
    assert seg.quorum().state.value == "ok" and seg.dropped == 0
    # a lagging reader asking for a message whose slot is being overwritten loses it at once
    s.q[w] += 1
    assert s.ring_read(1 + s.ring_slots) is None
    s.q[w] += 1
    assert shm_mod.MAX_SPINS > shm_mod.REPAIR_SPINS


def _holds_lock(lock_path: str, held: object, release: object) -> None:
    import fcntl
    import os

    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()  # type: ignore[attr-defined]
    release.wait(30)  # type: ignore[attr-defined]
    fcntl.flock(fd, fcntl.LOCK_UN)


def test_unlink_waits_for_the_write_lock_and_openers_take_the_current_lock_file(tmp_path) -> None:
    """close(unlink=True) removes segment and lock file under the lock (an opener in between
    would otherwise lock a file nobody else locks: two writers at once)."""
    import os
    import threading

    from dolphin.grid import shm as shm_mod

    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    g = SharedMemoryGrid(name, n_slots=16, slot_bytes=512, ring_slots=16, ring_msg_bytes=256)
    held, release = CTX.Event(), CTX.Event()
    p = _run(_holds_lock, str(shm_mod._lock_path(name)), held, release)
    try:
        assert held.wait(30)
        closer = threading.Thread(target=g.close, kwargs={"unlink": True})
        closer.start()
        time.sleep(0.3)
        assert closer.is_alive() and shm_mod._segment_path(name).exists()  # waits for the lock
        release.set()
        closer.join(30)
        assert not shm_mod._segment_path(name).exists() and not shm_mod._lock_path(name).exists()
    finally:
        release.set()
        p.join(30)
        destroy_segment(name)
    # an opener whose lock file was replaced before it locked reopens the current one
    path = tmp_path / "x.lock"
    lk = shm_mod._WriteLock(path)
    path.unlink()
    path.touch()
    lk.acquire_current()
    try:
        assert os.fstat(lk._fd).st_ino == os.stat(path).st_ino
    finally:
        lk.__exit__()
        lk.close()


def test_a_removed_segment_reads_as_lost_to_the_processes_still_attached(seg: SharedMemoryGrid) -> None:
    other = SharedMemoryGrid(seg.name, create=False)
    newcomer = None
    try:
        other.map("m").put("k", 1)
        assert other.quorum().state.value == "ok"
        seg.close(unlink=True)
        q = other.quorum()
        assert q.state.value == "lost" and "removed or replaced" in q.reason
        newcomer = SharedMemoryGrid(seg.name)  # a fresh, empty segment under the same name
        assert newcomer.created and newcomer.map("m").get("k") is None
        assert other.quorum().state.value == "lost"  # still the orphan
        assert newcomer.quorum().state.value == "ok"
    finally:
        other.close()
        if newcomer is not None:
            newcomer.close(unlink=True)


def test_a_half_created_segment_is_refused_without_leaks_or_replaced_on_create() -> None:
    import os
    from multiprocessing import shared_memory

    from dolphin.grid import shm as shm_mod
    from dolphin.grid.protocol import GridUnavailableError

    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    raw = shared_memory.SharedMemory(name=name, create=True, size=4096)  # its creator "died" here
    shm_mod._untrack(raw)
    raw.close()
    try:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            with pytest.raises(GridUnavailableError, match="not a dolphin grid"):
                SharedMemoryGrid(name, create=False)
        assert len(os.listdir("/proc/self/fd")) == before  # no lock descriptor left behind
        g = SharedMemoryGrid(name, n_slots=16, slot_bytes=512, ring_slots=16, ring_msg_bytes=256)
        assert g.created
        g.map("m").put("k", 1)
        assert g.map("m").get("k") == 1
        g.close(unlink=True)
    finally:
        destroy_segment(name)


def test_a_failed_poller_is_visible_and_restarts_on_subscribe(seg: SharedMemoryGrid, monkeypatch: pytest.MonkeyPatch) -> None:
    s = seg._seg_checked()
    real = s.ring_read

    def broken(index: int) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(s, "ring_read", broken)
    got: list[object] = []
    seg.topic("T").subscribe(got.append)
    seg.topic("T").publish(1)
    deadline = time.monotonic() + 10
    while seg.poller_failures == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    q = seg.quorum()
    assert seg.poller_failures == 1 and q.state.value == "degraded" and "boom" in q.reason
    monkeypatch.setattr(s, "ring_read", real)
    seg.topic("T").subscribe(got.append)
    seg.topic("T").publish(2)
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert got == [2, 2] and seg.quorum().state.value == "ok"


def test_a_dead_writers_slot_read_inside_an_entry_processor_is_repaired_not_a_hang(seg: SharedMemoryGrid) -> None:
    """The processor runs under the write lock; the reader must not take that lock again."""
    import threading

    from dolphin.grid import shm as shm_mod

    m = seg.map("m")
    m.put("a", 1)
    m.put("b", 2)
    s = seg._seg_checked()
    slot = next(i for i in range(s.n_slots) if s.header_of(i)[0] == shm_mod.LIVE and s.read_slot(i)[2].endswith(b"a"))
    s.q[s.slot_off(slot) // 8] += 1  # the slot of "a" left mid-write by a writer that died

    class ReadsA:
        def apply(self, old):  # type: ignore[no-untyped-def]
            return old, m.get("a")

    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(m.execute_on_key("b", ReadsA())), daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive() and out == [None]
    assert seg.repaired_slots == 1 and m.get("b") == 2
    m.put("a", 3)
    assert m.get("a") == 3


# ---- fork() and closed grids (2026-12-06 review)
class _Incr:
    def apply(self, old):  # type: ignore[no-untyped-def]
        n = (old or 0) + 1
        return n, n


def _increments(grid: SharedMemoryGrid, n: int, go: object) -> None:
    go.wait(30)  # type: ignore[attr-defined]
    m = grid.map("C")
    for _ in range(n):
        m.execute_on_key("counter", _Incr())


def _forked_increments(grid: SharedMemoryGrid, n: int, go: object) -> None:
    import os

    _increments(grid, n, go)
    os._exit(0 if grid.repaired_slots == 0 else 3)


def test_a_grid_inherited_through_fork_still_excludes_the_parent() -> None:
    """Before: parent and forked child shared the lock file's open file description, so both
    "held" the flock at once: increments were lost and slots were seen "left mid-write"."""
    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    g = SharedMemoryGrid(name, n_slots=64, slot_bytes=512, ring_slots=16, ring_msg_bytes=256)
    try:
        g.map("C").put("counter", 0)
        fork = mp.get_context("fork")
        go = fork.Event()
        n = 4000
        p = fork.Process(target=_forked_increments, args=(g, n, go))
        p.start()
        go.set()
        _increments(g, n, go)
        p.join(60)
        assert p.exitcode == 0, p.exitcode  # 3: the child repaired slots (a "dead" writer that was alive)
        assert g.map("C").get("counter") == 2 * n
        assert g.repaired_slots == 0
    finally:
        g.close(unlink=True)
        destroy_segment(name)


def _forked_subscriber(grid: SharedMemoryGrid, ready: object, done: object) -> None:
    import os

    got: list[object] = []
    grid.topic("T").subscribe(got.append)
    ready.set()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while "from-parent" not in got and time.monotonic() < deadline:
        time.sleep(0.005)
    done.set()  # type: ignore[attr-defined]
    os._exit(0 if "from-parent" in got else 4)


def test_a_forked_child_subscribes_with_its_own_poller(seg: SharedMemoryGrid) -> None:
    """The parent's poller thread does not exist in the child: the child's subscribe starts its own."""
    got: list[object] = []
    seg.topic("T").subscribe(got.append)  # the parent polls before the fork
    fork = mp.get_context("fork")
    ready, done = fork.Event(), fork.Event()
    p = fork.Process(target=_forked_subscriber, args=(seg, ready, done))
    p.start()
    assert ready.wait(30)
    while not done.is_set() and p.is_alive():
        seg.topic("T").publish("from-parent")
        time.sleep(0.02)
    p.join(30)
    assert p.exitcode == 0, p.exitcode
    assert "from-parent" in got  # the parent's own subscription still works


def test_writes_on_a_closed_grid_are_unavailable_and_never_lock_a_reused_descriptor(tmp_path: Path) -> None:
    """Before: remove / execute_on_key / clear took the write lock before checking the grid was
    open: EBADF (an OSError), or worse, an flock on whatever file had reused the descriptor."""
    import fcntl
    import os

    from dolphin.grid import shm as shm_mod
    from dolphin.grid.protocol import GridUnavailableError

    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    g = SharedMemoryGrid(name, n_slots=16, slot_bytes=512, ring_slots=16, ring_msg_bytes=256)
    m = g.map("M")
    m.put("k", 1)
    lock_fd = g._wlock._fd
    g.close(unlink=True)
    unrelated = tmp_path / "unrelated.lock"
    fd = os.open(unrelated, os.O_RDWR | os.O_CREAT, 0o600)  # takes the freed descriptor number
    try:
        assert fd == lock_fd
        real_find = shm_mod._ShmMap._find_for_write
        flocked: list[bool] = []

        def spy(self, fk, h):  # type: ignore[no-untyped-def]
            probe = os.open(unrelated, os.O_RDWR)
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(probe, fcntl.LOCK_UN)
                flocked.append(False)
            except BlockingIOError:
                flocked.append(True)
            finally:
                os.close(probe)
            return real_find(self, fk, h)

        shm_mod._ShmMap._find_for_write = spy  # type: ignore[method-assign]
        try:
            for write in (
                lambda: m.remove("k"),
                lambda: m.execute_on_key("k", _Incr()),
                m.clear,
                lambda: m.put("k", 2),
                lambda: m.put_all({}),
                lambda: m.put_if_absent("k", 2),
                lambda: m.replace_if_same("k", 1, 2),
                lambda: g.topic("T").publish(1),
            ):
                with pytest.raises(GridUnavailableError):
                    write()
        finally:
            shm_mod._ShmMap._find_for_write = real_find  # type: ignore[method-assign]
        assert flocked == []  # no write path got as far as the lock
        g.close()  # idempotent
    finally:
        os.close(fd)
    lk = shm_mod._WriteLock(tmp_path / "x.lock")
    lk.close()
    lk.close()
    with pytest.raises(GridUnavailableError, match="closed"):
        with lk:
            pass
