"""Scale-out: per-asset work partitioned across K worker processes that write to the grid.

``dolphin scan --workers K`` calls :class:`ScanWorkerPool`: each worker owns a contiguous
slice of the assets (and their price history), and on every bar computes its assets'
close-to-close log returns over the last ``window`` bars plus the order-book-feature slot,
and writes one :class:`FeatureRecord` per asset into ``DOLPHIN_FEATURES`` with one
``put_all``. The eigen scan then reads the whole return matrix back
(:func:`read_return_matrix`). The grid must be shared between processes: the shared-memory
embedded backend or Hazelcast (the in-process backend is refused).

Workers are spawned (not forked), open their grid once, and stay up between bars. A worker that
cannot open the grid (or does not start in time) fails the pool's construction with
GridUnavailableError, every worker stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import multiprocessing.pool
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from dolphin.grid.config import GridConfig
from dolphin.grid.protocol import FEATURES_MAP, Grid, GridError, GridUnavailableError
from dolphin.grid.records import FeatureRecord, feature_checksum

log = logging.getLogger(__name__)

__all__ = [
    "ScanStep",
    "ScanWorkerPool",
    "scan_workers",
    "asset_features",
    "log_returns_window",
    "partition_assets",
    "read_return_matrix",
    "read_verified_return_matrix",
]


def partition_assets(n_assets: int, workers: int) -> list[slice]:
    """Contiguous, balanced slices of ``range(n_assets)`` (sizes differ by at most one)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    k = min(workers, max(n_assets, 1))
    bounds = np.linspace(0, n_assets, k + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def log_returns_window(close: np.ndarray, bar: int, window: int) -> np.ndarray:
    """Log returns ``ln(c_t / c_{t-1})`` for t in (bar-window, bar], shape (window, n_assets).

    ``close`` is (T, n_assets); bars before the start are NaN.
    """
    lo = bar - window
    if bar >= close.shape[0] or bar < 0:
        raise IndexError(f"bar {bar} outside the {close.shape[0]} bars")
    seg = close[max(lo, 0) : bar + 1]
    r = np.diff(np.log(seg), axis=0)
    if r.shape[0] < window:
        r = np.vstack([np.full((window - r.shape[0], close.shape[1]), np.nan), r])
    return r


def asset_features(
    assets: Sequence[str], returns: np.ndarray, bar: int, ts_ns: int, book: np.ndarray | None = None
) -> dict[str, FeatureRecord]:
    """One FeatureRecord per asset; ``book`` is (n_assets, 3): WOBI, depth quality, spread bps."""
    out: dict[str, FeatureRecord] = {}
    rows = np.ascontiguousarray(returns.T, dtype="<f8")  # one row per asset, oldest first
    columns = rows.tolist()  # one conversion for all assets
    nan3 = (np.nan, np.nan, np.nan)
    for j, asset in enumerate(assets):
        wobi, dq, spread = (float(x) for x in book[j]) if book is not None else nan3
        crc = feature_checksum(asset, ts_ns, bar, rows[j].tobytes())
        out[asset] = FeatureRecord(asset, ts_ns, bar, tuple(columns[j]), wobi, dq, spread, crc)
    return out


def read_return_matrix(grid: Grid, assets: Sequence[str], window: int, bar: int | None = None) -> np.ndarray:
    """The (window, n_assets) return matrix from ``DOLPHIN_FEATURES``; NaN where missing/stale
    (checksums not verified: see :func:`read_verified_return_matrix`)."""
    return read_verified_return_matrix(grid, assets, window, bar, verify=False)[0]


def read_verified_return_matrix(
    grid: Grid, assets: Sequence[str], window: int, bar: int | None = None, *, verify: bool = True
) -> tuple[np.ndarray, list[str]]:
    """The (window, n_assets) return matrix and the assets whose record failed its checksum
    (or carried none): their columns are NaN, as for a missing or stale record."""
    recs = grid.map(FEATURES_MAP).get_all(list(assets))
    nan_col = (np.nan,) * window
    rows = []
    for asset in assets:
        rec = recs.get(asset)
        ok = isinstance(rec, FeatureRecord) and (bar is None or rec.last_bar == bar) and len(rec.log_returns) == window
        rows.append(rec.log_returns if ok else nan_col)  # type: ignore[union-attr]
    if not rows:
        return np.full((window, 0), np.nan), []
    m = np.array(rows, dtype="<f8")  # one conversion for the whole matrix; row j = asset j
    failed: list[str] = []
    if verify:
        for j, asset in enumerate(assets):
            if rows[j] is nan_col:
                continue
            rec = recs[asset]
            if rec.crc != feature_checksum(asset, rec.ts_ns, rec.last_bar, m[j].tobytes()):  # type: ignore[union-attr]
                failed.append(asset)
                m[j] = np.nan
    return m.T, failed


# ---------------------------------------------------------------- worker process side
_W: dict[str, object] = {}


def _worker_init(cfg_raw: bytes, assets: list[str], close: np.ndarray, book: np.ndarray | None, window: int) -> None:
    """Open the worker's grid. A failure is kept and reported by :func:`_worker_ping`: an
    initializer that raises makes multiprocessing.Pool respawn the worker forever (and the
    coordinator wait forever)."""
    from multiprocessing.util import Finalize

    import msgspec

    from dolphin.grid.factory import open_grid

    try:
        cfg = msgspec.msgpack.decode(cfg_raw, type=GridConfig)
        grid = open_grid(cfg, create=False)
    except Exception as exc:
        _W["init_error"] = f"{type(exc).__name__}: {exc}"
        return
    Finalize(None, grid.close, exitpriority=10)  # pool workers skip atexit; this runs on their exit
    _W.update(grid=grid, assets=assets, close=close, book=book, window=window)


def _worker_step(bar: int, ts_ns: int) -> tuple[int, int]:
    grid: Grid = _W["grid"]  # type: ignore[assignment]
    t0 = time.perf_counter_ns()
    r = log_returns_window(_W["close"], bar, _W["window"])  # type: ignore[arg-type]
    recs = asset_features(_W["assets"], r, bar, ts_ns, _W["book"])  # type: ignore[arg-type]
    grid.map(FEATURES_MAP).put_all(recs)
    return len(recs), time.perf_counter_ns() - t0


def _worker_ping() -> int:
    import os

    error = _W.get("init_error")
    if error:
        raise GridUnavailableError(f"scan worker {os.getpid()} could not open the grid: {error}")
    return os.getpid()


@dataclass(frozen=True, slots=True)
class ScanStep:
    """One bar of scale-out work: the matrix read back and where the time went."""

    returns: np.ndarray  # (window, n_assets), read back from the grid (NaN where not verified)
    workers_ns: int  # wall time until every worker had written its slice
    read_ns: int  # wall time to read the whole matrix back and verify its checksums
    assets_written: int
    checksum_failures: tuple[str, ...] = ()  # assets whose record failed its CRC (or had none)


class ScanWorkerPool:
    """K spawned workers, each owning a slice of the assets, writing features to the grid.

    Parameters
    ----------
    cfg:
        Grid config shared by workers (shared-memory embedded or Hazelcast).
    grid:
        The coordinator's own grid view (used to read the matrix back).
    assets, close:
        Asset names and their close prices, (T, n_assets).
    book:
        Optional (n_assets, 3) order-book slot (WOBI, depth quality, spread bps).
    start_timeout_s:
        How long the workers may take to start and open their grid (default: the grid's
        ``connect_timeout_s`` plus 60 s for spawning); past it, or when a worker cannot open the
        grid, every worker is stopped and :class:`GridUnavailableError` raised.
    """

    def __init__(
        self,
        cfg: GridConfig,
        grid: Grid,
        assets: Sequence[str],
        close: np.ndarray,
        *,
        workers: int,
        window: int = 300,
        book: np.ndarray | None = None,
        start_timeout_s: float | None = None,
    ) -> None:
        import msgspec

        if cfg.backend == "embedded" and cfg.embedded_mode == "process":
            raise GridError("scale-out needs a grid shared between processes: embedded_mode='shm' or hazelcast")
        if close.ndim != 2 or close.shape[1] != len(assets):
            raise ValueError(f"close must be (T, {len(assets)}), got {close.shape}")
        self.assets = list(assets)
        self.window = window
        self._grid = grid
        self.slices = partition_assets(len(assets), workers)
        ctx = mp.get_context("spawn")
        raw = msgspec.msgpack.encode(cfg)
        self._pools: list[mp.pool.Pool] = []
        timeout_s = cfg.connect_timeout_s + 60.0 if start_timeout_s is None else start_timeout_s
        try:
            for sl in self.slices:
                pool = ctx.Pool(
                    1,
                    initializer=_worker_init,
                    initargs=(raw, self.assets[sl], np.ascontiguousarray(close[:, sl]), None if book is None else book[sl], window),
                )
                self._pools.append(pool)
            deadline = time.monotonic() + timeout_s
            pings = [pool.apply_async(_worker_ping) for pool in self._pools]
            for i, ping in enumerate(pings):  # wait until every worker has opened its grid
                try:
                    ping.get(timeout=max(0.0, deadline - time.monotonic()))
                except mp.TimeoutError:
                    raise GridUnavailableError(
                        f"scan worker {i} of {len(pings)} did not start and open the grid "
                        f"within {timeout_s:.0f} s"
                    ) from None
                except GridError:
                    raise
                except Exception as exc:  # anything else the worker raised
                    msg = f"scan worker {i} of {len(pings)} failed to start: {exc}"
                    raise GridUnavailableError(msg) from exc
        except BaseException:
            self.terminate()
            raise

    @property
    def workers(self) -> int:
        return len(self._pools)

    def step(self, bar: int, ts_ns: int | None = None) -> ScanStep:
        """Every worker writes its assets' features for ``bar``; then read the whole matrix."""
        ts = time.time_ns() if ts_ns is None else ts_ns
        t0 = time.perf_counter_ns()
        pending = [p.apply_async(_worker_step, (bar, ts)) for p in self._pools]
        written = sum(res.get(timeout=120)[0] for res in pending)
        t1 = time.perf_counter_ns()
        matrix, failed = read_verified_return_matrix(self._grid, self.assets, self.window, bar)
        t2 = time.perf_counter_ns()
        if failed:
            log.error("bar %d: %d feature records failed their checksum: %s", bar, len(failed), failed[:10])
        return ScanStep(matrix, t1 - t0, t2 - t1, written, tuple(failed))

    def close(self) -> None:
        for pool in self._pools:
            pool.close()
        for pool in self._pools:
            pool.join()

    def terminate(self) -> None:
        """Stop every worker now (a failed start)."""
        for pool in self._pools:
            pool.terminate()
        for pool in self._pools:
            pool.join()

    def __enter__(self) -> "ScanWorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def scan_workers(
    cfg: GridConfig,
    assets: Sequence[str],
    close: np.ndarray,
    *,
    workers: int,
    window: int = 300,
    book: np.ndarray | None = None,
) -> Iterator[ScanWorkerPool]:
    """Open the coordinator's grid and K workers; close both (the entry point of
    ``dolphin scan --workers K``)::

        with scan_workers(cfg.grid, assets, close, workers=4) as pool:
            for bar in bars:
                matrix = pool.step(bar).returns  # (window, n_assets) -> eigen scan

    With the in-process default backend the shared-memory backend is used instead (workers
    are other processes); its segment is created here and removed at the end.
    """
    from dolphin.grid.factory import open_grid

    if cfg.backend == "embedded" and cfg.embedded_mode == "process":
        import msgspec

        cfg = msgspec.structs.replace(cfg, embedded_mode="shm", shm_name=f"{cfg.shm_name}-scan-{mp.current_process().pid}")
    grid = open_grid(cfg)
    try:
        with ScanWorkerPool(cfg, grid, assets, close, workers=workers, window=window, book=book) as pool:
            yield pool
    finally:
        from dolphin.grid.shm import SharedMemoryGrid

        if isinstance(grid, SharedMemoryGrid):
            grid.close(unlink=grid.created)
        else:
            grid.close()
