"""The L2 capture replayed as book deltas (Binance USDT-M sync rules) into a real BacktestEngine.

Data: the real usdm BTCUSDT diff-depth stream, REST snapshot, trades and bookTicker of
2024-08-08 (hftbacktest capture), ingested into the catalog and read from it.
"""

from __future__ import annotations

import pytest
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType, LiquiditySide
from nautilus_trader.model.events import OrderFilled, OrderPendingCancel, OrderSubmitted

from dolphin.execution.agent import AgentPorts
from dolphin.execution.ports import FixedMicrostructure, FixedRiskView, MemoryKillFlag, Posture, SimpleNevModel
from dolphin.research.backtest import load_depth, run_depth_backtest

from ._support import EveryNBars, cfg_with, l2_ticks

MS = 1_000_000


@pytest.fixture(scope="module")
def depth():
    from dolphin.core.config import load_config

    return load_depth(load_config(environ={}))


def test_depth_sync_follows_binance_rules_and_matches_the_book_ticker(depth):
    assert depth.chain_breaks == 0
    assert depth.diffs_dropped >= 1  # diffs older than the snapshot are dropped
    assert depth.diffs_applied > 1_000
    book = OrderBook(depth.instrument.id, BookType.L2_MBP)
    quotes = [q for q in l2_ticks(max_quotes=20_000).quotes if q.ts_event >= depth.deltas[0].deltas[0].ts_event]
    i = n = same = 0
    for q in quotes:
        while i < len(depth.deltas) and depth.deltas[i].deltas[0].ts_event <= q.ts_event:
            book.apply_deltas(depth.deltas[i])
            i += 1
        bid, ask = book.best_bid_price(), book.best_ask_price()
        assert bid < ask, "the reconstructed book must never cross"
        n += 1
        same += bid == q.bid_price and ask == q.ask_price
    # Two separate streams (diffs batch updates, bookTicker is per change): most tops still agree.
    assert n > 1_000 and same / n > 0.5


def test_agent_on_l2_book_cancels_at_200ms_and_post_only_only_makes(depth):
    cfg = cfg_with(placer={"cancel_after_ms": 200, "max_requotes": 20, "max_working_orders_per_instrument": 1})
    ports = AgentPorts(
        risk=FixedRiskView(Posture.APEX, base_fraction=0.01), signals=EveryNBars(n=3), nev=SimpleNevModel(),
        kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=1.0),
    )
    res = run_depth_backtest(cfg, ports, depth=depth)
    orders = res.engine.cache.orders()
    assert len(orders) > 10
    gaps = set()
    for o in orders:
        fills = [e for e in o.events if isinstance(e, OrderFilled)]
        if o.is_post_only:
            assert all(e.liquidity_side == LiquiditySide.MAKER for e in fills)
        pend = [e for e in o.events if isinstance(e, OrderPendingCancel)]
        if pend and not fills and not o.is_reduce_only:
            sub = next(e for e in o.events if isinstance(e, OrderSubmitted))
            gaps.add(pend[0].ts_event - sub.ts_event)
    assert gaps == {200 * MS}


def test_a_first_replayed_diff_that_does_not_bracket_the_snapshot_is_a_chain_break(tmp_path):
    """Binance's rule for the first diff after the snapshot (U <= lastUpdateId <= u). The real
    capture with the 50 diff messages after its snapshot removed (a stream that connected late):
    the replayed book has a gap of ~200,000 update ids, which chain_breaks reported as 0."""
    import numpy as np
    import pyarrow as pa

    from dolphin.core.config import load_config
    from dolphin.data.catalog import Catalog
    from dolphin.execution.feeds import catalog_depth
    from dolphin.runtime.wiring import catalog_lock, ensure_catalog

    cfg = load_config(environ={})
    with catalog_lock(cfg):
        src, _written, _nt = ensure_catalog(cfg)
        t = src.read("depth", "BINANCE_USDM", "BTCUSDT")
        trades = src.read("trades", "BINANCE_USDM", "BTCUSDT")
    snap = t.column("is_snapshot").to_numpy(zero_copy_only=False)
    last = t.column("last_update_id").to_numpy()
    lid = int(last[snap][0])
    cut = np.unique(last[(~snap) & (last >= lid)])[50]
    cat = Catalog(tmp_path / "cat")
    cat.write("depth", "BINANCE_USDM", "BTCUSDT", t.filter(pa.array(snap | (last < lid) | (last >= cut))))
    cat.write("trades", "BINANCE_USDM", "BTCUSDT", trades)
    d = catalog_depth(cat, tmp_path / "nt", "BINANCE_USDM", "BTCUSDT", maker_fee_bps=2, taker_fee_bps=5)
    assert d.chain_breaks == 1 and d.diffs_applied > 1_000


def test_l5_reads_the_real_books_depth_over_its_recent_normal(depth):
    """The composition root's real ports on the L2 capture: L5's `book_depth_ratio` is fed from the
    book the agent trades (review 2026-12-06: it was fed by nothing and stayed at its healthy 1.0).
    Every reading is the depth within alpha.book.liquidity_band_bps against the exponential
    reference before it, recomputed here from the recorded readings' own rule."""
    from dolphin.core.config import load_config
    from dolphin.runtime.wiring import build_tick_ports

    cfg = load_config(environ={})
    w = build_tick_ports(cfg, book=True)
    seen: list[tuple[int, float | None]] = []
    source = w.risk.depth_source

    def recording():
        d = source()
        seen.append((w.risk._depth_obs_ns, d))
        return d

    w.risk.depth_source = recording
    res = run_depth_backtest(cfg, w.ports, depth=depth)
    bd = res.report["survival"]["book_depth"]
    n = res.report["survival"]["readings"].get("book_depth_ratio", 0)
    assert bd["readings"] == len([d for _, d in seen if d is not None]) > bd["warmup"] + 100
    assert n == bd["readings"] - bd["warmup"] and bd["skipped"] == len(seen) - bd["readings"]
    # the readings are one per second of event time at most, and the depths are real sizes
    ts = [t for t, _ in seen]
    assert all(b - a >= 10**9 for a, b in zip(ts, ts[1:]))
    depths = [d for _, d in seen if d is not None]
    assert min(depths) > 0 and max(depths) / min(depths) > 1.2  # the book's depth moves
    # L5 acted on them: its depth factor is below 1 when the last ratio is past the deadband
    ratios = w.risk.controller.board  # (the controller's board holds the last reading)
    idx = w.risk.controller.board.index["book_depth_ratio"]
    assert ratios.values[idx] == pytest.approx(bd["last_ratio"])


def test_an_l1_run_has_no_depth_reading():
    """On quotes alone the touch sizes are no depth (they swing 100x between quotes): L5's depth
    stays unread there, counted as skipped."""
    from dolphin.core.config import load_config
    from dolphin.research.backtest import run_tick_backtest
    from dolphin.runtime.wiring import build_tick_ports

    cfg = load_config(environ={})
    w = build_tick_ports(cfg, book=True)
    res = run_tick_backtest(cfg, w.ports, ticks=l2_ticks())
    bd = res.report["survival"]["book_depth"]
    assert bd["readings"] == 0 and bd["skipped"] > 0
    assert "book_depth_ratio" not in res.report["survival"]["readings"]
