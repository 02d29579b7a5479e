"""The Oracle's book in L1 / L2 runs: order-book candidates and the SmartPlacer's confidence.

Data: the real usdm BTCUSDT L2 capture of 2024-08-08 (REST snapshot + diff stream + trades, and its
bookTicker quotes), ingested into the catalog and replayed by a real BacktestEngine. The signal
source and the microstructure view are the composition root's (``build_tick_ports``); scripted
candidates (``EveryNBars``) are used only where the test is about placement, not about signals.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import TestClock
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.enums import BookType

from dolphin.alpha.ars import book_alignment
from dolphin.alpha.features import wobi
from dolphin.alpha.oracle import weights_for
from dolphin.cli import main
from dolphin.core.config import load_config
from dolphin.execution.agent import DolphinAgentConfig
from dolphin.execution.oracle_book import (
    L1_TOP_OF_BOOK,
    L2_DEPTH,
    OracleBookFeed,
    OracleBookSignals,
    OracleMicrostructure,
    placement_confidence,
)
from dolphin.execution.placer import PlacementMode, maker_price_ticks
from dolphin.execution.ports import FixedMicrostructure, Posture
from dolphin.research.backtest import load_depth, run_depth_backtest, run_tick_backtest
from dolphin.research.report import report_json
from dolphin.runtime.wiring import build_tick_ports

from ._support import EveryNBars, l2_ticks

SEC = 1_000_000_000


@pytest.fixture(scope="module")
def cfg():
    return load_config(environ={})


@pytest.fixture(scope="module")
def depth(cfg):
    return load_depth(cfg)


@pytest.fixture(scope="module")
def l2_run(cfg, depth):
    w = build_tick_ports(cfg)
    return w, run_depth_backtest(cfg, w.ports, depth=depth)


def _top(levels, n):
    return np.array([lv.size() for lv in levels[:n]], dtype=np.float64)


def test_l2_backtest_trades_only_what_the_oracle_proposes_and_counts_it(cfg, depth, l2_run):
    w, res = l2_run
    rep = res.report
    assert isinstance(w.ports.signals, OracleBookSignals) and w.signal_status == "oracle_book"
    assert rep["signals"].startswith(f"oracle book ({L2_DEPTH})")
    ob = rep["oracle_book"]
    assert ob["source"] == L2_DEPTH
    # Every bar of the run is accounted for: no book, book not leaning, or an Oracle evaluation.
    assert ob["bars"] == rep["bars"] > 300
    assert ob["bars"] == ob["no_book"] + ob["flat"] + ob["evaluated"]
    assert ob["evaluated"] > 100 and sum(ob["nev_reasons"].values()) == ob["evaluated"]
    assert ob["emitted"] == ob["proposed"] == rep["signal_candidates_emitted"]
    # Proposed exactly when NEV after fees clears the Oracle's minimum.
    assert (ob["proposed"] > 0) == (ob["nev_bps_max"] > cfg.alpha.nev.min_nev_bps)
    # The edge is the book's own (microprice - mid), inside half the spread: a fraction of a bps here.
    assert abs(ob["edge_bps_max"]) < 1.0
    orders = res.engine.cache.orders()
    assert len(orders) == 0 or ob["emitted"] > 0  # the agent enters on Oracle candidates only
    if ob["proposed"] == 0:
        assert rep["trades"] == 0 and ob["edge_bps_max"] < ob["cost_bps_min"] and "why_none" in ob
    # The Oracle's book is the engine's: its WOBI and touch equal NautilusTrader's book at the end.
    book = res.engine.cache.order_book(depth.instrument.id)
    feed = w.ports.micro.feed
    f = feed.features(0, int(book.ts_last))
    weights = weights_for(cfg.alpha.book)
    n = weights.shape[0]
    assert f.synced
    assert f.wobi == pytest.approx(wobi(_top(book.bids(), n), _top(book.asks(), n), weights), abs=1e-12)
    tick = depth.instrument.price_increment.as_double()
    assert f.best_bid_ticks == round(book.best_bid_price().as_double() / tick)
    assert f.best_ask_ticks == round(book.best_ask_price().as_double() / tick)


def test_l2_report_is_bit_reproducible_with_a_fixed_seed(cfg, depth, l2_run):
    _, a = l2_run
    b = run_depth_backtest(cfg, build_tick_ports(cfg).ports, depth=depth)
    assert report_json(a.report) == report_json(b.report)
    assert a.equity == b.equity


def test_l1_run_reads_the_top_of_book_and_says_so(cfg):
    w = build_tick_ports(cfg)
    res = run_tick_backtest(cfg, w.ports, ticks=l2_ticks())
    ob = res.report["oracle_book"]
    assert ob["source"] == L1_TOP_OF_BOOK and L1_TOP_OF_BOOK in res.report["signals"]
    assert ob["evaluated"] > 0 and ob["bars"] == ob["no_book"] + ob["flat"] + ob["evaluated"]
    assert "top of book" in res.report["placement_confidence"].replace("_", " ")


def _replayed_feed(cfg, depth):
    """A feed bound to a real NautilusTrader cache whose L2 book replays the capture."""
    cache, clock = Cache(), TestClock()
    cache.add_instrument(depth.instrument)
    book = OrderBook(depth.instrument.id, BookType.L2_MBP)
    cache.add_order_book(book)
    iid = str(depth.instrument.id)
    owner = SimpleNamespace(cache=cache, clock=clock,
                            config=DolphinAgentConfig(instrument_ids=(iid,), subscribe_book=True))  # fmt: skip
    feed = OracleBookFeed(cfg.alpha)
    micro = OracleMicrostructure(feed)
    micro.bind(owner)
    return feed, micro, book, clock, iid


def test_placement_flips_with_the_books_imbalance_on_real_books(cfg, depth):
    feed, micro, book, clock, iid = _replayed_feed(cfg, depth)
    pcfg = cfg.execution.placer
    weights = weights_for(cfg.alpha.book)
    n = weights.shape[0]
    tick = depth.instrument.price_increment.as_double()
    seen = {}
    nxt = depth.deltas[0].ts_event + SEC
    for batch in depth.deltas:
        if batch.ts_event >= nxt:
            clock.set_time(nxt)
            w_nt = wobi(_top(book.bids(), n), _top(book.asks(), n), weights)
            assert micro.wobi(iid) == pytest.approx(w_nt, abs=1e-12)  # the Oracle's WOBI of this book
            bid = round(book.best_bid_price().as_double() / tick)
            ask = round(book.best_ask_price().as_double() / tick)
            q = feed.quality_frac(0, feed.features(0, nxt))
            assert 0.0 <= q <= 1.0
            modes = {}
            for side in (1, -1):
                c = micro.confidence(iid, side)
                assert c == pytest.approx(book_alignment(side, w_nt) * q, abs=1e-12)
                modes[side] = maker_price_ticks(side, bid, ask, Posture.STALKER, c, pcfg).mode
            if abs(w_nt) >= 0.5:
                seen.setdefault(1 if w_nt > 0 else -1, modes)
            nxt += SEC
        book.apply_deltas(batch)
    # The real capture has books leaning both ways; the same side's placement flips with them.
    assert set(seen) == {1, -1}
    assert seen[1][1] == PlacementMode.JOIN and seen[1][-1] == PlacementMode.STAND_BACK
    assert seen[-1][-1] == PlacementMode.JOIN and seen[-1][1] == PlacementMode.STAND_BACK


def test_the_agent_places_by_the_oracle_confidence(cfg, depth):
    # Scripted sells every 3rd bar (about placement, not signals): with a fixed confidence every
    # entry joins; with the Oracle's book some stand back, where the book leans against the sell.
    counters = {}
    for label in ("fixed", "oracle"):
        w = build_tick_ports(cfg, EveryNBars(n=3, side=-1, edge_bps=30.0))
        if label == "fixed":
            w.ports.micro = FixedMicrostructure(fixed_confidence=0.5)
        res = run_depth_backtest(cfg, w.ports, depth=depth)
        counters[label] = res.agent.run.counters
    fixed, oracle = counters["fixed"], counters["oracle"]
    assert fixed.get("placement_join", 0) > 0 and fixed.get("placement_stand_back", 0) == 0
    assert oracle.get("placement_stand_back", 0) > 0 and oracle.get("placement_join", 0) > 0


@settings(max_examples=200, deadline=None)
@given(side=st.sampled_from([-1, 0, 1]), w=st.floats(-1.0, 1.0), dw=st.floats(0.0, 1.0), q=st.floats(0.0, 1.0),
       dq=st.floats(0.0, 1.0))  # fmt: skip
def test_placement_confidence_is_bounded_mirrored_and_monotone(side, w, dw, q, dq):
    c = placement_confidence(side, w, q)
    assert 0.0 <= c <= 1.0
    assert placement_confidence(-side, -w, q) == pytest.approx(c, abs=1e-12)
    if side == 0:
        assert c == pytest.approx(0.5 * q)
        return
    # More lean toward the order's side, or a better book, never lowers the confidence.
    w2 = min(1.0, max(-1.0, w + side * dw))
    assert placement_confidence(side, w2, q) >= c - 1e-12
    assert placement_confidence(side, w, min(1.0, q + dq)) >= c - 1e-12


def test_cli_l2_backtest_names_the_oracle_source(tmp_path):
    assert main(["backtest", "--data", "l2", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("backtest-*-l2.json")
    rep = json.loads(path.read_text())
    assert rep["signals"].startswith(f"oracle book ({L2_DEPTH})")
    assert rep["oracle_book"]["evaluated"] > 0 and rep["data"].startswith("L2 capture")
    # the report names what the run traded (it named the bar configuration's three symbols)
    assert rep["symbols"] == ["BTCUSDT"] and rep["dataset"] == rep["data"]


def test_a_newer_quote_with_the_same_timestamp_is_loaded():
    """Half of the shipped BTCUSDT quotes share their millisecond with the previous one; the L1
    book's version was the time alone, so such a quote was never loaded (WOBI +0.8 kept after the
    book had turned to -0.8)."""
    from types import SimpleNamespace

    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.objects import Price, Quantity

    from dolphin.core.config import load_config
    from dolphin.execution.instruments import make_usdm_perp
    from dolphin.execution.oracle_book import OracleBookFeed, OracleMicrostructure

    cfg = load_config(environ={})
    inst = make_usdm_perp("BTCUSDT", 1, 3, maker_fee_bps=2, taker_fee_bps=5)
    iid = inst.id
    state: dict = {"q": None, "now": 0}
    cache = SimpleNamespace(instrument=lambda i: inst, quote_tick=lambda i: state["q"], order_book=lambda i: None)
    strat = SimpleNamespace(config=SimpleNamespace(instrument_ids=(str(iid),), subscribe_book=False), cache=cache,
                            clock=SimpleNamespace(timestamp_ns=lambda: state["now"]))  # fmt: skip
    feed = OracleBookFeed(cfg.alpha)
    micro = OracleMicrostructure(feed)
    micro.bind(strat)
    t = 1_723_161_256_313_000_000  # a real quote time of the capture

    def quote(bid: float, ask: float, bs: float, as_: float) -> QuoteTick:
        return QuoteTick(iid, Price(bid, 1), Price(ask, 1), Quantity(bs, 3), Quantity(as_, 3), t, t)

    state["q"], state["now"] = quote(61800.2, 61800.3, 9.0, 1.0), t
    assert micro.wobi(str(iid)) == pytest.approx(0.8)
    state["q"], state["now"] = quote(61800.0, 61800.1, 1.0, 9.0), t + 150_000_000
    assert micro.wobi(str(iid)) == pytest.approx(-0.8)
    b = feed.builder(0).book
    assert (b.best_bid_ticks, b.best_ask_ticks) == (618000, 618001)


def test_a_nan_wobi_is_flat_not_a_short():
    """A synced book with no size on either side has WOBI NaN; `abs(nan) < min` is False, so it
    became a SHORT candidate. Any min_abs_wobi, 0 included, now reads it as flat."""
    from types import SimpleNamespace

    from dolphin.core.config import load_config
    from dolphin.execution.oracle_book import OracleBookSignals

    feats = SimpleNamespace(synced=True, wobi=float("nan"))
    feed = SimpleNamespace(asset=lambda iid: 0, features=lambda i, ts: feats)
    for floor in (0.0, 0.2):
        sig = OracleBookSignals(feed, load_config(environ={}).alpha, min_abs_wobi=floor, order_notional_quote=1_000.0)
        assert sig.on_bar("BTCUSDT-PERP.BINANCE", 1, 1.0, 1.0, 1.0, 1.0, 1.0) == ()
        assert sig.flat == 1 and sig.evaluated == 0


# --------------------------------------------------------------------------- review of 2026-12-05 (fourth session)


def _nt_book_feed(pp: int, sp: int, symbol: str):
    """OracleBookFeed / OracleMicrostructure over a real NautilusTrader L2 OrderBook."""
    from types import SimpleNamespace

    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.enums import BookType

    from dolphin.execution.instruments import make_usdm_perp
    from dolphin.execution.oracle_book import OracleBookFeed, OracleMicrostructure

    cfg = load_config(environ={})
    inst = make_usdm_perp(symbol, pp, sp, maker_fee_bps=2, taker_fee_bps=5)
    book = OrderBook(inst.id, BookType.L2_MBP)
    state = {"now": 0}
    cache = SimpleNamespace(instrument=lambda i: inst, quote_tick=lambda i: None, order_book=lambda i: book)
    strat = SimpleNamespace(config=SimpleNamespace(instrument_ids=(str(inst.id),), subscribe_book=True), cache=cache,
                            clock=SimpleNamespace(timestamp_ns=lambda: state["now"]))  # fmt: skip
    feed = OracleBookFeed(cfg.alpha)
    micro = OracleMicrostructure(feed)
    micro.bind(strat)
    return cfg, inst, book, state, feed, micro


def test_wobi_on_a_sparse_book_reads_its_levels_beyond_the_depth_band():
    """WOBI is defined over ``alpha.book.wobi_levels`` levels whatever their distance; the feed
    loaded only the levels within ``band_bps`` of the touch, so on a sparse book (levels 0.6 %
    apart) the Oracle's WOBI was the top of book alone and pointed the other way."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.objects import Price, Quantity

    from dolphin.alpha.oracle import weights_for

    cfg, inst, book, state, feed, micro = _nt_book_feed(4, 0, "ADAUSDT")
    t = 1_700_000_000_000_000_000
    seq = 0

    def add(side, px, qty):
        nonlocal seq
        seq += 1
        o = BookOrder(side, Price(px, 4), Quantity(qty, 0), 0)
        book.apply_delta(OrderBookDelta(inst.id, BookAction.UPDATE, o, RecordFlag.F_LAST, seq, t, t))

    add(OrderSide.BUY, 0.3000, 1000)  # the touch leans to the ask ...
    add(OrderSide.SELL, 0.3001, 3000)
    for k in range(1, 10):  # ... the next nine levels (0.6 % apart) much more to the bid
        add(OrderSide.BUY, round(0.3000 * (1 - 0.006 * k), 4), 20000)
        add(OrderSide.SELL, round(0.3001 * (1 + 0.006 * k), 4), 1000)
    state["now"] = t
    w = weights_for(cfg.alpha.book)
    n = len(w)
    b = np.array([lv.size() for lv in book.bids()[:n]])
    a = np.array([lv.size() for lv in book.asks()[:n]])
    expected = float((w * (b - a)).sum() / (w * (b + a)).sum())
    assert expected > 0.5
    assert micro.wobi(str(inst.id)) == pytest.approx(expected, rel=1e-12)
    assert micro.confidence(str(inst.id), 1) > micro.confidence(str(inst.id), -1)




