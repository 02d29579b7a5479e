"""Hazelcast backend: the same grid protocol on a real Hazelcast Platform 5.6 cluster.

- Records travel with Compact serialization (one serializer per record type, built from the
  struct's fields; :data:`dolphin.grid.records.COMPACT_TYPE_NAMES`). ``AcbState`` uses the same
  type name and fields as the Java ``AcbEntryProcessor``, which writes it on the member.
- ``execute_on_key`` sends an IdentifiedDataSerializable processor whose Java twin is
  registered on the member (factory 1701, ``grid-member/``); a processor without one is
  refused with :class:`GridProcessorError` (Python code cannot run on a Java member).
- Readers (``near_cache_maps``) get a client near cache with invalidation on change and a
  time-to-live: the Python client has no invalidation repair, so a lost invalidation is
  bounded by the TTL. Member-side invalidation batching is off in the shipped config.
- Health: a lifecycle listener tracks the connection; after a reconnection the client reads
  LOST until it is resynchronised: it checks whether the cluster kept its data (the data epoch,
  a marker every client creates with put-if-absent, is still the one it knew) and, only if the
  data was lost (the whole cluster restarted), re-publishes what it wrote itself (its write
  shadow) with put-if-absent, never over a value present, and a versioned record
  (EnvelopeRecord, AcbState) only by compare-and-set over a lower version. A reconnection to a
  cluster that kept its data re-publishes nothing: the client's old writes would overwrite newer
  ones, roll versions back and bring removed keys back (the 2026-12-06 review).
- Community edition has no CP subsystem: compare-and-set is ``IMap.replaceIfSame`` (atomic on
  the owning partition) and read-modify-write is an entry processor.
"""

from __future__ import annotations

import logging
import threading
import time
import typing
import uuid
from typing import Any, Callable, Iterable, Mapping, Sequence

import hazelcast
from hazelcast.errors import HazelcastError, HazelcastSerializationError
from hazelcast.lifecycle import LifecycleState
from hazelcast.serialization.api import (
    CompactReader,
    CompactSerializer,
    CompactWriter,
    FieldKind,
    IdentifiedDataSerializable,
)

from dolphin.grid.acb import ACB_PROCESSOR_CLASS_ID, GRID_FACTORY_ID, AcbProcessor
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
    check_value,
)
from dolphin.grid.records import COMPACT_TYPE_NAMES, AcbState, EnvelopeRecord, GridValue, encode_value

__all__ = ["HazelcastGrid", "RecordCompactSerializer", "compact_serializers"]

log = logging.getLogger(__name__)


class RecordCompactSerializer(CompactSerializer[Any]):
    """Compact serializer for one msgspec record type, field by field.

    str -> string, int -> int64, float -> float64, bool -> boolean,
    tuple[float, ...] -> array_of_float64.
    """

    _WRITERS = {
        str: "write_string",
        int: "write_int64",
        float: "write_float64",
        bool: "write_boolean",
        tuple: "write_array_of_float64",
    }

    def __init__(self, cls: type) -> None:
        self._cls = cls
        self._type_name = COMPACT_TYPE_NAMES[cls]
        hints = typing.get_type_hints(cls)
        self._fields: list[tuple[str, str, str]] = []
        for name in cls.__struct_fields__:  # type: ignore[attr-defined]
            hint = hints[name]
            kind = typing.get_origin(hint) or hint
            writer = self._WRITERS[kind]
            self._fields.append((name, writer, writer.replace("write_", "read_", 1)))

    def write(self, writer: CompactWriter, obj: Any) -> None:
        for name, w, _ in self._fields:
            value = getattr(obj, name)
            getattr(writer, w)(name, list(value) if w == "write_array_of_float64" else value)

    def read(self, reader: CompactReader) -> Any:
        kwargs = {}
        for name, w, r in self._fields:
            if reader.get_field_kind(name) == FieldKind.NOT_AVAILABLE:
                # written under an older schema without this (later-added, defaulted) field,
                # e.g. FeatureRecord.crc from a not yet upgraded worker: the struct's default
                continue
            value = getattr(reader, r)(name)
            kwargs[name] = tuple(value or ()) if w == "write_array_of_float64" else value
        return self._cls(**kwargs)

    def get_class(self) -> type:
        return self._cls

    def get_type_name(self) -> str:
        return self._type_name


