"""Grid benchmark: read latency, health propagation, scale-out scan throughput.

One run measures, in the same process and on the same data:
1. read latency of one HealthRecord: Hazelcast near cache vs plain Hazelcast map get
   (the baseline) vs the embedded backends (in-process, shared memory);
2. health propagation writer -> reader: a writer *process* publishes HealthRecords on a topic,
   this process receives them; latency = receive - send on CLOCK_MONOTONIC (same machine);
   goal p99 <= 10 ms through Hazelcast on loopback;
3. scan throughput: per-asset work through the grid (K worker processes compute log returns
   over a 300-bar window for their slice and put_all FeatureRecords) + reading the whole
   return matrix back, in scans/s, at 50/100/200/400 assets (K = 2) and at 400 assets with
   K = 1, 2, 4; shared-memory embedded vs Hazelcast with 1 and 2 members on this machine.

Data: real Binance spot 1-minute closes (shared data, April 2021, 50 symbols); for more than
50 assets the 50 real series are replicated with a time shift of 137 bars per copy (stated
in the results). The bench starts and stops its own Hazelcast members (ports 5751-5752).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import figure, time_calls, write_results  # noqa: E402

from dolphin.core.paths import shared_data_dir  # noqa: E402
from dolphin.grid.config import GridConfig  # noqa: E402
from dolphin.grid.embedded import InProcessGrid  # noqa: E402
from dolphin.grid.hazelcast_backend import HazelcastGrid  # noqa: E402
from dolphin.grid.member import MemberSpec, start_member, stop_member  # noqa: E402
from dolphin.grid.protocol import HEALTH_MAP, Grid, QuorumState  # noqa: E402
from dolphin.grid.records import HealthRecord  # noqa: E402
from dolphin.grid.scaleout import ScanWorkerPool  # noqa: E402
from dolphin.grid.shm import SharedMemoryGrid  # noqa: E402

WINDOW = 300
N_BARS = 1200
PORTS = (5751, 5752)
CLUSTER = f"dolphin-bench-{uuid.uuid4().hex[:6]}"
HEALTH_TOPIC = "DOLPHIN_HEALTH_EVENTS"


def load_closes(n_assets: int) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    files = sorted((shared_data_dir() / "binance_spot_1m_2021-04").glob("*.csv.gz"))
    cols = {}
    for f in files:
        df = pd.read_csv(f, usecols=["open_time_ms", "close"])
        cols[f.name.split(".")[0]] = df.set_index("open_time_ms")["close"]
    frame = pd.DataFrame(cols).sort_index().ffill().dropna()
    base = frame.to_numpy(np.float64)
    names = list(frame.columns)
    out_cols, out_names = [], []
    copy = 0
    while len(out_names) < n_assets:
        shift = copy * 137
        block = base[shift : shift + N_BARS]
        for j, name in enumerate(names):
            if len(out_names) == n_assets:
                break
            out_cols.append(block[:, j])
            out_names.append(name if copy == 0 else f"{name}~{copy}")
        copy += 1
    return out_names, np.column_stack(out_cols)


def pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q))


# ------------------------------------------------------------ 1. read latency
def read_latency_us(grid: Grid, repeat: int = 3000) -> np.ndarray:
    m = grid.map(HEALTH_MAP)
    m.put("L1/bench", HealthRecord("L1", "bench", 1, 1.0, True, "", 1))
    return time_calls(lambda: m.get("L1/bench"), repeat=repeat, warmup=200) * 1e6


# ------------------------------------------------------------ 2. propagation
def _health_writer(kind: str, arg: str, n: int, hz: float) -> None:
    if kind == "hazelcast":
        cluster, members = arg.split("|")
        grid: Grid = HazelcastGrid(cluster_name=cluster, members=members.split(","))
    else:
        grid = SharedMemoryGrid(arg, create=False)
    topic = grid.topic(HEALTH_TOPIC)
    time.sleep(1.0)  # the reader's subscription is in place
    period = 1.0 / hz
    for i in range(n):
        topic.publish(HealthRecord("L1", "bench", time.monotonic_ns(), 1.0, True, "", i))
        time.sleep(period)
    time.sleep(0.5)
    grid.close()


def propagation_ms(grid: Grid, kind: str, arg: str, n: int = 600, hz: float = 200.0) -> np.ndarray:
    lat: list[int] = []

    def on(msg: object) -> None:
        lat.append(time.monotonic_ns() - msg.ts_ns)  # type: ignore[attr-defined]

    sid = grid.topic(HEALTH_TOPIC).subscribe(on)
    p = mp.get_context("spawn").Process(target=_health_writer, args=(kind, arg, n, hz))
    p.start()
    p.join(120)
    deadline = time.monotonic() + 5
    while len(lat) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    grid.topic(HEALTH_TOPIC).unsubscribe(sid)
    return np.array(lat[20:], dtype=np.float64) / 1e6  # drop the first messages (warm-up)


# ------------------------------------------------------------ 3. scan throughput
SCAN_CONFIGS = ((50, 2), (100, 2), (200, 2), (400, 1), (400, 2), (400, 4))


def scan_rates(cfg: GridConfig, grid: Grid, rounds: int = 25) -> dict[tuple[int, int], tuple[float, float, float]]:
    """{(n_assets, K): (scans/s, worker ms, read ms)}: medians over ``rounds`` interleaved rounds.

    Every configuration has its own worker pool, all alive at once; each round steps every
    pool once, so a load change on the shared machine hits all configurations alike.
    """
    pools = {}
    try:
        for n, k in SCAN_CONFIGS:
            names, close = load_closes(n)
            pools[(n, k)] = ScanWorkerPool(cfg, grid, names, close, workers=k, window=WINDOW)
        times: dict[tuple[int, int], list[tuple[int, int, int]]] = {key: [] for key in pools}
        for i in range(rounds + 2):
            bar = WINDOW + 10 + i
            for key, pool in pools.items():
                t0 = time.perf_counter_ns()
                step = pool.step(bar)
                dt = time.perf_counter_ns() - t0
                assert step.assets_written == key[0] and not np.isnan(step.returns).all()
                if i >= 2:
                    times[key].append((dt, step.workers_ns, step.read_ns))
    finally:
        for pool in pools.values():
            pool.close()
    out = {}
    for key, rows in times.items():
        med = statistics.median(r[0] for r in rows) / 1e9
        out[key] = (1.0 / med, statistics.median(r[1] for r in rows) / 1e6, statistics.median(r[2] for r in rows) / 1e6)
    return out


def main() -> None:
    figures: list[dict] = []
    notes = [
        "Assets beyond the 50 real Binance spot series are time-shifted copies (137 bars per copy).",
        "Scan throughput = K worker processes compute 300-bar log returns for their asset slice and "
        "put_all FeatureRecords into the grid, then the coordinator reads the whole return matrix back "
        "(get_all); per scan, wall clock, median of 25 rounds in which every configuration steps once (interleaved).",
        "Propagation: writer process publishes HealthRecords at 200 Hz on a topic; latency on CLOCK_MONOTONIC.",
        "Machine: 2 cores shared with other jobs; Hazelcast members use -Xmx256m, SerialGC, C1 only.",
    ]
    run_dir = Path(tempfile.mkdtemp(prefix="dolphin-bench-grid-"))
    addrs = tuple(f"127.0.0.1:{p}" for p in PORTS)
    handles = [start_member(MemberSpec(cluster_name=CLUSTER, port=PORTS[0], members=addrs), run_dir=run_dir, name="bench-a")]
    shm_name = f"dolphin-bench-{uuid.uuid4().hex[:6]}"
    shm_cfg = GridConfig(embedded_mode="shm", shm_name=shm_name, shm_slots=2048, shm_slot_bytes=4096)
    shm = SharedMemoryGrid(shm_name, n_slots=2048, slot_bytes=4096)
    try:
        hz_cfg = GridConfig(backend="hazelcast", cluster_name=CLUSTER, members=addrs[:1])
        plain = HazelcastGrid(cluster_name=CLUSTER, members=addrs[:1])
        near = HazelcastGrid(cluster_name=CLUSTER, members=addrs[:1], near_cache_maps=(HEALTH_MAP,), near_cache_ttl_s=5.0)
        inproc = InProcessGrid()

        # 1. read latency (interleaved rounds, so drift hits all alike)
        samples: dict[str, list[np.ndarray]] = {"plain": [], "near": [], "inproc": [], "shm": []}
        for _ in range(3):
            samples["plain"].append(read_latency_us(plain, 1000))
            samples["near"].append(read_latency_us(near, 3000))
            samples["inproc"].append(read_latency_us(inproc, 3000))
            samples["shm"].append(read_latency_us(shm, 3000))
        lat = {k: np.concatenate(v) for k, v in samples.items()}
        base50, base99 = pct(lat["plain"], 50), pct(lat["plain"], 99)
        figures.append(figure("read_plain_map_get_p50_us", base50, "us", note="Hazelcast IMap.get, 1 member, loopback"))
        figures.append(figure("read_plain_map_get_p99_us", base99, "us"))
        for key, label in (("near", "hazelcast_near_cache"), ("inproc", "embedded_process"), ("shm", "embedded_shm")):
            v50, v99 = pct(lat[key], 50), pct(lat[key], 99)
            figures.append(figure(f"read_{label}_p50_us", v50, "us", baseline_name="plain Hazelcast map get p50",
                                  baseline_value=base50, ratio=base50 / v50))
            figures.append(figure(f"read_{label}_p99_us", v99, "us", baseline_name="plain Hazelcast map get p99",
                                  baseline_value=base99, ratio=base99 / v99))
        print("read latency p50 us:", {k: round(pct(v, 50), 2) for k, v in lat.items()}, flush=True)

        # 2. health propagation writer -> reader
        hz_prop = propagation_ms(plain, "hazelcast", f"{CLUSTER}|{addrs[0]}")
        shm_prop = propagation_ms(shm, "shm", shm_name)
        figures.append(figure("health_propagation_hazelcast_p50_ms", pct(hz_prop, 50), "ms"))
        figures.append(figure("health_propagation_hazelcast_p99_ms", pct(hz_prop, 99), "ms", goal=10.0, goal_op="<="))
        figures.append(figure("health_propagation_embedded_shm_p50_ms", pct(shm_prop, 50), "ms"))
        figures.append(figure("health_propagation_embedded_shm_p99_ms", pct(shm_prop, 99), "ms"))
        print(f"propagation ms: hz p50 {pct(hz_prop, 50):.2f} p99 {pct(hz_prop, 99):.2f}; "
              f"shm p50 {pct(shm_prop, 50):.2f} p99 {pct(shm_prop, 99):.2f}", flush=True)
        near.close()
        inproc.close()

        # 3. scan throughput
        def scan_series(label: str, cfg: GridConfig, grid: Grid) -> None:
            for (n, k), (sps, w_ms, r_ms) in scan_rates(cfg, grid).items():
                figures.append(figure(f"scan_{label}_n{n}_k{k}_per_s", sps, "scans/s",
                                      note=f"median: workers {w_ms:.1f} ms, matrix read {r_ms:.1f} ms"))
                print(f"{label} n={n} k={k}: {sps:.1f} scans/s (workers {w_ms:.1f} ms, read {r_ms:.1f} ms)", flush=True)

        scan_series("embedded_shm", shm_cfg, shm)
        scan_series("hazelcast_1member", hz_cfg, plain)
        plain.close()
        handles.append(start_member(MemberSpec(cluster_name=CLUSTER, port=PORTS[1], members=addrs), run_dir=run_dir, name="bench-b"))
        two = HazelcastGrid(cluster_name=CLUSTER, members=addrs, members_expected=2)
        two.wait_quorum(QuorumState.OK, 60)
        hz2_cfg = GridConfig(backend="hazelcast", cluster_name=CLUSTER, members=addrs, members_expected=2)
        scan_series("hazelcast_2members", hz2_cfg, two)
        two.close()
    finally:
        shm.close(unlink=True)
        for h in handles:
            stop_member(h, timeout_s=10)
    load = os.getloadavg()
    notes.append(f"Load average at the end of the run: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
                 "(1/5/15 min) on 2 cores: other jobs ran concurrently; scan figures are noisy.")
    path = write_results("grid", figures, notes=notes)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
