"""Embedded backend for several processes on one machine: one shared-memory segment.

Layout (all fields little-endian u64, published through ``memoryview.cast('Q')`` so each
store is one aligned 8-byte ``mov``; x86-64 keeps stores in order, see FACTS.md)::

    header   [magic, layout, n_slots, slot_bytes, ring_slots, ring_msg_bytes, ring_head, ready]
    table    n_slots x slot_bytes    open addressing on hash(map \\0 key), linear probing
             slot = [seq, state, lens, hash | key (KEY_BYTES) | value]
    ring     ring_slots x ring_msg_bytes   topic messages
             slot = [seq, msg_index, lens, 0 | topic (TOPIC_BYTES) | payload]

Readers never lock: every slot is a seqlock (``seq`` odd while a writer is inside; a reader
copies the slot and retries when ``seq`` was odd or changed). Writers (put, compare-and-set,
put-if-absent, execute-on-key, publish) are serialized by an ``fcntl.flock`` on a lock file
beside the segment plus a per-process ``threading.Lock`` (flock does not exclude threads
sharing one descriptor; a process forked with an open grid reopens the lock file, since fork
shares the descriptor's flock with the parent); nothing relies on the GIL. A closed grid refuses
every operation with GridUnavailableError. Deleted keys leave tombstones, so a probe
chain never moves under a reader. Topic subscribers are served by one polling thread per
process (sleeping ``poll_interval_s`` when idle); a subscriber that falls more than
``ring_slots`` messages behind loses the overwritten ones and counts them in ``dropped``.

Why not a server process: a round trip through a pipe costs ~18-30 us here (FACTS.md), a
seqlock read ~3-6 us with no context switch, and no extra process to supervise. See
docs/decisions/0001-grid-embedded-shared-memory.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import os
import tempfile
import threading
import time
import weakref
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from dolphin.grid.protocol import (
    Grid,
    GridMap,
    GridProcessor,
    GridProcessorError,
    GridQuorum,
    GridTopic,
    GridUnavailableError,
    GridValueError,
    QuorumState,
    check_key,
    get_or_create,
)
from dolphin.grid.records import GridValue, decode_value, encode_value

__all__ = ["SharedMemoryGrid", "destroy_segment"]

log = logging.getLogger(__name__)

MAGIC = 0x444F4C5048475244  # "DOLPHGRD"
LAYOUT = 1
HEADER_BYTES = 128
SLOT_HEADER_BYTES = 32
KEY_BYTES = 128
TOPIC_BYTES = 64
EMPTY, LIVE, TOMBSTONE = 0, 1, 2
# A reader that sees a map slot mid-write this many times in a row takes the write lock: a live
# writer holds the lock for its whole write, so a slot still odd once the lock is held was left
# by a writer that died between its two sequence stores, and the reader repairs it (tombstone).
REPAIR_SPINS = 20_000
# Past this many spins (with the repair done) the reader gives up loudly: something writes the
# segment without the lock.
MAX_SPINS = 5_000_000
# header word indices
H_MAGIC, H_LAYOUT, H_SLOTS, H_SLOT_BYTES, H_RING, H_RING_BYTES, H_HEAD, H_READY = range(8)


def _lock_path(name: str) -> Path:
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / f"{name}.lock"


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _untrack(shm: shared_memory.SharedMemory) -> None:
    # Python 3.12's resource tracker would unlink the segment when *this* process exits,
    # even if it only attached; dolphin unlinks explicitly (close(unlink=True)).
    try:
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - tracker absent
        pass


def _unlink(shm: shared_memory.SharedMemory) -> None:
    # SharedMemory.unlink() would also unregister from the resource tracker, which we already
    # did (_untrack); call the POSIX unlink directly.
    import _posixshmem

    try:
        _posixshmem.shm_unlink(shm._name)  # type: ignore[attr-defined]
    except FileNotFoundError:
        pass


def _segment_path(name: str) -> Path:
    return Path("/dev/shm") / name.lstrip("/")


def destroy_segment(name: str) -> bool:
    """Unlink a segment and its lock file (after a crash); True if a segment was removed.

    Both are unlinked while holding the write lock, so a process opening the grid at the same
    moment either finishes first or finds both gone (see ``_WriteLock.acquire_current``)."""
    removed = False
    lock = _WriteLock(_lock_path(name))
    try:
        with lock:
            try:
                shm = shared_memory.SharedMemory(name=name)
                _untrack(shm)
                shm.close()
                _unlink(shm)
                removed = True
            except FileNotFoundError:
                pass
            _lock_path(name).unlink(missing_ok=True)
    finally:
        lock.close()
    return removed


def _is_ready(shm: shared_memory.SharedMemory) -> bool:
    if shm.size < HEADER_BYTES:
        return False
    q = shm.buf.cast("Q")
    try:
        return q[H_READY] == 1
    finally:
        q.release()


class _WriteLock:
    """Cross-process (flock) and cross-thread (threading.Lock) writer exclusion.

    flock belongs to the open file description, which fork() shares: a parent and its forked
    child locking the inherited descriptor would both "hold" the lock at once. So the child
    reopens the lock file (its own open file description) and takes a fresh threading.Lock
    (the parent's may have been held by a thread that does not exist in the child); see
    ``_reopen_after_fork``. After :meth:`close` the lock refuses with GridUnavailableError (the
    descriptor number may already belong to an unrelated file)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._pid = os.getpid()
        self._tlock = threading.Lock()
        self.owner: int | None = None  # the thread id holding the lock (readers check it)
        self._fork_error = ""
        _LOCKS.add(self)

    def acquire_current(self) -> None:
        """Acquire the lock held through the file now at the path.

        A closer unlinks the segment and the lock file while holding the lock; an opener that
        opened the old file before that would hold a lock nobody else takes any more (two
        writers at once). After locking, the opener checks that its descriptor is still the
        file at the path and reopens otherwise."""
        while True:
            self.__enter__()
            try:
                if os.fstat(self._fd).st_ino == os.stat(self._path).st_ino:
                    return
            except FileNotFoundError:
                pass
            self.__exit__()
            os.close(self._fd)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        if self._pid != os.getpid():
            # forked without the at-fork hook (or its reopen failed): the descriptor is shared
            # with the parent and would not exclude it
            raise GridUnavailableError(
                f"grid lock {self._path} was inherited through fork() and could not be reopened "
                f"({self._fork_error or 'fork without the at-fork hook'}): open the grid again in the child"
            )
        self._tlock.acquire()
        if self._fd < 0:
            self._tlock.release()
            raise GridUnavailableError(f"grid lock {self._path} is closed (the grid was closed)")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._tlock.release()
            raise
        self.owner = threading.get_ident()

    def __exit__(self, *exc: object) -> None:
        self.owner = None
        if self._fd >= 0:  # closed from inside the lock: closing the descriptor released the flock
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._tlock.release()

    def held_here(self) -> bool:
        """This thread holds the lock (e.g. a reader inside an entry processor)."""
        return self.owner == threading.get_ident()

    def close(self) -> None:
        """Close the descriptor (idempotent). Waits for a writer of this process inside; from
        inside the lock (an entry processor closing the grid) it closes at once."""
        if self.held_here():
            self._close_fd()
            return
        with self._tlock:
            self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _reopen_after_fork(self) -> None:
        """In a forked child (single-threaded at this point): own descriptor, fresh lock."""
        self._tlock = threading.Lock()
        self.owner = None
        if self._fd < 0:
            self._pid = os.getpid()
            return
        inherited, self._fd = self._fd, -1
        try:
            os.close(inherited)  # the parent's flock stays: its own descriptor still holds the description
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        except OSError as exc:
            self._fork_error = f"{type(exc).__name__}: {exc}"  # __enter__ refuses (pid differs)


_LOCKS: "weakref.WeakSet[_WriteLock]" = weakref.WeakSet()
_GRIDS: "weakref.WeakSet[SharedMemoryGrid]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lock in list(_LOCKS):
        lock._reopen_after_fork()
    for grid in list(_GRIDS):
        grid._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _spin(spins: int, where: int) -> int:
    if spins >= MAX_SPINS:
        raise GridUnavailableError(f"grid slot {where} stuck mid-write (its writer died?); recreate the segment")
    if spins and spins % 1000 == 0:
        time.sleep(0)  # let the writer run
    return spins + 1


class _Segment:
    """Raw access to the segment: seqlocked slot reads and writes."""

    def __init__(self, shm: shared_memory.SharedMemory, wlock: _WriteLock) -> None:
        self.shm = shm
        self.wlock = wlock
        self.repaired = 0  # slots left mid-write by a dead writer, found and repaired here
        self.buf = shm.buf
        self.q = shm.buf.cast("Q")
        q = self.q
        if q[H_MAGIC] != MAGIC or q[H_LAYOUT] != LAYOUT:
            q.release()
            raise GridUnavailableError(f"segment {shm.name} is not a dolphin grid (layout {LAYOUT})")
        self.n_slots = q[H_SLOTS]
        self.slot_bytes = q[H_SLOT_BYTES]
        self.ring_slots = q[H_RING]
        self.ring_bytes = q[H_RING_BYTES]
        self.table_off = HEADER_BYTES
        self.ring_off = HEADER_BYTES + self.n_slots * self.slot_bytes
        self.value_cap = self.slot_bytes - SLOT_HEADER_BYTES - KEY_BYTES
        self.payload_cap = self.ring_bytes - SLOT_HEADER_BYTES - TOPIC_BYTES

    def release(self) -> None:
        self.q.release()
        self.buf = None  # type: ignore[assignment]

    # ---- map slots
    def slot_off(self, i: int) -> int:
        return self.table_off + i * self.slot_bytes

    def _stuck(self, i: int, s1: int, spins: int, locked: bool) -> int:
        """A reader saw slot i odd (mid-write) ``spins`` times: wait, or repair a dead writer's slot."""
        if locked or (spins == REPAIR_SPINS and self.wlock.held_here()):
            # This thread holds the write lock (a locked write path, or a read inside an entry
            # processor): no writer can be inside, so the slot's writer died. Repair it here;
            # taking the (non-reentrant) lock again would hang.
            self._repair(i, s1)
            return 0
        if spins == REPAIR_SPINS:
            with self.wlock:  # every live writer holds this lock for its whole write
                if self.q[self.slot_off(i) // 8] == s1:
                    self._repair(i, s1)
            return spins + 1
        return _spin(spins, i)

    def _repair(self, i: int, s1: int) -> None:
        # What the dead writer left may be part old, part new entry: neither can be trusted, so
        # the slot becomes a tombstone (probe chains stay intact; the key reads as absent).
        self.repaired += 1
        log.error("grid slot %d was left mid-write (seq %d) by a writer that died; its entry is dropped", i, s1)
        self.write_slot(i, TOMBSTONE, 0, b"", b"")

    def read_slot(self, i: int, locked: bool = False) -> tuple[int, int, bytes, memoryview | None, int]:
        """(state, hash, key, value-bytes or None, seq) of slot i, consistent (seqlock).

        ``locked``: the caller holds the write lock (an odd slot is then a dead writer's)."""
        off = self.slot_off(i)
        w = off // 8
        q = self.q
        buf = self.buf
        spins = 0
        while True:
            s1 = q[w]
            if s1 & 1:
                spins = self._stuck(i, s1, spins, locked)
                continue
            state = q[w + 1]
            lens = q[w + 2]
            h = q[w + 3]
            klen = lens >> 32
            vlen = lens & 0xFFFFFFFF
            if klen > KEY_BYTES or vlen > self.value_cap:
                if q[w] != s1:
                    continue
                raise GridUnavailableError(f"corrupt slot {i} in grid segment")
            kstart = off + SLOT_HEADER_BYTES
            key = bytes(buf[kstart : kstart + klen])
            vstart = kstart + KEY_BYTES
            value = bytes(buf[vstart : vstart + vlen]) if state == LIVE else None
            if q[w] == s1:
                return state, h, key, value, s1  # type: ignore[return-value]

    def header_of(self, i: int) -> tuple[int, int]:
        """(state, hash) of slot i, consistent (seqlock)."""
        w = self.slot_off(i) // 8
        q = self.q
        spins = 0
        while True:
            s1 = q[w]
            if s1 & 1:
                spins = self._stuck(i, s1, spins, False)
                continue
            state = q[w + 1]
            h = q[w + 3]
            if q[w] == s1:
                return state, h

    def write_slot(self, i: int, state: int, h: int, key: bytes, value: bytes) -> None:
        """Under the write lock. A slot found odd was left by a dead writer: the write starts
        from that odd value and ends one above it (never even while being written)."""
        off = self.slot_off(i)
        w = off // 8
        q = self.q
        seq = q[w] | 1
        q[w] = seq  # odd: writer inside
        q[w + 1] = state
        q[w + 2] = (len(key) << 32) | len(value)
        q[w + 3] = h
        kstart = off + SLOT_HEADER_BYTES
        self.buf[kstart : kstart + len(key)] = key
        vstart = kstart + KEY_BYTES
        self.buf[vstart : vstart + len(value)] = value
        q[w] = seq + 1  # even: published

    # ---- ring
    def ring_write(self, index: int, topic: bytes, payload: bytes) -> None:
        off = self.ring_off + (index % self.ring_slots) * self.ring_bytes
        w = off // 8
        q = self.q
        seq = q[w] | 1  # odd: writer inside (already odd if a writer died here: stays odd)
        q[w] = seq
        q[w + 1] = index
        q[w + 2] = (len(topic) << 32) | len(payload)
        tstart = off + SLOT_HEADER_BYTES
        self.buf[tstart : tstart + len(topic)] = topic
        pstart = tstart + TOPIC_BYTES
        self.buf[pstart : pstart + len(payload)] = payload
        q[w] = seq + 1
        q[H_HEAD] = index + 1  # publish after the payload

    def ring_read(self, index: int) -> tuple[bytes, bytes] | None:
        """(topic, payload) of message ``index``, or None if it was overwritten.

        Readers only ask for ``index < head`` and the head moves after a message is written, so
        a writer inside the slot is writing a later message: ``index`` is being overwritten
        (None at once; also when that writer died there)."""
        off = self.ring_off + (index % self.ring_slots) * self.ring_bytes
        w = off // 8
        q = self.q
        buf = self.buf
        while True:
            s1 = q[w]
            if s1 & 1:
                return None
            if q[w + 1] != index:
                return None if q[w] == s1 else self.ring_read(index)
            lens = q[w + 2]
            tlen = lens >> 32
            plen = lens & 0xFFFFFFFF
            tstart = off + SLOT_HEADER_BYTES
            topic = bytes(buf[tstart : tstart + min(tlen, TOPIC_BYTES)])
            pstart = tstart + TOPIC_BYTES
            payload = bytes(buf[pstart : pstart + min(plen, self.payload_cap)])
            if q[w] == s1:
                return topic, payload


class _ShmMap(GridMap):
    def __init__(self, name: str, grid: "SharedMemoryGrid") -> None:
        if len(name.encode()) > 48:
            raise GridValueError(f"map name {name!r} longer than 48 bytes")
        self.name = name
        self._grid = grid
        self._prefix = name.encode() + b"\0"

    def _full_key(self, key: str) -> bytes:
        check_key(key)
        fk = self._prefix + key.encode()
        if len(fk) > KEY_BYTES:
            raise GridValueError(f"key {key!r} too long for the shared-memory grid ({KEY_BYTES} bytes with map name)")
        return fk

    def _encode(self, value: GridValue) -> bytes:
        raw = encode_value(value)
        cap = self._grid._seg_checked().value_cap
        if len(raw) > cap:
            raise GridValueError(
                f"value of {len(raw)} bytes exceeds the shared-memory slot capacity {cap} bytes "
                "(raise grid.shm_slot_bytes)"
            )
        return raw

    def _probe(self, h: int) -> Iterator[int]:
        n = self._grid._seg_checked().n_slots
        start = h % n
        for j in range(n):
            yield (start + j) % n

    def _find(self, fk: bytes, h: int) -> tuple[int, bytes | None]:
        """(slot, value) of key fk, lock-free; slot -1 when absent."""
        seg = self._grid._seg_checked()
        for i in self._probe(h):
            state, sh = seg.header_of(i)
            if state == EMPTY:
                return -1, None
            if state == LIVE and sh == h:
                st, _, key, value, _ = seg.read_slot(i)
                if st == LIVE and key == fk:
                    return i, value  # type: ignore[return-value]
        return -1, None

    def _find_for_write(self, fk: bytes, h: int) -> tuple[int, bytes | None]:
        """Under the write lock: (slot holding fk or the slot to insert into, current value)."""
        seg = self._grid._seg_checked()
        free = -1
        for i in self._probe(h):
            state, sh, key, value, _ = seg.read_slot(i, locked=True)
            if state == EMPTY:
                return (i if free < 0 else free), None
            if state == TOMBSTONE:
                if free < 0:
                    free = i
                continue
            if sh == h and key == fk:
                return i, value
        if free >= 0:
            return free, None
        raise GridValueError(f"shared-memory grid is full ({seg.n_slots} slots; raise grid.shm_slots)")

    def get(self, key: str) -> GridValue:
        fk = self._full_key(key)
        _, raw = self._find(fk, _hash64(fk))
        return None if raw is None else decode_value(raw)

    def put(self, key: str, value: GridValue) -> None:
        fk = self._full_key(key)
        raw = self._encode(value)
        h = _hash64(fk)
        with self._grid._wlock:
            i, _ = self._find_for_write(fk, h)
            self._grid._seg_checked().write_slot(i, LIVE, h, fk, raw)

    def put_all(self, entries: Mapping[str, GridValue]) -> None:
        prepared = []
        for k, v in entries.items():
            fk = self._full_key(k)
            prepared.append((fk, _hash64(fk), self._encode(v)))
        with self._grid._wlock:
            seg = self._grid._seg_checked()
            for fk, h, raw in prepared:
                i, _ = self._find_for_write(fk, h)
                seg.write_slot(i, LIVE, h, fk, raw)

    def get_all(self, keys: Iterable[str]) -> dict[str, GridValue]:
        out: dict[str, GridValue] = {}
        for k in keys:
            fk = self._full_key(k)
            _, raw = self._find(fk, _hash64(fk))
            if raw is not None:
                out[k] = decode_value(raw)
        return out

    def put_if_absent(self, key: str, value: GridValue) -> GridValue:
        fk = self._full_key(key)
        raw = self._encode(value)
        h = _hash64(fk)
        with self._grid._wlock:
            i, old = self._find_for_write(fk, h)
            if old is not None:
                return decode_value(old)
            self._grid._seg_checked().write_slot(i, LIVE, h, fk, raw)
            return None

    def replace_if_same(self, key: str, expected: GridValue, new: GridValue) -> bool:
        fk = self._full_key(key)
        raw_expected = encode_value(expected)
        raw_new = self._encode(new)
        h = _hash64(fk)
        with self._grid._wlock:
            i, old = self._find_for_write(fk, h)
            if old is None or old != raw_expected:
                return False
            self._grid._seg_checked().write_slot(i, LIVE, h, fk, raw_new)
            return True

    def remove(self, key: str) -> GridValue:
        fk = self._full_key(key)
        h = _hash64(fk)
        self._grid._seg_checked()  # closed: GridUnavailableError before touching the lock
        with self._grid._wlock:
            i, old = self._find_for_write(fk, h)
            if old is None:
                return None
            self._grid._seg_checked().write_slot(i, TOMBSTONE, h, fk, b"")
        return decode_value(old)

    def execute_on_key(self, key: str, processor: GridProcessor) -> object:
        if not isinstance(processor, GridProcessor):
            raise GridProcessorError(f"{processor!r} has no apply(old) -> (new, result)")
        fk = self._full_key(key)
        h = _hash64(fk)
        self._grid._seg_checked()  # closed: GridUnavailableError before touching the lock
        with self._grid._wlock:
            i, old = self._find_for_write(fk, h)
            new, result = processor.apply(None if old is None else decode_value(old))
            seg = self._grid._seg_checked()  # (the processor may have closed the grid)
            if new is None:
                if old is not None:
                    seg.write_slot(i, TOMBSTONE, h, fk, b"")
            else:
                seg.write_slot(i, LIVE, h, fk, self._encode(new))
        return result

    def _scan(self) -> Iterator[tuple[str, bytes]]:
        seg = self._grid._seg_checked()
        plen = len(self._prefix)
        for i in range(seg.n_slots):
            state, _ = seg.header_of(i)
            if state != LIVE:
                continue
            st, _, key, value, _ = seg.read_slot(i)
            if st == LIVE and key.startswith(self._prefix) and value is not None:
                yield key[plen:].decode(), value

    def keys(self) -> list[str]:
        return [k for k, _ in self._scan()]

    def entries(self) -> dict[str, GridValue]:
        return {k: decode_value(v) for k, v in self._scan()}

    def size(self) -> int:
        return sum(1 for _ in self._scan())

    def clear(self) -> None:
        self._grid._seg_checked()  # closed: GridUnavailableError before touching the lock
        with self._grid._wlock:
            seg = self._grid._seg_checked()
            for i in range(seg.n_slots):
                st, h, key, value, _ = seg.read_slot(i, locked=True)
                if st == LIVE and key.startswith(self._prefix):
                    seg.write_slot(i, TOMBSTONE, h, key, b"")


class _ShmTopic(GridTopic):
    def __init__(self, name: str, grid: "SharedMemoryGrid") -> None:
        tb = name.encode()
        if len(tb) > TOPIC_BYTES:
            raise GridValueError(f"topic name {name!r} longer than {TOPIC_BYTES} bytes")
        self.name = name
        self._tb = tb
        self._grid = grid

    def publish(self, message: GridValue) -> None:
        raw = encode_value(message)
        seg = self._grid._seg_checked()
        if len(raw) > seg.payload_cap:
            raise GridValueError(
                f"message of {len(raw)} bytes exceeds the ring slot capacity {seg.payload_cap} bytes"
            )
        with self._grid._wlock:
            seg.ring_write(seg.q[H_HEAD], self._tb, raw)

    def subscribe(self, callback: Callable[[GridValue], None]) -> str:
        return self._grid._subscribe(self._tb, callback)

    def unsubscribe(self, subscription_id: str) -> bool:
        return self._grid._unsubscribe(subscription_id)


class SharedMemoryGrid(Grid):
    """The embedded backend shared by the processes of one machine.

    ``SharedMemoryGrid(name, create=True)`` creates the segment if it does not exist (the
    geometry arguments apply only then) or attaches to it; the process that should remove it
    at the end calls ``close(unlink=True)``.
    """

    backend = "embedded-shm"

    def __init__(
        self,
        name: str,
        *,
        create: bool = True,
        n_slots: int = 2048,
        slot_bytes: int = 8192,
        ring_slots: int = 1024,
        ring_msg_bytes: int = 1024,
        poll_interval_s: float = 0.0005,
    ) -> None:
        if slot_bytes % 8 or ring_msg_bytes % 8:
            raise GridValueError("slot_bytes and ring_msg_bytes must be multiples of 8")
        if slot_bytes < SLOT_HEADER_BYTES + KEY_BYTES + 64:
            raise GridValueError(f"slot_bytes must be >= {SLOT_HEADER_BYTES + KEY_BYTES + 64}")
        if ring_msg_bytes < SLOT_HEADER_BYTES + TOPIC_BYTES + 64:
            raise GridValueError(f"ring_msg_bytes must be >= {SLOT_HEADER_BYTES + TOPIC_BYTES + 64}")
        self.name = name
        self._poll_interval_s = poll_interval_s
        self._wlock = _WriteLock(_lock_path(name))
        shm: shared_memory.SharedMemory | None = None
        self._wlock.acquire_current()
        try:
            try:
                shm = shared_memory.SharedMemory(name=name)
                self.created = False
                if create and not _is_ready(shm):
                    # Creation runs under the lock, so a segment not ready while we hold it was
                    # left by a creator that died half-way: replace it.
                    log.error("grid segment %s was left half-created (its creator died?): recreating it", name)
                    _untrack(shm)
                    shm.close()
                    _unlink(shm)
                    shm = None
                    raise FileNotFoundError(name)
            except FileNotFoundError:
                if create:
                    size = HEADER_BYTES + n_slots * slot_bytes + ring_slots * ring_msg_bytes
                    shm = shared_memory.SharedMemory(name=name, create=True, size=size)
                    q = shm.buf.cast("Q")
                    q[H_SLOTS], q[H_SLOT_BYTES] = n_slots, slot_bytes
                    q[H_RING], q[H_RING_BYTES] = ring_slots, ring_msg_bytes
                    q[H_HEAD] = 0
                    q[H_LAYOUT] = LAYOUT
                    q[H_MAGIC] = MAGIC
                    q[H_READY] = 1
                    q.release()
                    self.created = True
            if shm is not None:
                _untrack(shm)
            else:
                # no segment: the lock file this attach created goes too (under the lock, as in
                # close(unlink=True): a concurrent creator reopens the current one)
                _lock_path(name).unlink(missing_ok=True)
        finally:
            self._wlock.__exit__()
        if shm is None:
            self._wlock.close()
            raise GridUnavailableError(f"shared-memory grid {name!r} does not exist")
        try:
            # the segment's identity: quorum() compares it with the segment now at the path
            self._ino = os.fstat(shm._fd).st_ino  # type: ignore[attr-defined]
            self._seg: _Segment | None = _Segment(shm, self._wlock)
        except BaseException:
            shm.close()
            self._wlock.close()
            raise
        self._maps: dict[str, _ShmMap] = {}
        self._topics: dict[str, _ShmTopic] = {}
        self._lock = threading.Lock()
        self._subs: dict[str, tuple[bytes, Callable[[GridValue], None]]] = {}
        self._ids = itertools.count(1)
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self.dropped = 0
        self.listener_errors = 0
        self.poller_failures = 0
        self._poller_error = ""
        _GRIDS.add(self)

    def _reset_after_fork(self) -> None:
        """In a forked child: the parent's poller thread does not exist here and its
        subscriptions are the parent's (their ids carry its pid); the registry lock may have
        been held by a parent thread. A subscribe in the child starts the child's own poller."""
        self._lock = threading.Lock()
        self._subs = {}
        self._poller = None
        self._stop = threading.Event()

    def _seg_checked(self) -> _Segment:
        seg = self._seg
        if seg is None:
            raise GridUnavailableError(f"shared-memory grid {self.name!r} is closed")
        return seg

    def map(self, name: str) -> GridMap:
        self._seg_checked()
        return get_or_create(self._lock, self._maps, name, lambda n: _ShmMap(n, self))

    def topic(self, name: str) -> GridTopic:
        self._seg_checked()
        return get_or_create(self._lock, self._topics, name, lambda n: _ShmTopic(n, self))

    @property
    def repaired_slots(self) -> int:
        """Slots this process found left mid-write by a dead writer and repaired."""
        seg = self._seg
        return 0 if seg is None else seg.repaired

    def quorum(self) -> GridQuorum:
        seg = self._seg
        state, reason = QuorumState.OK, ""
        if seg is None or seg.q[H_MAGIC] != MAGIC:
            state, reason = QuorumState.LOST, f"segment {self.name} closed"
        elif not self._is_current():
            # Unlinked (close(unlink=True) or destroy_segment elsewhere) or replaced: this process
            # still maps a segment that no process opening the grid from now on will see.
            state, reason = QuorumState.LOST, f"segment {self.name} was removed or replaced by another process"
        elif self._poller_error:
            state, reason = QuorumState.DEGRADED, f"topic delivery stopped: {self._poller_error}"
        ok = state is not QuorumState.LOST
        return GridQuorum(
            backend=self.backend,
            state=state,
            client_connected=ok,
            members_seen=1 if ok else 0,
            members_expected=1,
            last_resync_ns=None,
            reason=reason,
        )

    def _is_current(self) -> bool:
        path = _segment_path(self.name)
        if not path.parent.is_dir():  # pragma: no cover - no /dev/shm: nothing to compare with
            return True
        try:
            return os.stat(path).st_ino == self._ino
        except FileNotFoundError:
            return False

    # ---- subscriptions: one poller thread per process
    def _subscribe(self, topic: bytes, callback: Callable[[GridValue], None]) -> str:
        seg = self._seg_checked()
        sid = f"{topic.decode()}-{os.getpid()}-{next(self._ids)}"
        with self._lock:
            self._subs[sid] = (topic, callback)
            if self._poller is None:
                self._poller_error = ""
                self._cursor = seg.q[H_HEAD]
                self._poller = threading.Thread(target=self._poll, name=f"grid-shm-poll-{self.name}", daemon=True)
                self._poller.start()
        return sid

    def _unsubscribe(self, sid: str) -> bool:
        with self._lock:
            return self._subs.pop(sid, None) is not None

    def _poll(self) -> None:
        """Deliver ring messages to this process's subscribers; exits when none is left.

        An unexpected failure is counted, logged and shown by quorum() (DEGRADED); the next
        subscribe starts a new poller."""
        try:
            self._poll_loop()
        except Exception as exc:
            self.poller_failures += 1
            self._poller_error = f"{type(exc).__name__}: {exc}"
            log.exception("grid %s: topic delivery failed", self.name)
            with self._lock:
                self._poller = None

    def _poll_loop(self) -> None:
        seg = self._seg_checked()
        idle = 0
        while not self._stop.is_set():
            head = seg.q[H_HEAD]
            if self._cursor >= head:
                with self._lock:
                    if not self._subs:  # no subscriber left: stop polling (no idle wake-ups)
                        self._poller = None
                        return
                idle += 1
                # spin briefly (a reply is often just behind), then sleep
                time.sleep(0 if idle < 50 else self._poll_interval_s)
                continue
            idle = 0
            if head - self._cursor > seg.ring_slots:
                lost = head - self._cursor - seg.ring_slots
                self.dropped += lost
                self._cursor += lost
            while self._cursor < head:
                msg = seg.ring_read(self._cursor)
                self._cursor += 1
                if msg is None:
                    self.dropped += 1
                    continue
                topic, payload = msg
                with self._lock:
                    targets = [cb for t, cb in self._subs.values() if t == topic]
                if not targets:
                    continue
                for cb in targets:
                    try:
                        cb(decode_value(payload))
                    except Exception:
                        self.listener_errors += 1
                        log.exception("grid topic %s: listener failed", topic.decode())

    def close(self, unlink: bool = False) -> None:
        if self._seg is None:
            return
        self._stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5.0)
        # Under the write lock: a writer of this process is never cut off mid-write, and the
        # unlinks below are seen by an opener only together (acquire_current). From inside the
        # lock (an entry processor closing the grid) it is already held.
        locked = False
        if not self._wlock.held_here():
            try:
                self._wlock.__enter__()
                locked = True
            except GridUnavailableError:  # inherited through fork and not reopened: close anyway
                pass
        try:
            seg, self._seg = self._seg, None
            if seg is not None:
                shm = seg.shm
                seg.release()
                shm.close()
                if unlink:
                    _unlink(shm)
                    _lock_path(self.name).unlink(missing_ok=True)
        finally:
            if locked:
                self._wlock.__exit__()
        self._wlock.close()
