"""Scale-out workers writing to a shared grid, and the hot-to-cold Parquet sink."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolphin.grid.config import GridConfig
from dolphin.grid.embedded import InProcessGrid
from dolphin.grid.protocol import FEATURES_MAP, HEALTH_MAP, GridError
from dolphin.grid.records import FeatureRecord, HealthRecord
from dolphin.grid.scaleout import (
    ScanWorkerPool,
    log_returns_window,
    partition_assets,
    read_return_matrix,
    read_verified_return_matrix,
)
from dolphin.grid.shm import SharedMemoryGrid
from dolphin.grid.sink import GridSnapshotSink, read_snapshot, snapshot_times

from ._data import real_closes


@given(st.integers(0, 500), st.integers(1, 16))
def test_partition_covers_every_asset_once_balanced(n: int, k: int) -> None:
    parts = partition_assets(n, k)
    covered = [i for sl in parts for i in range(sl.start, sl.stop)]
    assert covered == list(range(n))
    sizes = [sl.stop - sl.start for sl in parts]
    assert max(sizes) - min(sizes) <= 1


def test_log_returns_window_matches_definition() -> None:
    close = np.array([[100.0, 10.0], [101.0, 10.5], [99.0, 10.4], [99.5, 10.6]])  # generated
    r = log_returns_window(close, bar=3, window=2)
    np.testing.assert_allclose(r, np.log(close[2:] / close[1:3]))
    padded = log_returns_window(close, bar=1, window=3)
    assert np.isnan(padded[:2]).all() and np.allclose(padded[2], np.log(close[1] / close[0]))


def test_in_process_grid_is_refused_for_scale_out() -> None:
    with pytest.raises(GridError, match="shared between processes"):
        ScanWorkerPool(GridConfig(), InProcessGrid(), ["A"], np.ones((3, 1)), workers=1)


def _check_pool(cfg: GridConfig, grid, shared_data: Path, workers: int) -> None:  # type: ignore[no-untyped-def]
    assets, close = real_closes(shared_data, n_assets=12, n_bars=400)
    window = 120
    with ScanWorkerPool(cfg, grid, assets, close, workers=workers, window=window) as pool:
        assert pool.workers == workers
        for bar in (window, 250, 399):
            step = pool.step(bar, ts_ns=bar)
            assert step.assets_written == len(assets) and step.checksum_failures == ()
            np.testing.assert_array_equal(step.returns, log_returns_window(close, bar, window))
    assert read_return_matrix(grid, assets, window, bar=399).shape == (window, len(assets))
    _check_corruption_vetoes_the_scan(grid, assets, close, window)


def _check_corruption_vetoes_the_scan(grid, assets, close, window) -> None:  # type: ignore[no-untyped-def]
    """A record altered after its writer sealed it (or never sealed) is not used, and the scan
    that would have used it is VETO (before: the altered returns went into the scan, ATTACK)."""
    import msgspec

    from dolphin.scan.config import ScanConfig
    from dolphin.scan.gate import check_records
    from dolphin.scan.sonar import Sonar

    feats = grid.map(FEATURES_MAP)
    m, failed = read_verified_return_matrix(grid, assets, window, bar=399)
    assert failed == [] and np.array_equal(m, read_return_matrix(grid, assets, window, bar=399), equal_nan=True)
    rec = feats.get(assets[3])
    bad = list(rec.log_returns)
    bad[-1] *= -40.0  # the corruption of the review's repro: x40 with a sign flip
    feats.put(assets[3], msgspec.structs.replace(rec, log_returns=tuple(bad)))
    feats.put(assets[5], msgspec.structs.replace(feats.get(assets[5]), crc=0))  # never sealed
    m, failed = read_verified_return_matrix(grid, assets, window, bar=399)
    assert failed == [assets[3], assets[5]]
    assert np.isnan(m[:, 3]).all() and np.isnan(m[:, 5]).all() and np.isfinite(m[-1, [0, 1, 2, 4]]).all()
    base = ScanConfig()
    scfg = msgspec.structs.replace(
        base, windows=[20, 60], vel_div_short=20, vel_div_long=60, full_spectrum=False,
        regime=msgspec.structs.replace(base.regime, structure_window=20),
    )  # fmt: skip
    sonar = Sonar(len(assets), scfg)
    for t in range(330, 399):
        sonar.update(t, close[t], np.isfinite(close[t]))
    rec = sonar.update(399, close[399], np.isfinite(close[399]), returns=m[-1],
                       extra_inputs=(check_records("returns.checksum", failed),))  # fmt: skip
    assert rec.regime == "VETO" and "returns.checksum" in rec.failed_inputs


def test_workers_write_the_return_matrix_through_shared_memory(shared_data: Path) -> None:
    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    cfg = GridConfig(embedded_mode="shm", shm_name=name, shm_slots=64, shm_slot_bytes=2048)
    grid = SharedMemoryGrid(name, n_slots=64, slot_bytes=2048)
    try:
        _check_pool(cfg, grid, shared_data, workers=3)
    finally:
        grid.close(unlink=True)


@pytest.mark.hazelcast
@pytest.mark.xdist_group("hazelcast")
def test_workers_write_the_return_matrix_through_hazelcast(
    shared_data: Path, hz_cluster: tuple[str, list[str]]
) -> None:
    from dolphin.grid.hazelcast_backend import HazelcastGrid

    cluster, members = hz_cluster
    cfg = GridConfig(backend="hazelcast", cluster_name=cluster, members=tuple(members))
    with HazelcastGrid(cluster_name=cluster, members=members) as grid:
        _check_pool(cfg, grid, shared_data, workers=2)


class FakeClock:
    def __init__(self, t_ns: int) -> None:
        self.t_ns = t_ns

    def __call__(self) -> int:
        return self.t_ns


def test_sink_writes_on_schedule_and_backtest_reads_what_live_saw(tmp_path: Path) -> None:
    grid = InProcessGrid()
    clock = FakeClock(1_700_000_000 * 10**9)
    sink = GridSnapshotSink(grid, tmp_path, interval_s=3600.0, clock_ns=clock)
    feats = grid.map(FEATURES_MAP)
    health = grid.map(HEALTH_MAP)
    v1 = {f"A{i}": FeatureRecord(f"A{i}", i, i, (0.01 * i, -0.02), 0.1, 0.9, 2.0) for i in range(5)}
    feats.put_all(v1)
    health.put("L1/grid", HealthRecord("L1", "grid", 1, 1.0, True, "", 1))
    t1 = clock.t_ns
    assert len(sink.tick()) == 2  # first tick always writes
    clock.t_ns += 1800 * 10**9
    feats.put("A0", FeatureRecord("A0", 99, 99, (0.5,), 0.0, 0.0, 0.0))
    assert sink.tick() == []  # not due yet
    clock.t_ns += 1800 * 10**9
    t2 = clock.t_ns
    assert len(sink.tick()) == 2
    assert snapshot_times(tmp_path, FEATURES_MAP) == [t1, t2]
    ts, seen = read_snapshot(tmp_path, FEATURES_MAP, t2 - 1)  # type: ignore[misc]
    assert ts == t1 and seen == v1
    ts, seen = read_snapshot(tmp_path, FEATURES_MAP, t2 + 5)  # type: ignore[misc]
    assert ts == t2 and seen["A0"] == FeatureRecord("A0", 99, 99, (0.5,), 0.0, 0.0, 0.0)
    _, h = read_snapshot(tmp_path, HEALTH_MAP, t2)  # type: ignore[misc]
    assert h == {"L1/grid": HealthRecord("L1", "grid", 1, 1.0, True, "", 1)}
    assert read_snapshot(tmp_path, FEATURES_MAP, t1 - 1) is None
    assert sink.snapshots == 2 and sink.failures == 0


def test_sink_counts_failures_and_retries(tmp_path: Path) -> None:
    grid = InProcessGrid()
    clock = FakeClock(10**18)
    sink = GridSnapshotSink(grid, tmp_path, clock_ns=clock)
    grid.close()
    assert sink.tick() == []
    assert sink.failures == 1


def test_scan_workers_entry_point_with_the_default_config(shared_data: Path) -> None:
    """`dolphin scan --workers K` entry: the in-process default switches to shared memory."""
    from dolphin.grid.scaleout import scan_workers

    assets, close = real_closes(shared_data, n_assets=6, n_bars=200)
    with scan_workers(GridConfig(), assets, close, workers=2, window=50) as pool:
        step = pool.step(199)
        np.testing.assert_array_equal(step.returns, log_returns_window(close, 199, 50))


def test_a_failed_snapshot_is_retried_at_the_next_tick(tmp_path: Path) -> None:
    """Before: the next due time moved an interval on before the attempt, so a snapshot that
    failed (grid briefly unavailable) was next tried a whole interval (an hour) later."""
    from dolphin.grid.protocol import GridUnavailableError

    grid = InProcessGrid()
    grid.map(FEATURES_MAP).put("BTC", FeatureRecord("BTC", 1, 1, (0.1,), 0.0, 0.0, 0.0))
    t0 = 1_700_000_000 * 10**9
    clock = FakeClock(t0)
    sink = GridSnapshotSink(grid, tmp_path, interval_s=3600.0, maps=(FEATURES_MAP,), clock_ns=clock)
    real_map, down = grid.map, [True]

    def flaky_map(name: str):  # type: ignore[no-untyped-def]
        if down[0]:
            raise GridUnavailableError("client offline")
        return real_map(name)

    grid.map = flaky_map  # type: ignore[method-assign]
    assert sink.tick() == [] and sink.failures == 1
    clock.t_ns = t0 + 10**9
    assert sink.tick() == [] and sink.failures == 2  # still down: tried again, counted
    down[0] = False
    clock.t_ns = t0 + 2 * 10**9
    assert len(sink.tick()) == 1 and sink.snapshots == 1  # back: written at the next tick
    clock.t_ns = t0 + 3 * 10**9
    assert sink.tick() == []  # a written snapshot moves the due time an interval on
    clock.t_ns = t0 + 2 * 10**9 + 3600 * 10**9
    assert len(sink.tick()) == 1 and sink.snapshots == 2
    assert snapshot_times(tmp_path, FEATURES_MAP) == [t0 + 2 * 10**9, t0 + 2 * 10**9 + 3600 * 10**9]


def test_a_worker_that_cannot_open_the_grid_fails_the_pool_at_once() -> None:
    """Before: the worker's initializer raised, multiprocessing.Pool respawned it forever and
    the constructor waited forever (pool.apply without a timeout)."""
    import multiprocessing as mp
    import threading

    from dolphin.grid.protocol import GridUnavailableError

    cfg = GridConfig(embedded_mode="shm", shm_name=f"dolphin-test-missing-{uuid.uuid4().hex[:10]}")
    close = np.exp(np.cumsum(np.full((60, 2), 1e-3), axis=0))  # generated
    before = set(mp.active_children())
    out: dict[str, object] = {}

    def build() -> None:
        try:
            out["pool"] = ScanWorkerPool(cfg, InProcessGrid(), ["A", "B"], close, workers=2, window=10)
        except Exception as exc:
            out["error"] = exc

    t = threading.Thread(target=build, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "ScanWorkerPool() hangs when a worker cannot open the grid"
    err = out.get("error")
    assert isinstance(err, GridUnavailableError) and "could not open the grid" in str(err), out
    assert "does not exist" in str(err)
    assert set(mp.active_children()) <= before  # every worker stopped
    from dolphin.grid.shm import _lock_path

    assert not _lock_path(cfg.shm_name).exists()


def test_workers_that_do_not_start_in_time_fail_the_pool() -> None:
    """Workers that do not answer in time (here: a start timeout shorter than a spawn) are a
    GridUnavailableError naming the timeout, not a wait without end; the workers are stopped."""
    import multiprocessing as mp

    from dolphin.grid.protocol import GridUnavailableError

    name = f"dolphin-test-{uuid.uuid4().hex[:10]}"
    cfg = GridConfig(embedded_mode="shm", shm_name=name, shm_slots=64, shm_slot_bytes=2048)
    grid = SharedMemoryGrid(name, n_slots=64, slot_bytes=2048)
    before = set(mp.active_children())
    try:
        with pytest.raises(GridUnavailableError, match="did not start"):
            ScanWorkerPool(cfg, grid, ["A"], np.ones((5, 1)), workers=1, window=2, start_timeout_s=0.0)
        assert set(mp.active_children()) <= before
    finally:
        grid.close(unlink=True)