def compact_serializers() -> list[RecordCompactSerializer]:
    return [RecordCompactSerializer(cls) for cls in COMPACT_TYPE_NAMES]


def _out(value: Any) -> GridValue:
    # The client returns byte arrays as bytearray; the grid protocol returns bytes.
    return bytes(value) if isinstance(value, bytearray) else value


# The cluster's data epoch (HazelcastGrid._claim_epoch): one marker entry in an internal map.
_EPOCH_MAP = "__dolphin_grid_epoch"
_EPOCH_KEY = "epoch"


def _version_of(value: GridValue) -> int | None:
    """The version of a versioned record (replaced only by compare-and-set on it), else None."""
    return value.version if isinstance(value, (EnvelopeRecord, AcbState)) else None


class _HzMap(GridMap):
    def __init__(self, name: str, grid: "HazelcastGrid") -> None:
        self.name = name
        self._grid = grid
        self._m = grid._client.get_map(name).blocking()

    def get(self, key: str) -> GridValue:
        check_key(key)
        with self._grid._errors():
            return _out(self._m.get(key))

    def put(self, key: str, value: GridValue) -> None:
        check_key(key)
        value = check_value(value)
        with self._grid._errors():
            self._m.set(key, value)
        self._grid._shadow_put(self.name, key, value)

    def put_all(self, entries: Mapping[str, GridValue]) -> None:
        entries = {check_key(k): check_value(v) for k, v in entries.items()}
        if not entries:
            return
        with self._grid._errors():
            self._m.put_all(entries)
        for k, v in entries.items():
            self._grid._shadow_put(self.name, k, v)

    def get_all(self, keys: Iterable[str]) -> dict[str, GridValue]:
        wanted = [check_key(k) for k in keys]
        if not wanted:
            return {}
        with self._grid._errors():
            return {k: _out(v) for k, v in self._m.get_all(wanted).items()}

    def put_if_absent(self, key: str, value: GridValue) -> GridValue:
        check_key(key)
        value = check_value(value)
        with self._grid._errors():
            old = self._m.put_if_absent(key, value)
        if old is None:
            self._grid._shadow_put(self.name, key, value)
        return _out(old)

    def replace_if_same(self, key: str, expected: GridValue, new: GridValue) -> bool:
        check_key(key)
        expected = check_value(expected)
        new = check_value(new)
        with self._grid._errors():
            ok = bool(self._m.replace_if_same(key, expected, new))
        if ok:
            self._grid._shadow_put(self.name, key, new)
        return ok

    def remove(self, key: str) -> GridValue:
        check_key(key)
        self._grid._shadow_remove(self.name, key)  # before the member: see HazelcastGrid._republish
        with self._grid._errors():
            old = self._m.remove(key)
        return _out(old)

    def execute_on_key(self, key: str, processor: GridProcessor) -> object:
        check_key(key)
        if not isinstance(processor, IdentifiedDataSerializable) or (
            processor.get_factory_id(),
            processor.get_class_id(),
        ) not in self._grid.server_processors:
            raise GridProcessorError(
                f"{type(processor).__name__} has no server-side (Java) implementation registered on "
                "the Hazelcast member; see grid-member/"
            )
        # The new value is computed on the member, so this client no longer knows the entry: it
        # leaves the shadow (before the member: see HazelcastGrid._republish) and is not
        # re-published after a data loss (the next processor run starts from an empty entry).
        self._grid._shadow_remove(self.name, key)
        with self._grid._errors():
            return self._m.execute_on_key(key, processor)

    def keys(self) -> list[str]:
        with self._grid._errors():
            return list(self._m.key_set())

    def entries(self) -> dict[str, GridValue]:
        with self._grid._errors():
            return {k: _out(v) for k, v in self._m.entry_set()}

    def size(self) -> int:
        with self._grid._errors():
            return int(self._m.size())

    def clear(self) -> None:
        self._grid._shadow_clear(self.name)  # before the member: see HazelcastGrid._republish
        with self._grid._errors():
            self._m.clear()


