"""Embedded backend for one process: maps and topics in memory, no extra service.

Values are stored serialized (msgpack), so a read returns a fresh object and compare-and-set
compares serialized bytes, exactly as Hazelcast does. Every map has its own lock (no reliance
on the GIL); topic messages are delivered by one dispatcher thread per grid, in publish order,
never inside ``publish`` (as with Hazelcast).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Callable, Iterable, Mapping

from dolphin.grid.protocol import (
    Grid,
    GridMap,
    GridProcessor,
    GridProcessorError,
    GridQuorum,
    GridTopic,
    GridUnavailableError,
    QuorumState,
    check_key,
    get_or_create,
)
from dolphin.grid.records import GridValue, decode_value, encode_value

__all__ = ["InProcessGrid"]

log = logging.getLogger(__name__)


class _Map(GridMap):
    def __init__(self, name: str, grid: "InProcessGrid") -> None:
        self.name = name
        self._grid = grid
        self._lock = threading.Lock()
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> GridValue:
        check_key(key)
        self._grid._check_open()
        with self._lock:
            raw = self._data.get(key)
        return None if raw is None else decode_value(raw)

    def put(self, key: str, value: GridValue) -> None:
        check_key(key)
        raw = encode_value(value)
        self._grid._check_open()
        with self._lock:
            self._data[key] = raw

    def put_all(self, entries: Mapping[str, GridValue]) -> None:
        encoded = {check_key(k): encode_value(v) for k, v in entries.items()}
        self._grid._check_open()
        with self._lock:
            self._data.update(encoded)

    def get_all(self, keys: Iterable[str]) -> dict[str, GridValue]:
        wanted = [check_key(k) for k in keys]
        self._grid._check_open()
        with self._lock:
            raws = {k: self._data[k] for k in wanted if k in self._data}
        return {k: decode_value(v) for k, v in raws.items()}

    def put_if_absent(self, key: str, value: GridValue) -> GridValue:
        check_key(key)
        raw = encode_value(value)
        self._grid._check_open()
        with self._lock:
            old = self._data.get(key)
            if old is None:
                self._data[key] = raw
        return None if old is None else decode_value(old)

    def replace_if_same(self, key: str, expected: GridValue, new: GridValue) -> bool:
        check_key(key)
        raw_expected = encode_value(expected)
        raw_new = encode_value(new)
        self._grid._check_open()
        with self._lock:
            if self._data.get(key) != raw_expected:
                return False
            self._data[key] = raw_new
            return True

    def remove(self, key: str) -> GridValue:
        check_key(key)
        self._grid._check_open()
        with self._lock:
            old = self._data.pop(key, None)
        return None if old is None else decode_value(old)

    def execute_on_key(self, key: str, processor: GridProcessor) -> object:
        check_key(key)
        if not isinstance(processor, GridProcessor):
            raise GridProcessorError(f"{processor!r} has no apply(old) -> (new, result)")
        self._grid._check_open()
        with self._lock:
            raw = self._data.get(key)
            new, result = processor.apply(None if raw is None else decode_value(raw))
            if new is None:
                self._data.pop(key, None)
            else:
                self._data[key] = encode_value(new)
        return result

    def keys(self) -> list[str]:
        self._grid._check_open()
        with self._lock:
            return list(self._data)

    def entries(self) -> dict[str, GridValue]:
        self._grid._check_open()
        with self._lock:
            raws = dict(self._data)
        return {k: decode_value(v) for k, v in raws.items()}

    def size(self) -> int:
        self._grid._check_open()
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        self._grid._check_open()
        with self._lock:
            self._data.clear()


class _Topic(GridTopic):
    def __init__(self, name: str, grid: "InProcessGrid") -> None:
        self.name = name
        self._grid = grid
        self._lock = threading.Lock()
        self._listeners: dict[str, Callable[[GridValue], None]] = {}

    def publish(self, message: GridValue) -> None:
        raw = encode_value(message)
        self._grid._check_open()
        self._grid._dispatch.put((self, raw))

    def subscribe(self, callback: Callable[[GridValue], None]) -> str:
        self._grid._check_open()
        sid = f"{self.name}-{next(self._grid._ids)}"
        with self._lock:
            self._listeners[sid] = callback
        return sid

    def unsubscribe(self, subscription_id: str) -> bool:
        with self._lock:
            return self._listeners.pop(subscription_id, None) is not None

    def _deliver(self, raw: bytes) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for cb in listeners:
            try:
                cb(decode_value(raw))
            except Exception:  # a listener failure is counted, never kills the dispatcher
                self._grid.listener_errors += 1
                log.exception("grid topic %s: listener failed", self.name)


_STOP = object()


class InProcessGrid(Grid):
    """The embedded default for one process."""

    backend = "embedded-process"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: dict[str, _Map] = {}
        self._topics: dict[str, _Topic] = {}
        self._ids = itertools.count(1)
        self._dispatch: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self.listener_errors = 0
        self._thread = threading.Thread(target=self._run, name="grid-topic-dispatch", daemon=True)
        self._thread.start()

    def _check_open(self) -> None:
        if self._closed:
            raise GridUnavailableError("embedded grid is closed")

    def map(self, name: str) -> GridMap:
        self._check_open()
        return get_or_create(self._lock, self._maps, name, lambda n: _Map(n, self))

    def topic(self, name: str) -> GridTopic:
        self._check_open()
        return get_or_create(self._lock, self._topics, name, lambda n: _Topic(n, self))

    def quorum(self) -> GridQuorum:
        ok = not self._closed
        return GridQuorum(
            backend=self.backend,
            state=QuorumState.OK if ok else QuorumState.LOST,
            client_connected=ok,
            members_seen=1 if ok else 0,
            members_expected=1,
            last_resync_ns=None,
            reason="" if ok else "grid closed",
        )

    def _run(self) -> None:
        while True:
            item = self._dispatch.get()
            if item is _STOP:
                return
            topic, raw = item  # type: ignore[misc]
            topic._deliver(raw)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._dispatch.put(_STOP)
        self._thread.join(timeout=5.0)

    def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until every message published so far has been delivered (tests, shutdown)."""
        done = threading.Event()

        class _Marker:
            def _deliver(self, raw: bytes) -> None:
                done.set()

        self._dispatch.put((_Marker(), b""))
        deadline = time.monotonic() + timeout_s
        done.wait(max(0.0, deadline - time.monotonic()))