def test_why_none_names_an_unfillable_walk_instead_of_blaming_fees():
    """Every evaluation INVALID_INPUT (a one-level L1 book cannot fill the taker walk of a large
    order): no cost was computed, so the explanation must not say the edge is below the cost
    ("min inf bps")."""
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.objects import Price, Quantity

    from dolphin.execution.instruments import make_usdm_perp
    from dolphin.execution.oracle_book import OracleBookFeed, OracleBookSignals

    cfg = load_config(environ={})
    inst = make_usdm_perp("BTCUSDT", 1, 3, maker_fee_bps=2, taker_fee_bps=5)
    t = 1_723_161_256_313_000_000
    q = QuoteTick(inst.id, Price(61800.0, 1), Price(61800.1, 1), Quantity(0.9, 3), Quantity(0.1, 3), t, t)
    cache = SimpleNamespace(instrument=lambda i: inst, quote_tick=lambda i: q, order_book=lambda i: None)
    strat = SimpleNamespace(config=SimpleNamespace(instrument_ids=(str(inst.id),), subscribe_book=False), cache=cache,
                            clock=SimpleNamespace(timestamp_ns=lambda: t))  # fmt: skip
    sig = OracleBookSignals(OracleBookFeed(cfg.alpha), cfg.alpha, min_abs_wobi=0.2, order_notional_quote=100_000.0)
    sig.bind(strat)
    for k in range(3):
        sig.on_bar(str(inst.id), t + k, 0, 0, 0, 0, 0)
    s = sig.summary()
    assert s["nev_reasons"] == {"INVALID_INPUT": 3} and s["cost_bps_min"] is None
    assert "3: the loaded book cannot fill the taker walk" in s["why_none"]
    assert "inf" not in s["why_none"] and "fees" not in s["why_none"]
