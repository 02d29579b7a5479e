"""`dolphin alpha book-replay`: rebuild an L2 book from a raw Binance capture and report it."""

from __future__ import annotations

import argparse
from pathlib import Path

from dolphin.core.config import DolphinConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alpha", help="Oracle: order-book replay and features")
    asub = p.add_subparsers(dest="alpha_command", metavar="ACTION")
    asub.required = True
    r = asub.add_parser("book-replay", help="replay a raw L2 capture (.gz) through the book builder")
    r.add_argument("path", type=Path, help="capture file: '<local_ts_ns> <json>' lines")
    r.add_argument("--skip-bad-lines", action="store_true", help="count unparseable lines instead of failing")
    r.set_defaults(func=_book_replay)


def _book_replay(cfg: DolphinConfig, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from dolphin.alpha.book import BookBuilder, replay_into_builder
    from dolphin.alpha.oracle import book_features
    from dolphin.alpha.ticks import TickGrid
    from dolphin.data.binance_capture import CaptureFormatError, CaptureReader

    bc = cfg.alpha.book
    grid = TickGrid.from_tick_size(bc.tick_size) if bc.tick_size else None
    builder = BookBuilder(grid=grid, max_buffer=bc.max_buffer_diffs, jitter_alpha=bc.jitter_alpha)
    reader = CaptureReader(args.path, on_error="skip" if args.skip_bad_lines else "raise")
    console = Console()
    n = 0
    last_ts = -1
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as prog:
            task = prog.add_task("replaying", total=None)
            for msg, _ in replay_into_builder(reader, builder):
                n += 1
                last_ts = msg.local_ts_ns
                if n % 20_000 == 0:
                    prog.update(task, description=f"replaying: {n:,} messages")
    except CaptureFormatError as exc:
        console.print(f"[red]capture error:[/red] {exc}")
        return 1
    c = builder.counters
    console.print(f"{args.path}: {n:,} messages {dict(reader.counts)}; bad lines {reader.n_errors}")
    console.print(
        f"book: state={builder.state.name} grid={builder.grid} levels bid={builder.book.n_bid} "
        f"ask={builder.book.n_ask} last_update_id={builder.book.last_update_id}"
    )
    console.print(
        f"sync: applied={c.diffs_applied} stale_dropped={c.stale_dropped} gaps={c.gaps} crossed={c.crossed} "
        f"bad_diffs={c.bad_diffs} syncs={c.syncs} snapshots_too_old={c.snapshots_too_old}"
    )
    if builder.is_synced:
        f = book_features(builder, last_ts, bc)
        console.print(
            f"features: wobi={f.wobi:+.3f} imbalance={f.liquidity_imbalance_pct:+.1f}% spread={f.spread_ticks} ticks "
            f"({f.spread_bps:.2f} bps) microprice={f.microprice_ticks:.2f} ticks depth_decay={f.micro.depth_decay_ratio:.3f} "
            f"jitter={f.micro.update_jitter_ns / 1e6:.1f} ms"
        )
    if c.syncs == 0:  # (review 2026-12-06: a capture that never built a book exited 0)
        console.print("[red]no book was built:[/red] no snapshot synced with the diff stream "
                      f"(snapshots too old: {c.snapshots_too_old}, bad: {c.bad_diffs})")
        return 3
    return 0 if c.failures == 0 else 3