class _HzTopic(GridTopic):
    def __init__(self, name: str, grid: "HazelcastGrid") -> None:
        self.name = name
        self._grid = grid
        self._t = grid._client.get_topic(name).blocking()

    def publish(self, message: GridValue) -> None:
        message = check_value(message)
        with self._grid._errors():
            self._t.publish(message)

    def subscribe(self, callback: Callable[[GridValue], None]) -> str:
        def on_message(msg: Any) -> None:
            try:
                callback(_out(msg.message))
            except Exception:
                self._grid.listener_errors += 1
                log.exception("grid topic %s: listener failed", self.name)

        with self._grid._errors():
            return str(self._t.add_listener(on_message=on_message))

    def unsubscribe(self, subscription_id: str) -> bool:
        with self._grid._errors():
            return bool(self._t.remove_listener(subscription_id))


class _ErrorMap:
    """Context manager turning client errors into GridUnavailableError."""

    def __init__(self, grid: "HazelcastGrid") -> None:
        self._grid = grid

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, HazelcastSerializationError):
            raise GridValueError(f"hazelcast cannot serialize the value: {exc}") from exc
        if exc is not None and isinstance(exc, HazelcastError):
            self._grid.errors += 1
            raise GridUnavailableError(f"hazelcast: {type(exc).__name__}: {exc}") from exc
        return False


