"""Book features and candidate evaluation on the real L2 captures; the [alpha] config section."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

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
    cfg = load_config(environ={"DOLPHIN__ALPHA__NEV__FEES__TAX_BPS": "10", "DOLPHIN__ALPHA__NEV__FEES__TAX_SIDE": "both"})
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
