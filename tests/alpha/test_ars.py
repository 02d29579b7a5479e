"""Alpha Rank Score: bounds, monotonicity, the depth multiplier, deterministic ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dolphin.alpha.ars import (
    ArsBoard,
    ArsRanker,
    ars_params,
    ars_score,
    ars_scores,
    book_alignment,
    depth_multiplier,
    depth_quality_frac,
)
from dolphin.alpha.config import ArsConfig

P = ars_params(ArsConfig())
unit = st.floats(0.0, 1.0, allow_nan=False)
depth = st.floats(0.0, 1e9, allow_nan=False)
spread = st.floats(0.0, 1e3, allow_nan=False)
age = st.floats(0.0, 1e6, allow_nan=False)
nev = st.floats(-100.0, 100.0, allow_nan=False)


@given(unit, unit, unit, nev, depth, spread, age)
def test_ars_is_bounded(s, r, a, e, d, sp, ag) -> None:
    x = ars_score(s, r, a, e, d, sp, ag, P)
    assert 0.0 <= x <= 1.0 + ArsConfig().max_reward_frac + 1e-12


@given(unit, unit, unit, nev, depth, spread, age, st.floats(1.0, 1e8))
def test_deeper_book_never_scores_lower(s, r, a, e, d, sp, ag, extra) -> None:
    assert ars_score(s, r, a, e, d + extra, sp, ag, P) >= ars_score(s, r, a, e, d, sp, ag, P) - 1e-12


@given(unit, unit, unit, nev, depth, spread, age, st.floats(0.01, 100.0))
def test_wider_spread_and_older_book_never_score_higher(s, r, a, e, d, sp, ag, extra) -> None:
    base = ars_score(s, r, a, e, d, sp, ag, P)
    assert ars_score(s, r, a, e, d, sp + extra, ag, P) <= base + 1e-12
    assert ars_score(s, r, a, e, d, sp, ag + extra, P) <= base + 1e-12


@given(unit, unit, unit, nev, depth, spread, age, st.floats(0.0, 1.0))
def test_stronger_signal_never_scores_lower(s, r, a, e, d, sp, ag, extra) -> None:
    s2 = min(1.0, s + extra)
    assert ars_score(s2, r, a, e, d, sp, ag, P) >= ars_score(s, r, a, e, d, sp, ag, P) - 1e-12


@given(depth, spread, age)
def test_depth_multiplier_caps_at_ten_percent(d, sp, ag) -> None:
    q = depth_quality_frac(d, sp, ag, P)
    assert 0.0 <= q <= 1.0
    m = depth_multiplier(q, 0.10, 0.10)
    assert 0.9 - 1e-12 <= m <= 1.1 + 1e-12


def test_depth_multiplier_extremes() -> None:
    assert depth_multiplier(0.0, 0.1, 0.1) == pytest.approx(0.9)  # thinnest book: -10 %
    assert depth_multiplier(0.5, 0.1, 0.1) == 1.0
    assert depth_multiplier(1.0, 0.1, 0.1) == pytest.approx(1.1)  # deepest: +10 %
    thin = depth_quality_frac(0.0, 1e6, 1e9, P)
    deep = depth_quality_frac(1e12, 0.0, 0.0, P)
    assert thin == pytest.approx(0.0, abs=1e-5) and deep == pytest.approx(1.0, abs=1e-5)


@given(st.floats(-1.0, 1.0))
def test_book_alignment_mirrors(w) -> None:
    assert 0.0 <= book_alignment(-1, w) <= 1.0
    assert book_alignment(-1, w) == pytest.approx(book_alignment(1, -w))
    assert book_alignment(-1, w) + book_alignment(1, w) == pytest.approx(1.0)
    assert book_alignment(0, w) == 0.5


def test_nan_component_means_not_a_candidate() -> None:
    assert math.isnan(ars_score(math.nan, 0.5, 0.5, 1.0, 1e6, 1.0, 10.0, P))


def test_vectorised_equals_scalar() -> None:
    rng = np.random.default_rng(1)  # generated inputs
    n = 50
    cols = [rng.random(n), rng.random(n), rng.random(n), rng.normal(5, 5, n), rng.random(n) * 1e6, rng.random(n) * 5, rng.random(n) * 1e3]
    v = ars_scores(*cols, ArsConfig())
    for i in range(n):
        assert v[i] == ars_score(*(c[i] for c in cols), P)


# --------------------------------------------------------------------------- ranking

scores = arrays(
    np.float64,
    st.integers(1, 60),
    elements=st.one_of(st.sampled_from([0.1, 0.5, 0.5, np.nan]), st.floats(0, 1.1, allow_nan=False)),
)


def _expected_order(s: np.ndarray) -> list[int]:
    key = [(-(x if x == x else -np.inf), i) for i, x in enumerate(s)]
    return [i for _, i in sorted(key)]


@given(scores)
def test_full_rank_is_deterministic_with_index_tiebreak(s) -> None:
    r = ArsRanker(s.shape[0])
    r.set_all(s)
    assert r.order.tolist() == _expected_order(s)
    assert all(r.rank_of(i) == r.order.tolist().index(i) for i in range(s.shape[0]))
    top = r.top(5)
    assert not np.any(np.isnan(s[top]))


@given(scores, st.lists(st.tuples(st.integers(0, 59), st.one_of(st.sampled_from([0.5, np.nan]), st.floats(0, 1.1))), max_size=40))
def test_incremental_updates_equal_a_full_rerank(s, updates) -> None:
    r = ArsRanker(s.shape[0])
    r.set_all(s)
    cur = s.copy()
    for i, x in updates:
        i = i % s.shape[0]
        cur[i] = x
        rank = r.update(i, x)
        assert r.order.tolist() == _expected_order(cur)
        assert rank == r.rank_of(i)
    assert np.array_equal(r.scores, cur, equal_nan=True)


def test_ranker_validates() -> None:
    with pytest.raises(ValueError):
        ArsRanker(0)
    with pytest.raises(ValueError):
        ArsRanker(3).set_all(np.zeros(4))


def test_board_live_reweighting_equals_a_fresh_board() -> None:
    """Generated components (labelled generated): changing weights live re-ranks like a fresh board."""
    rng = np.random.default_rng(3)
    n = 40
    comps = [rng.random(n), rng.random(n), rng.random(n), rng.normal(5, 5, n), rng.random(n) * 1e6, rng.random(n) * 5, rng.random(n) * 1e3]
    board = ArsBoard(n, ArsConfig())
    for i in range(n):
        board.update(i, strength=comps[0][i], responsiveness=comps[1][i], alignment=comps[2][i], nev_bps=comps[3][i],
                     depth_quote=comps[4][i], spread_bps=comps[5][i], book_age_ms=comps[6][i])
    assert board.ranker.order.tolist() == _expected_order(ars_scores(*comps, ArsConfig()))
    edge_only = ArsConfig(w_strength=0, w_responsiveness=0, w_book_alignment=0, w_edge=1)
    board.set_weights(edge_only)
    assert board.ranker.order.tolist() == _expected_order(ars_scores(*comps, edge_only))
    board.drop(int(board.top(1)[0]))
    assert board.top(n).shape[0] == n - 1
