"""`dolphin grid member start|stop|status | sink | bench`."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from dolphin.core.config import DolphinConfig
from dolphin.core.paths import repo_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="state grid: Hazelcast members, hot-to-cold sink, benchmark")
    gsub = p.add_subparsers(dest="grid_command", metavar="GRID_COMMAND")
    gsub.required = True

    mp = gsub.add_parser("member", help="start / stop / inspect a Hazelcast member (grid-member/)")
    mp.add_argument("action", choices=["start", "stop", "status", "build"])
    mp.add_argument("--run-dir", default=None, help="pid/log folder (default: grid.member_run_dir)")
    mp.add_argument("--name", default="hazelcast", help="member name (pid file <run-dir>/<name>.pid)")
    mp.add_argument("--cluster-name", default=None, help="default: grid.cluster_name")
    mp.add_argument("--port", type=int, default=None, help="default: grid.member_port")
    mp.add_argument("--members", default=None, help="comma-separated host:port join list (default: grid.members)")
    mp.add_argument("--heap-mb", type=int, default=None, help="default: grid.member_heap_mb")
    mp.set_defaults(func=_member)

    sp = gsub.add_parser("sink", help="write the grid's feature and health maps to Parquet (hot -> cold)")
    sp.add_argument("--once", action="store_true", help="one snapshot, then exit (default: every grid.sink_interval_s)")
    sp.set_defaults(func=_sink)

    bp = gsub.add_parser("bench", help="run bench/bench_grid.py (writes bench/results/grid.json)")
    bp.add_argument("rest", nargs=argparse.REMAINDER)
    bp.set_defaults(func=_bench)


def _member(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.grid.member import MemberSpec, build_member, member_status, start_member, stop_member
    from dolphin.grid.protocol import GridUnavailableError

    g = cfg.grid
    run_dir = Path(args.run_dir or g.member_run_dir)
    if args.action == "build":
        print(build_member(force=True))
        return 0
    if args.action == "start":
        port = args.port or g.member_port
        members = tuple(args.members.split(",")) if args.members else g.members
        spec = MemberSpec(
            cluster_name=args.cluster_name or g.cluster_name,
            port=port,
            members=members,
            heap_mb=args.heap_mb or g.member_heap_mb,
            slow_op_detector=g.member_slow_op_detector,
        )
        try:
            h = start_member(spec, run_dir=run_dir, name=args.name, timeout_s=g.member_start_timeout_s)
        except GridUnavailableError as exc:
            print(f"dolphin grid: {exc}", file=sys.stderr)
            return 1
        print(f"member {h.name} started: pid {h.pid}, port {h.port}, cluster {spec.cluster_name}, log {h.log_path}")
        return 0
    if args.action == "stop":
        stopped = stop_member(run_dir / f"{args.name}.pid")
        print(f"member {args.name}: {'stopped' if stopped else 'was not running'}")
        return 0
    status = member_status(run_dir)
    if not status:
        print(f"no members recorded in {run_dir}")
    for name, info in status.items():
        print(f"{name}: pid {info['pid']} {'alive' if info['alive'] else 'DEAD'} (log {info['log']})")
    return 0 if all(i["alive"] for i in status.values()) else 1


def _sink(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from dolphin.grid.factory import open_grid
    from dolphin.grid.sink import GridSnapshotSink

    with open_grid(cfg.grid) as grid:
        sink = GridSnapshotSink(grid, Path(cfg.grid.sink_dir), interval_s=cfg.grid.sink_interval_s)
        if args.once:
            written = sink.run_once()
            print("\n".join(str(p) for p in written) or "nothing to write")
            return 0
        sink.run_forever()
    return 0


def _bench(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    script = repo_root() / "bench" / "bench_grid.py"
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0