class HazelcastGrid(Grid):
    """A grid client on a Hazelcast cluster.

    Parameters
    ----------
    cluster_name, members:
        The cluster to join (``members`` as ``"host:port"``).
    near_cache_maps:
        Maps this process reads often (execution-side readers): they get a near cache with
        invalidation on change and ``near_cache_ttl_s``.
    members_expected:
        How many members the quorum signal expects (fewer -> DEGRADED).
    connect_timeout_s:
        How long the first connection may take before :class:`GridUnavailableError`.
    invocation_timeout_s:
        How long one operation may block (retrying) while the cluster is unreachable.
    track_writes:
        Keep a shadow of this client's own writes and re-publish it after a reconnection to a
        cluster that lost its data (see the module docstring).

    Counters: ``resyncs`` (reconnections resynchronised), ``data_losses`` (of those, the ones
    that found the cluster's data lost), ``republished`` (entries re-published after a loss).
    """

    backend = "hazelcast"

    def __init__(
        self,
        *,
        cluster_name: str,
        members: Sequence[str],
        near_cache_maps: Sequence[str] = (),
        near_cache_ttl_s: float = 1.0,
        members_expected: int = 1,
        connect_timeout_s: float = 20.0,
        invocation_timeout_s: float = 5.0,
        track_writes: bool = True,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._clock_ns = clock_ns
        self._members_expected = members_expected
        self._track = track_writes
        self._state_lock = threading.Lock()
        self._connected = False
        self._ever_disconnected = False
        self._resync_pending = False
        self._last_resync_ns: int | None = None
        self._shadow: dict[tuple[str, str], GridValue] = {}
        self._epoch = ""  # the cluster's data epoch this client knows (see _claim_epoch)
        self._maps: dict[str, _HzMap] = {}
        self._topics: dict[str, _HzTopic] = {}
        self._resync_thread: threading.Thread | None = None
        self.errors = 0
        self.listener_errors = 0
        self.resyncs = 0
        self.data_losses = 0
        self.republished = 0
        self.server_processors = {(GRID_FACTORY_ID, ACB_PROCESSOR_CLASS_ID)}
        self._connected_event = threading.Event()
        self._client = hazelcast.HazelcastClient(
            cluster_name=cluster_name,
            cluster_members=list(members),
            async_start=True,
            reconnect_mode=hazelcast.config.ReconnectMode.ON,
            retry_initial_backoff=0.2,
            retry_max_backoff=1.0,
            retry_multiplier=1.5,
            retry_jitter=0.1,
            invocation_timeout=invocation_timeout_s,
            heartbeat_interval=1.0,
            heartbeat_timeout=5.0,
            statistics_enabled=False,
            default_int_type=hazelcast.config.IntType.LONG,  # Python ints are 64-bit Java longs
            lifecycle_listeners=[self._on_lifecycle],
            data_serializable_factories={GRID_FACTORY_ID: {ACB_PROCESSOR_CLASS_ID: AcbProcessor}},
            compact_serializers=compact_serializers(),
            near_caches={
                name: {
                    "invalidate_on_change": True,
                    "time_to_live": near_cache_ttl_s,
                    "in_memory_format": hazelcast.config.InMemoryFormat.OBJECT,
                }
                for name in near_cache_maps
            },
        )
        deadline = time.monotonic() + connect_timeout_s
        connected = self._connected_event.wait(connect_timeout_s)
        # the member list arrives just after the connection: wait for it as well
        while connected and not self._client.cluster_service.get_members() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not connected or not self._client.cluster_service.get_members():
            self._client.shutdown()
            raise GridUnavailableError(
                f"no Hazelcast member of cluster {cluster_name!r} reachable at {list(members)} "
                f"within {connect_timeout_s} s (start one with `dolphin grid member start`)"
            )
        try:
            self._warm_compact_schemas()
            with self._errors():
                self._epoch = self._claim_epoch()
        except BaseException:
            self._client.shutdown()
            raise

    def _warm_compact_schemas(self) -> None:
        """Make every record's Compact schema known to this client (and the cluster) up front.

        A client that receives a Compact value whose schema it has not seen fetches the schema
        asynchronously and handles that event later, so the first messages of a new type on a
        topic could overtake each other (seen in the contract test). Writing one sample of each
        type through the public API replicates its schema and registers it locally.
        """
        defaults = {str: "", int: 0, float: 0.0, bool: False, tuple: ()}
        warm = self._client.get_map("__dolphin_schema_warmup").blocking()
        with self._errors():
            for cls, type_name in COMPACT_TYPE_NAMES.items():
                hints = typing.get_type_hints(cls)
                sample = cls(**{f: defaults[typing.get_origin(hints[f]) or hints[f]] for f in cls.__struct_fields__})
                warm.set(type_name, sample)

    # ---- connection state and resync
    def _on_lifecycle(self, state: str) -> None:
        if state == LifecycleState.CONNECTED:
            with self._state_lock:
                self._connected = True
                resync = self._ever_disconnected
                self._resync_pending = resync
            self._connected_event.set()
            if resync:
                t = threading.Thread(target=self._resync, name="grid-resync", daemon=True)
                self._resync_thread = t
                t.start()
        elif state in (LifecycleState.DISCONNECTED, LifecycleState.SHUTTING_DOWN, LifecycleState.SHUTDOWN):
            with self._state_lock:
                self._connected = False
                self._ever_disconnected = True

    def _claim_epoch(self) -> str:
        """The cluster's data epoch: a random marker that the first client to look creates
        (put-if-absent) and that lives as long as the cluster's data. After a reconnection, a
        different or missing epoch means the cluster lost its data (it restarted empty)."""
        epochs = self._client.get_map(_EPOCH_MAP).blocking()
        mine = uuid.uuid4().hex
        old = epochs.put_if_absent(_EPOCH_KEY, mine)
        return mine if old is None else str(old)

    def _resync(self) -> None:
        """After a reconnection: re-publish this client's own writes if the cluster lost its
        data, then report OK (retry until done or closed)."""
        while True:
            with self._state_lock:
                if not self._connected:
                    return  # the next CONNECTED starts a new resync
            try:
                epoch = self._claim_epoch()
                lost = epoch != self._epoch
                republished = self._republish() if lost else 0
            except HazelcastError as exc:
                self.errors += 1
                log.warning("grid resync failed (%s); retrying", exc)
                if not self._client.lifecycle_service.is_running():
                    return
                time.sleep(0.2)
                continue
            with self._state_lock:
                self._epoch = epoch
                self._resync_pending = False
                self._last_resync_ns = self._clock_ns()
                self.resyncs += 1
                self.data_losses += int(lost)
                self.republished += republished
            if lost:
                log.warning("grid reconnected to a cluster that lost its data: %d entries re-published",
                            republished)  # fmt: skip
            else:
                log.info("grid reconnected; the cluster kept its data (nothing re-published)")
            return

    def _republish(self) -> int:
        """Re-publish the shadow into a cluster that lost its data; the number of entries written.

        Never over a value present (another client may have re-published a newer one first):
        put-if-absent, and a versioned record by compare-and-set over a lower version only.
        Removals, clears and processor runs leave the shadow *before* they reach the member, and
        puts enter it after, so a value this client replaced or removed while the resync ran is
        taken back (remove-if-same) or never written over (the key is present)."""
        if not self._track:
            return 0
        with self._state_lock:
            snapshot = list(self._shadow.items())
        by_map: dict[str, list[tuple[str, GridValue]]] = {}
        for (m, k), v in snapshot:
            by_map.setdefault(m, []).append((k, v))
        written = 0
        for m, entries in by_map.items():
            hz = self._client.get_map(m)
            pending = [(k, v, hz.put_if_absent(k, v)) for k, v in entries]  # pipelined
            for k, v, fut in pending:
                present = _out(fut.result())
                if present is None:
                    written += 1
                    if not self._shadow_holds(m, k, v):  # removed or replaced meanwhile
                        hz.remove_if_same(k, v).result()
                else:
                    written += self._republish_version(hz, m, k, v, present)
        return written

    def _republish_version(self, hz: Any, m: str, k: str, mine: GridValue, present: GridValue) -> int:
        """Replace ``present`` by ``mine`` only if both are versioned records of one type and
        ``present`` has the lower version (compare-and-set, retried); 1 if replaced."""
        version = _version_of(mine)
        while version is not None and type(present) is type(mine):
            if _version_of(present) >= version:  # type: ignore[operator]
                return 0
            if not self._shadow_holds(m, k, mine):
                return 0  # this client wrote the key again meanwhile
            if hz.replace_if_same(k, present, mine).result():
                return 1
            present = _out(hz.get(k).result())
        return 0

    def _shadow_holds(self, m: str, k: str, v: GridValue) -> bool:
        with self._state_lock:
            cur = self._shadow.get((m, k))
        # compared serialized (the grid's equality; a record holding NaN is not == itself)
        return cur is v or (cur is not None and encode_value(cur) == encode_value(v))

    def _shadow_put(self, m: str, k: str, v: GridValue) -> None:
        if self._track:
            with self._state_lock:
                self._shadow[(m, k)] = v

    def _shadow_remove(self, m: str, k: str) -> None:
        if self._track:
            with self._state_lock:
                self._shadow.pop((m, k), None)

    def _shadow_clear(self, m: str) -> None:
        if self._track:
            with self._state_lock:
                for key in [k for k in self._shadow if k[0] == m]:
                    del self._shadow[key]

    def _errors(self) -> _ErrorMap:
        return _ErrorMap(self)

    # ---- Grid
    def map(self, name: str) -> GridMap:
        m = self._maps.get(name)
        if m is None:
            with self._errors():
                m = self._maps.setdefault(name, _HzMap(name, self))
        return m

    def topic(self, name: str) -> GridTopic:
        t = self._topics.get(name)
        if t is None:
            with self._errors():
                t = self._topics.setdefault(name, _HzTopic(name, self))
        return t

    def quorum(self) -> GridQuorum:
        with self._state_lock:
            connected = self._connected
            pending = self._resync_pending
            last = self._last_resync_ns
        try:
            seen = len(self._client.cluster_service.get_members()) if connected else 0
        except Exception:  # the client is shutting down
            seen = 0
        if not connected:
            state, reason = QuorumState.LOST, "client not connected to the cluster"
        elif pending:
            state, reason = QuorumState.LOST, "reconnected; resynchronising"
        elif seen < self._members_expected:
            state, reason = QuorumState.DEGRADED, f"{seen} of {self._members_expected} members"
        else:
            state, reason = QuorumState.OK, ""
        return GridQuorum(
            backend=self.backend,
            state=state,
            client_connected=connected,
            members_seen=seen,
            members_expected=self._members_expected,
            last_resync_ns=last,
            reason=reason,
        )

    def wait_quorum(self, state: QuorumState, timeout_s: float) -> GridQuorum:
        """Poll :meth:`quorum` until it reports ``state`` (or the timeout); return the last one."""
        deadline = time.monotonic() + timeout_s
        q = self.quorum()
        while q.state is not state and time.monotonic() < deadline:
            time.sleep(0.05)
            q = self.quorum()
        return q

    @property
    def client(self) -> hazelcast.HazelcastClient:
        """The underlying client (benchmarks and diagnostics only)."""
        return self._client

    def close(self) -> None:
        self._client.shutdown()
