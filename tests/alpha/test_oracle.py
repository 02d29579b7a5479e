"""Book features and candidate evaluation on the real L2 captures; the [alpha] config section."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _alpha_support import l2_files
from dolphin.alpha.book import BookBuilder, BookResult, replay_into_builder
from dolphin.alpha.config import AlphaConfig, BookConfig, NevConfig
from dolphin.alpha.features import wobi
from dolphin.alpha.nev import NevReason
from dolphin.alpha.oracle import book_features, evaluate_candidate, weights_for
from dolphin.core.config import ConfigError, load_config
from dolphin.data.binance_capture import iter_capture


@pytest.fixture(scope="module")
def usdm(shared_data: Path) -> Path:
    return next(p for p in l2_files(shared_data) if "_usdm_" in p.name)


def test_features_along_a_real_capture(usdm: Path) -> None:
    cfg = BookConfig()
    w = weights_for(cfg)
    b = BookBuilder()
    seen = 0
    for msg, res in replay_into_builder(iter_capture(usdm), b):
        if res != BookResult.APPLIED or seen > 3000:
            continue
        seen += 1
        f = book_features(b, msg.local_ts_ns, cfg, w)
        assert f.synced
        assert -1.0 <= f.wobi <= 1.0 and -100.0 <= f.liquidity_imbalance_pct <= 100.0
        assert f.best_bid_ticks <= f.microprice_ticks <= f.best_ask_ticks
        assert f.spread_ticks >= 1 and f.spread_bps > 0
        assert 0.0 <= f.micro.depth_decay_ratio <= 1.0
        assert f.micro.book_age_ns == 0  # evaluated at the update's own receive time
        # Mirror property on the live book: swapping sides negates WOBI.
        bq, aq = b.book.bid_qty_view(len(w)), b.book.ask_qty_view(len(w))
        assert wobi(aq, bq, w) == pytest.approx(-f.wobi, abs=1e-12)
    assert seen > 1000
    later = book_features(b, b.clock.last_ts_ns + 2_000_000_000, cfg, w)
    assert later.micro.book_age_ns == 2_000_000_000 and later.micro.update_jitter_ns > 0


def test_unsynced_book_has_neutral_features() -> None:
    f = book_features(BookBuilder(), 0, BookConfig())
    assert not f.synced and f.wobi == 0.0 and math.isnan(f.spread_bps)


def test_candidate_on_a_real_book_records_its_nev_reason(usdm: Path) -> None:
    cfg = AlphaConfig()
    b = BookBuilder()
    for _ in replay_into_builder(iter_capture(usdm), b):
        pass
    f = book_features(b, b.clock.last_ts_ns, cfg.book)
    good = evaluate_candidate(0, -1, 0.8, 0.7, 30.0, f, b, 0.5, cfg)
    assert good.proposed and good.nev.reason == NevReason.PROPOSED and good.ars > 0
    poor = evaluate_candidate(1, -1, 0.8, 0.7, 5.0, f, b, 0.5, cfg)  # 5 bps edge < 7 bps fees
    assert not poor.proposed and poor.nev.reason == NevReason.NEV_NON_POSITIVE
    assert poor.ars < good.ars  # the edge component
    huge = evaluate_candidate(2, -1, 0.8, 0.7, 30.0, f, b, 1e9, AlphaConfig(nev=NevConfig(exit_liquidity="taker", entry_liquidity="taker")))
    assert not huge.proposed and huge.nev.reason == NevReason.INVALID_INPUT  # cannot walk that deep


def test_alpha_section_loads_and_validates() -> None:
    cfg = load_config(environ={"DOLPHIN__ALPHA__NEV__FEES__TAX_BPS": "10", "DOLPHIN__ALPHA__NEV__FEES__TAX_SIDE": "both",
                               "DOLPHIN__EXECUTION__BACKTEST__TAX_BPS": "10",
                               "DOLPHIN__EXECUTION__BACKTEST__TAX_SIDE": "both"})  # (one fee schedule with the venue's)
    assert cfg.alpha.nev.fees.tax_bps == 10.0 and cfg.alpha.nev.fees.tax_side == "both"
    assert cfg.alpha.signal.short_threshold == -0.02 and not cfg.alpha.signal.long_enabled
    assert cfg.alpha.signal.vol_percentile == 60.0 and cfg.alpha.signal.min_responsiveness == 0.45
    bad = [
        ({"signal": {"long_threshold": -0.05}}, "long_threshold"),
        ({"book": {"wobi_weights": [1.0, 0.5]}}, "wobi_weights"),
        ({"book": {"depth_decay_near_bps": 80.0}}, "depth_decay_near_bps"),
        ({"book": {"tick_size": "-1"}}, "tick_size"),
        ({"ars": {"w_strength": 0, "w_responsiveness": 0, "w_book_alignment": 0, "w_edge": 0}}, "w_"),
        ({"nev": {"fees": {"tax_side": "sometimes"}}}, "tax_side"),
        ({"signal": {"min_responsiveness": 1.5}}, "min_responsiveness"),
        ({"signal": {"bogus": 1}}, "bogus"),
    ]
    for over, key in bad:
        with pytest.raises(ConfigError, match=key):
            load_config(overrides={"alpha": over})


def test_explicit_weights_are_used() -> None:
    cfg = BookConfig(wobi_levels=3, wobi_weights=(3.0, 2.0, 1.0))
    assert np.array_equal(weights_for(cfg), np.array([3.0, 2.0, 1.0]))


def test_oracle_ranks_two_real_books_and_gates_by_nev(shared_data: Path) -> None:
    """Two real captures (usdm and spot BTCUSDT) as two assets; signals are set by hand."""
    from dolphin.alpha.oracle import Oracle

    files = l2_files(shared_data)
    usdm = next(p for p in files if "_usdm_" in p.name)
    spot = next(p for p in files if "_spot_" in p.name)
    cfg = AlphaConfig()
    o = Oracle(3, cfg)
    o.on_signal(0, -1, 0.9, 0.8, 25.0, 0)
    o.on_signal(1, -1, 0.9, 0.8, 3.0, 0)  # edge below the 7 bps round-trip fees
    o.on_signal(2, 0, 0.0, 0.0, 0.0, 0)  # no signal: never a candidate
    last = 0
    for path, asset in ((usdm, 0), (spot, 1)):
        for msg in iter_capture(path):
            o.on_book_message(asset, msg)
            last = max(last, msg.local_ts_ns)
    assert all(b.is_synced for b in o.builders[:2]) and not o.builders[2].is_synced
    cands = o.candidates(3, last, 0.01)
    assert [c.asset for c in cands] == [0, 1]  # higher edge ranks first; asset 2 excluded
    assert cands[0].proposed and cands[0].nev.reason == NevReason.PROPOSED
    assert not cands[1].proposed and cands[1].nev.reason == NevReason.NEV_NON_POSITIVE
    assert cands[0].ars > cands[1].ars
    # The signal set before the books synced survived until they did.
    assert o.board.strength[0] == 0.9 and o.board.strength[1] == 0.9
    o.on_signal(0, 0, 0.0, 0.0, 0.0, last)
    assert [c.asset for c in o.candidates(3, last, 0.01)] == [1]


# --------------------------------------------------------------------------- per-leg slippage, NEV ranking
# Generated books (labelled generated), tick 0.1.


def _book(bids: list[tuple[int, float]], asks: list[tuple[int, float]], grid: str = "0.1") -> BookBuilder:
    from dolphin.alpha.book import BookSnapshot, TickDiff
    from dolphin.alpha.ticks import TickGrid

    b = BookBuilder(grid=TickGrid.from_tick_size(grid))
    arr = lambda xs, i, t: np.array([x[i] for x in xs], dtype=t)  # noqa: E731
    b.on_snapshot(BookSnapshot(100, arr(bids, 0, np.int64), arr(bids, 1, float), arr(asks, 0, np.int64), arr(asks, 1, float)))
    e, f = np.empty(0, np.int64), np.empty(0)
    assert b.on_diff(TickDiff(100, 101, -1, e, f, e, f, local_ts_ns=1_000)) == BookResult.SYNCED
    return b


DEEP = 1000.0
# Mid 99.95: bids deep at 99.9; asks 1 unit per tick from 100.0 to 100.9, then deep at 101.0.
DEEP_BIDS = [(999, DEEP), (998, DEEP), (997, DEEP)]
THIN_ASKS = [(1000 + i, 1.0) for i in range(10)] + [(1010, DEEP)]


def test_short_exit_walks_the_asks_and_a_maker_entry_walks_nothing() -> None:
    """SHORT, maker entry / taker exit (the default): the exit buys back into the thin asks."""
    from dolphin.alpha.nev import nev_breakdown, walk_book_slippage_bps

    cfg = AlphaConfig()
    b = _book(DEEP_BIDS, THIN_ASKS)
    f = book_features(b, 1_000, cfg.book)
    c = evaluate_candidate(0, -1, 1.0, 1.0, 30.0, f, b, 50.0, cfg)
    asks_walk = walk_book_slippage_bps(*b.book.ask_levels(200), 50.0)
    assert asks_walk == pytest.approx(89.0)
    assert c.nev.slippage_bps == asks_walk
    ref = nev_breakdown(30.0, -1, spread_bps=f.spread_bps, slippage_bps=0.0, exit_slippage_bps=asks_walk, cfg=cfg.nev)
    assert c.nev == ref and c.nev.nev_bps == pytest.approx(30.0 - 7.0 - 0.5 * f.spread_bps - 89.0)
    assert not c.proposed and c.nev.reason == NevReason.NEV_NON_POSITIVE
    # LONG on the mirrored book: the exit sells into the bids (thin), the deep asks do not matter.
    mb = _book([(999 - i, 1.0) for i in range(10)] + [(989, DEEP)], [(1000, DEEP), (1001, DEEP)])
    mf = book_features(mb, 1_000, cfg.book)
    lc = evaluate_candidate(0, 1, 1.0, 1.0, 30.0, mf, mb, 50.0, cfg)
    assert lc.nev.slippage_bps == walk_book_slippage_bps(*mb.book.bid_levels(200), 50.0) > 50.0
    assert not lc.proposed
    # A maker entry rests at the touch: a thin entry side cannot make the candidate INVALID_INPUT.
    sb = _book([(999, 1.0)], [(1000, DEEP), (1001, DEEP)])  # SHORT: bids (entry side) cannot fill 50
    sc = evaluate_candidate(0, -1, 1.0, 1.0, 30.0, book_features(sb, 1_000, cfg.book), sb, 50.0, cfg)
    assert sc.proposed and sc.nev.slippage_bps == 0.0 and sc.nev.reason == NevReason.PROPOSED


def test_taker_legs_each_walk_their_own_side() -> None:
    from dolphin.alpha.nev import walk_book_slippage_bps

    cfg = AlphaConfig(nev=NevConfig(entry_liquidity="taker", exit_liquidity="taker"))
    b = _book([(999, 20.0), (998, 20.0), (990, DEEP)], THIN_ASKS)
    f = book_features(b, 1_000, cfg.book)
    c = evaluate_candidate(0, -1, 1.0, 1.0, 200.0, f, b, 50.0, cfg)
    bid_walk = walk_book_slippage_bps(*b.book.bid_levels(200), 50.0)
    ask_walk = walk_book_slippage_bps(*b.book.ask_levels(200), 50.0)
    assert bid_walk != ask_walk and c.nev.slippage_bps == pytest.approx(bid_walk + ask_walk)
    assert c.nev.half_spread_bps == pytest.approx(f.spread_bps)  # two taker legs, half spread each
    # Entry only (no exit leg): only the entry side is walked, as before.
    c1 = evaluate_candidate(0, -1, 1.0, 1.0, 200.0, f, b, 50.0,
                            AlphaConfig(nev=NevConfig(entry_liquidity="taker", include_exit=False)))
    assert c1.nev.slippage_bps == bid_walk


def _two_asset_oracle():
    """Asset 0: edge 50 bps but a 100 bps spread (NEV < 0 after the taker exit's half spread);
    asset 1: edge 8 bps on a 1-tick book (NEV 0.5 > 0). Same signal otherwise."""
    from dolphin.alpha.book import BookSnapshot, TickDiff
    from dolphin.alpha.oracle import Oracle
    from dolphin.alpha.ticks import TickGrid

    g = TickGrid.from_tick_size("0.01")
    o = Oracle(2, AlphaConfig(), grids=[g, g])
    e, f = np.empty(0, np.int64), np.empty(0)
    for b, bid, ask in ((o.builders[0], 9950, 10050), (o.builders[1], 9999, 10000)):
        b.on_snapshot(BookSnapshot(10, np.array([bid, bid - 1]), np.array([5000.0, 5000.0]),
                                   np.array([ask, ask + 1]), np.array([5000.0, 5000.0])))
        b.on_diff(TickDiff(10, 11, -1, e, f, e, f, local_ts_ns=1_000_000))
    return o


def test_board_ranks_by_nev_not_by_the_gross_edge() -> None:
    from dolphin.alpha.nev import nev_breakdown

    o = _two_asset_oracle()
    now = 1_000_000
    o.on_signal(0, -1, 0.5, 0.8, 50.0, now)
    o.on_signal(1, -1, 0.5, 0.8, 8.0, now)
    # The board's edge term is the NEV without order-size slippage, bit for bit.
    for a, edge in ((0, 50.0), (1, 8.0)):
        spr = book_features(o.builders[a], now, o.cfg.book).spread_bps
        assert o.board.nev_bps[a] == nev_breakdown(edge, -1, spread_bps=spr, slippage_bps=0.0, cfg=o.cfg.nev).nev_bps
    assert o.board.top(2).tolist() == [1, 0]
    top = o.candidates(1, now, 1.0)
    assert [c.asset for c in top] == [1] and top[0].proposed
    # The board score equals the refined ARS when the walk has no slippage and the book did not age.
    assert top[0].ars == o.board.ranker.scores[1]
    both = o.candidates(2, now, 1.0)
    assert [c.asset for c in both] == [1, 0] and [c.proposed for c in both] == [True, False]


def test_candidates_re_rank_by_refined_nev_and_prefer_proposed() -> None:
    """Asset 0 ranks first on the board (strong signal, NEV before slippage > 0) but the order walks
    its thin exit side: refined NEV < 0. Asset 1 (weaker signal, deep book) is proposed and comes first."""
    from dolphin.alpha.book import BookSnapshot, TickDiff
    from dolphin.alpha.oracle import Oracle

    from dolphin.alpha.ticks import TickGrid

    g = TickGrid.from_tick_size("0.1")
    o = Oracle(2, AlphaConfig(), grids=[g, g])
    e, f = np.empty(0, np.int64), np.empty(0)
    books = ((DEEP_BIDS, THIN_ASKS), (DEEP_BIDS, [(1000, DEEP), (1001, DEEP)]))
    for b, (bids, asks) in zip(o.builders, books):
        b.on_snapshot(BookSnapshot(10, np.array([t for t, _ in bids]), np.array([q for _, q in bids]),
                                   np.array([t for t, _ in asks]), np.array([q for _, q in asks])))
        b.on_diff(TickDiff(10, 11, -1, e, f, e, f, local_ts_ns=1_000))
    o.on_signal(0, -1, 1.0, 1.0, 30.0, 1_000)
    o.on_signal(1, -1, 0.3, 0.5, 30.0, 1_000)
    assert o.board.top(2).tolist() == [0, 1]  # the board cannot know the order size
    cands = o.candidates(1, 1_000, 50.0)
    assert [c.asset for c in cands] == [1] and cands[0].proposed
    all2 = o.candidates(2, 1_000, 50.0)
    assert [c.asset for c in all2] == [1, 0] and not all2[1].proposed and all2[1].ars > all2[0].ars
    # A small order does not walk past the touch: both proposed, the board order stands.
    assert [c.asset for c in o.candidates(2, 1_000, 0.5)] == [0, 1]


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 40.0), st.integers(1, 30), st.floats(0.1, 30.0)),
                min_size=1, max_size=8), st.integers(1, 5), st.floats(0.5, 80.0))
@settings(max_examples=60, deadline=None)
def test_candidates_equal_a_full_evaluation_of_every_asset(assets, k, order_qty) -> None:
    """Generated books and signals (labelled generated): candidates(k) equals evaluating every asset
    and sorting (proposed first, refined ARS, asset) whenever the evaluation cap is not binding."""
    from dolphin.alpha.book import BookSnapshot, TickDiff
    from dolphin.alpha.oracle import Oracle
    from dolphin.alpha.ticks import TickGrid

    g = TickGrid.from_tick_size("0.1")
    n = len(assets)
    o = Oracle(n, AlphaConfig(), grids=[g] * n)
    e, f = np.empty(0, np.int64), np.empty(0)
    for i, (strength, edge, spread_ticks, ask_qty) in enumerate(assets):
        bid, ask = 1000, 1000 + spread_ticks
        b = o.builders[i]
        b.on_snapshot(BookSnapshot(10, np.array([bid, bid - 1]), np.array([DEEP, DEEP]),
                                   np.array([ask + j for j in range(5)]), np.array([ask_qty] * 4 + [DEEP])))
        b.on_diff(TickDiff(10, 11, -1, e, f, e, f, local_ts_ns=1_000))
        o.on_signal(i, -1, strength, 0.6, edge, 1_000)
    got = o.candidates(k, 2_000, order_qty, max_evaluations=n)
    every = [o._evaluate(a, 2_000, order_qty) for a in range(n)]
    want = sorted(every, key=lambda c: (not c.proposed, -c.ars, c.asset))
    n_prop = sum(c.proposed for c in want)
    assert [c.asset for c in got if c.proposed] == [c.asset for c in want if c.proposed][:k]
    assert len(got) == min(k, n)
    if n_prop < k:  # the slots left are filled with not-proposed candidates, after the proposed ones
        assert all(not c.proposed for c in got[n_prop:])


def test_non_finite_alpha_config_values_are_rejected() -> None:
    """NaN passes every comparison-based check (a NaN threshold never fires, silently); inf makes a
    scale degenerate. Each section's validate() names the key and the value."""
    from dolphin.alpha.config import ArsConfig, FeeSchedule, SignalConfig

    nan, inf = float("nan"), float("inf")
    cases = [
        (SignalConfig(short_threshold=nan), "alpha.signal.short_threshold"),
        (SignalConfig(long_threshold=nan, long_enabled=True), "alpha.signal.long_threshold"),
        (SignalConfig(short_threshold=-inf), "alpha.signal.short_threshold"),
        (SignalConfig(strength_span=inf), "alpha.signal.strength_span"),
        (ArsConfig(edge_scale_bps=inf), "alpha.ars.edge_scale_bps"),
        (ArsConfig(age_half_life_ms=inf), "alpha.ars.age_half_life_ms"),
        (ArsConfig(w_strength=inf), "alpha.ars.w_strength"),
        (BookConfig(liquidity_band_bps=inf), "alpha.book.liquidity_band_bps"),
        (BookConfig(wobi_levels=2, wobi_weights=(1.0, inf)), "alpha.book.wobi_weights"),
        (NevConfig(slippage_coeff_bps=inf), "alpha.nev.slippage_coeff_bps"),
        (NevConfig(min_nev_bps=inf), "alpha.nev.min_nev_bps"),
        (NevConfig(fees=FeeSchedule(maker_bps=nan)), "alpha.nev.fees.maker_bps"),
    ]
    for part, key in cases:
        with pytest.raises(ConfigError, match=re.escape(key) + r".* = .*(nan|inf).*finite"):
            AlphaConfig(**{_section(part): part}).validate()
    with pytest.raises(ConfigError, match="short_threshold"):
        load_config(overrides={"alpha": {"signal": {"short_threshold": nan}}})
    AlphaConfig().validate()  # the defaults are finite


def _section(part) -> str:
    from dolphin.alpha.config import ArsConfig, SignalConfig

    return {SignalConfig: "signal", ArsConfig: "ars", BookConfig: "book", NevConfig: "nev"}[type(part)]


def test_live_re_weighting_of_the_board_re_weights_the_per_order_scoring() -> None:
    """``board.set_weights`` (the live re-weighting) must reach ``candidates``: its refined ARS and
    order come from the same weights as the board (a copy of the weights taken at construction
    kept scoring with the old ones: candidates(2) contradicted the board's order)."""
    from dolphin.alpha.book import BookSnapshot, TickDiff
    from dolphin.alpha.config import ArsConfig
    from dolphin.alpha.oracle import Oracle
    from dolphin.alpha.ticks import TickGrid

    g = TickGrid.from_tick_size("0.01")
    o = Oracle(2, AlphaConfig(), grids=[g, g])
    e, f = np.empty(0, np.int64), np.empty(0)
    for b in o.builders:
        b.on_snapshot(BookSnapshot(10, np.array([9999, 9998]), np.array([5000.0, 5000.0]), np.array([10000, 10001]),
                                   np.array([5000.0, 5000.0])))  # fmt: skip
        b.on_diff(TickDiff(10, 11, -1, e, f, e, f, local_ts_ns=1_000))
    o.on_signal(0, -1, 1.0, 1.0, 9.0, 1_000)  # strong signal, small NEV
    o.on_signal(1, -1, 0.1, 0.1, 27.0, 1_000)  # weak signal, large NEV
    assert [c.asset for c in o.candidates(2, 1_000, 1.0)] == [0, 1]
    o.board.set_weights(ArsConfig(w_strength=0.0, w_responsiveness=0.0, w_book_alignment=0.0, w_edge=1.0))
    assert o.board.top(2).tolist() == [1, 0]
    cands = o.candidates(2, 1_000, 1.0)
    assert [c.asset for c in cands] == [1, 0]
    assert [c.ars for c in cands] == pytest.approx(o.board.ranker.scores[[1, 0]].tolist())


def test_an_unsynced_book_is_invalid_input_also_when_both_legs_are_maker() -> None:
    """Maker legs walk nothing, so their NEV needs no book, but without a synced book there is no
    touch to rest at: INVALID_INPUT, never proposed."""
    cfg = AlphaConfig(nev=NevConfig(entry_liquidity="maker", exit_liquidity="maker"))
    b = BookBuilder()
    feats = book_features(b, 1_000, cfg.book, weights_for(cfg.book))
    assert not feats.synced
    c = evaluate_candidate(0, -1, 1.0, 1.0, 30.0, feats, b, 1.0, cfg)
    assert c.nev.reason == NevReason.INVALID_INPUT and not c.nev.proposed and math.isnan(c.nev.nev_bps)
