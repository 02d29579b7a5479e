"""The grid protocol the rest of dolphin uses, whatever the backend.

Exception tree::

    GridError
      + GridUnavailableError   (the backend cannot be reached: client offline, segment gone)
      + GridValueError         (a value or key the grid cannot store)
      + GridProcessorError     (a processor with no server-side implementation on this backend)

Semantics shared by every backend (checked by ``tests/grid/test_contract.py`` against each):

- Keys are ``str``. Values are :data:`dolphin.grid.records.GridValue`, validated on write by
  every backend alike (:func:`check_value`; a refused value is a GridValueError, never stored).
  A value read back is a new object equal to the one written (no aliasing); a stored value that
  cannot be decoded (an older writer's) reads as GridValueError, never a bare decoder error.
- ``replace_if_same(key, expected, new)`` is atomic: it succeeds only if the current value
  serializes to the same bytes as ``expected``. ``put_if_absent`` is atomic too.
- ``execute_on_key(key, processor)`` runs ``processor`` atomically on the entry where the data
  lives (the owning member for Hazelcast, under the map's lock for the embedded backends) and
  returns its result; no other write to that key interleaves.
- Topic listeners run on a backend thread, in publish order per topic, never in the
  publisher's call.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Mapping, Protocol, TypeVar, runtime_checkable

from dolphin.grid.records import GridValue

__all__ = [
    "FEATURES_MAP",
    "HEALTH_MAP",
    "ACB_MAP",
    "ENVELOPE_MAP",
    "SIGNALS_TOPIC",
    "POSTURE_TOPIC",
    "Grid",
    "GridError",
    "GridMap",
    "GridProcessor",
    "GridProcessorError",
    "GridQuorum",
    "GridTopic",
    "GridUnavailableError",
    "GridValueError",
    "QuorumState",
    "check_key",
    "check_value",
    "health_key",
]

FEATURES_MAP = "DOLPHIN_FEATURES"
HEALTH_MAP = "DOLPHIN_HEALTH_GRID"
ACB_MAP = "DOLPHIN_ACB"
ENVELOPE_MAP = "DOLPHIN_FOREWARN"
SIGNALS_TOPIC = "DOLPHIN_SIGNALS"
POSTURE_TOPIC = "DOLPHIN_POSTURE"


class GridError(Exception):
    """Base of every grid failure."""


class GridUnavailableError(GridError):
    """The grid cannot be reached (Hazelcast client offline, shared segment gone)."""


class GridValueError(GridError, ValueError):
    """A key or value the grid cannot store (wrong type, too large for a shared-memory slot)."""


class GridProcessorError(GridError):
    """A processor that this backend cannot run (no server-side implementation registered)."""


def health_key(layer: str, sensor: str) -> str:
    """The ``DOLPHIN_HEALTH_GRID`` key of one sensor: ``"<layer>/<sensor>"``."""
    if "/" in layer:
        raise GridValueError(f"layer name {layer!r} must not contain '/'")
    return f"{layer}/{sensor}"


@runtime_checkable
class GridProcessor(Protocol):
    """A function applied atomically on one entry.

    ``apply(old)`` returns ``(new_value, result)``; ``new_value`` replaces the entry (``None``
    deletes it) and ``result`` goes back to the caller. A processor usable on Hazelcast is also
    an ``IdentifiedDataSerializable`` whose Java twin is registered on the member
    (see ``dolphin.grid.acb.AcbProcessor``); its Python ``apply`` must compute the same thing.
    """

    def apply(self, old: GridValue) -> tuple[GridValue, object]: ...


class QuorumState(enum.Enum):
    """What the grid can promise right now (read by the survival controller's L1 quorum layer)."""

    OK = "ok"  # connected, every expected member seen, resynchronised
    DEGRADED = "degraded"  # connected, fewer members than expected (backups may be gone)
    LOST = "lost"  # not connected, or reconnected but not yet resynchronised


@dataclass(frozen=True, slots=True)
class GridQuorum:
    """A snapshot of the grid's health as one client sees it.

    ``state`` is LOST while disconnected and after a reconnection until the client has
    resynchronised (checked that the cluster kept its data, or re-published its own state into a
    cluster that lost it); ``last_resync_ns`` is the monotonic time of the last completed resync
    (None if never needed).
    """

    backend: str
    state: QuorumState
    client_connected: bool
    members_seen: int
    members_expected: int
    last_resync_ns: int | None
    reason: str = ""

    @property
    def lost(self) -> bool:
        return self.state is QuorumState.LOST


class GridMap(abc.ABC):
    """A named map of str -> GridValue."""

    name: str

    @abc.abstractmethod
    def get(self, key: str) -> GridValue: ...

    @abc.abstractmethod
    def put(self, key: str, value: GridValue) -> None: ...

    @abc.abstractmethod
    def put_all(self, entries: Mapping[str, GridValue]) -> None: ...

    @abc.abstractmethod
    def get_all(self, keys: Iterable[str]) -> dict[str, GridValue]:
        """Values of the keys present (absent keys are left out)."""

    @abc.abstractmethod
    def put_if_absent(self, key: str, value: GridValue) -> GridValue:
        """Store ``value`` if ``key`` is absent; return the previous value (None if stored)."""

    @abc.abstractmethod
    def replace_if_same(self, key: str, expected: GridValue, new: GridValue) -> bool:
        """Atomic compare-and-set; True if the value was ``expected`` and is now ``new``."""

    @abc.abstractmethod
    def remove(self, key: str) -> GridValue:
        """Remove ``key``; return its previous value (None if absent)."""

    @abc.abstractmethod
    def execute_on_key(self, key: str, processor: GridProcessor) -> object: ...

    @abc.abstractmethod
    def keys(self) -> list[str]: ...

    @abc.abstractmethod
    def entries(self) -> dict[str, GridValue]: ...

    @abc.abstractmethod
    def size(self) -> int: ...

    @abc.abstractmethod
    def clear(self) -> None: ...


class GridTopic(abc.ABC):
    """A named publish/subscribe topic."""

    name: str

    @abc.abstractmethod
    def publish(self, message: GridValue) -> None: ...

    @abc.abstractmethod
    def subscribe(self, callback: Callable[[GridValue], None]) -> str:
        """Register ``callback``; return a subscription id for :meth:`unsubscribe`."""

    @abc.abstractmethod
    def unsubscribe(self, subscription_id: str) -> bool: ...


class Grid(abc.ABC):
    """A state grid: named maps and topics plus a health signal."""

    backend: str

    @abc.abstractmethod
    def map(self, name: str) -> GridMap: ...

    @abc.abstractmethod
    def topic(self, name: str) -> GridTopic: ...

    @abc.abstractmethod
    def quorum(self) -> GridQuorum: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Grid":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_value(value: object) -> GridValue:
    """``value`` as the grid stores it: validated and normalised, the same on every backend
    (:func:`dolphin.grid.records.canonical_value`); None is not a value (use ``remove``).

    Raises GridValueError for a value the grid refuses."""
    from dolphin.grid.records import canonical_value

    return canonical_value(value)


def check_key(key: object) -> str:
    """Keys are non-empty str (both backends), checked at the boundary."""
    if not isinstance(key, str) or not key:
        raise GridValueError(f"grid keys are non-empty str, got {key!r}")
    return key


_T = TypeVar("_T")


def get_or_create(lock: ContextManager[object], registry: dict[str, _T], name: str, make: Callable[[str], _T]) -> _T:
    """The registry's object for ``name``, made by ``make(name)`` under ``lock`` on first use
    (one map / topic handle per name and grid)."""
    with lock:
        obj = registry.get(name)
        if obj is None:
            obj = registry[name] = make(name)
        return obj
