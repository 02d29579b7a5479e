"""Decimal strings <-> integer ticks: exactness, grid checks, the numba level parser."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _alpha_support import l2_files
from dolphin.alpha.ticks import OffGridPriceError, TickGrid, decimals_of, infer_tick_grid, parse_levels
from dolphin.data.binance_capture import DepthDiff, DepthSnapshot, iter_capture


def test_grid_from_tick_size() -> None:
    assert TickGrid.from_tick_size("0.10") == TickGrid(1, 1)
    assert TickGrid.from_tick_size("0.01000000") == TickGrid(2, 1)
    assert TickGrid.from_tick_size("0.5") == TickGrid(1, 5)
    assert TickGrid.from_tick_size("5") == TickGrid(0, 5)
    with pytest.raises(ValueError):
        TickGrid.from_tick_size("0")


def test_decimals_and_inference() -> None:
    assert decimals_of("61800.20") == 1 and decimals_of("61837.63000000") == 2 and decimals_of("5000") == 0
    assert infer_tick_grid(["1.50", "2.25", "3"]) == TickGrid(2, 1)
    with pytest.raises(ValueError):
        infer_tick_grid([])


price_units = st.integers(1, 10**12)  # prices are > 0 (a zero price is rejected, see below)
decimals = st.integers(0, 8)


@given(price_units, decimals, st.integers(0, 6), st.sampled_from([1, 2, 5, 10, 25]))
def test_string_roundtrip_is_exact(units, dec, pad, tick_units) -> None:
    g = TickGrid(dec, tick_units)
    units = units - units % tick_units or tick_units
    price = str(Decimal(units).scaleb(-dec))
    if "E" in price or "e" in price:
        price = format(Decimal(units).scaleb(-dec), "f")
    padded = price + ("0" * pad if "." in price else ("." + "0" * pad if pad else ""))
    t = g.price_to_ticks(padded)
    assert t * tick_units == units
    assert g.ticks_to_price(t) == Decimal(units).scaleb(-dec)
    assert g.prices_to_ticks([padded]).tolist() == [t]
    q = "1.25"
    ticks, qty = parse_levels([(padded, q)], g)
    assert ticks.tolist() == [t] and qty.tolist() == [1.25]


@given(st.integers(1, 10**9), decimals)
def test_off_grid_prices_are_rejected(units, dec) -> None:
    g = TickGrid(dec, 1)
    finer = format(Decimal(units * 10 + 3).scaleb(-(dec + 1)), "f")  # one more non-zero decimal
    with pytest.raises(OffGridPriceError):
        g.price_to_ticks(finer)
    with pytest.raises(OffGridPriceError):
        g.prices_to_ticks([finer])
    with pytest.raises(OffGridPriceError):
        parse_levels([(finer, "1")], g)


@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(0, 10**12), st.integers(0, 8)), min_size=1, max_size=40))
def test_parser_equals_python_float_and_exact_ticks(rows) -> None:
    g = TickGrid(2, 1)
    levels = []
    for pu, qm, qk in rows:
        p = format(Decimal(pu).scaleb(-2), "f")
        q = format(Decimal(qm).scaleb(-qk), "f")
        levels.append((p, q))
    ticks, qty = parse_levels(levels, g)
    assert ticks.tolist() == [g.price_to_ticks(p) for p, _ in levels]
    assert qty.tolist() == [float(q) for _, q in levels]


@pytest.mark.parametrize("bad", ["1.2.3", "abc", "", "1e5", "-1"])
def test_parser_rejects_malformed(bad) -> None:
    with pytest.raises(OffGridPriceError):
        parse_levels([("100.00", "1"), (bad, "1")], TickGrid(2, 1))
    with pytest.raises(OffGridPriceError):
        parse_levels([("100.00", bad)], TickGrid(2, 1))


def test_parser_falls_back_on_very_long_numbers() -> None:
    t, q = parse_levels([("1.00", "123456789012345678901.5")], TickGrid(2, 1))
    assert t.tolist() == [100] and q[0] == pytest.approx(1.234567890123456789015e20)


def test_parser_agrees_with_exact_conversion_on_every_real_level(shared_data: Path) -> None:
    for path in l2_files(shared_data):
        msgs = list(iter_capture(path))
        snap = next(m for m in msgs if isinstance(m, DepthSnapshot))
        g = infer_tick_grid(p for p, _ in snap.bids + snap.asks)
        levels = [lv for m in msgs if isinstance(m, DepthDiff) for lv in m.bids + m.asks][:200_000]
        ticks, qty = parse_levels(levels, g)
        assert np.array_equal(ticks, g.prices_to_ticks([p for p, _ in levels]))
        assert np.array_equal(qty, np.array([float(q) for _, q in levels]))


@pytest.mark.parametrize("zero", ["0", "0.0", "00.000", "0.00000000000000000000"])
def test_zero_price_is_rejected(zero: str) -> None:
    """Prices must be > 0: the fast parser (and its long-string fallback) reject a zero price."""
    with pytest.raises(OffGridPriceError, match="not > 0"):
        parse_levels([("100.00", "1"), (zero, "1")], TickGrid(2, 1))


@pytest.mark.parametrize("bad", [("100.2x", "1"), ("100.20", "abc"), ("100.20", "nan"), ("100.20", "1e5"),
                                 ("1_00.20", "1"), ("+100.20", "1"), ("100.20", "-1")])
def test_the_slow_path_for_long_levels_is_as_strict_as_the_fast_one(bad) -> None:
    """A level too long for the fast parser (22-decimal quantity) sends the whole side to the exact
    slow path; a malformed level after it is an OffGridPriceError (a counted bad diff), not a
    ValueError escaping the book builder, and no quantity the fast path refuses gets through."""
    g = TickGrid(2, 1)
    with pytest.raises(OffGridPriceError):
        parse_levels([("100.10", "0.1234567890123456789012"), bad], g)
    ticks, qty = parse_levels([("100.10", "0.1234567890123456789012"), ("100.20", "2")], g)
    assert ticks.tolist() == [10010, 10020] and qty.tolist() == [0.1234567890123456789012, 2.0]


def test_a_price_past_int64_ticks_is_refused_not_wrapped() -> None:
    """On an 8-decimal grid a 12-digit price passed the 17-digit check and wrapped int64 (a negative
    tick, silently); a longer one raised OverflowError (review 2026-12-06). The largest price that
    fits is exact; one unit more is refused (OffGridPriceError / RawDepthError), on both parsers."""
    from dolphin.alpha.rawdepth import RawDepthError, depth_diff_from_bytes

    g = TickGrid(8, 1)
    top = (2**63 - 1) // 10**8  # 92233720368 whole units: 9223372036800000000 ticks
    assert parse_levels(((str(top), "1"),), g)[0].tolist() == [top * 10**8]
    for p in (str(top + 1), "100000000000", "99999999999999999999"):
        with pytest.raises(OffGridPriceError, match="too large"):
            parse_levels(((p, "1"),), g)
        with pytest.raises(RawDepthError):
            depth_diff_from_bytes(b'{"U":1,"u":2,"b":[["%s","1"]],"a":[]}' % p.encode(), g)
    # the raw-bytes parser has no exact slow path: it stops at 17 digits (here 10**17 ticks)
    ok = depth_diff_from_bytes(b'{"U":1,"u":2,"b":[["999999999.99999999","1"]],"a":[]}', g)
    assert ok.bid_ticks.tolist() == [10**17 - 1]


def test_a_quantity_past_float64_is_refused() -> None:
    with pytest.raises(OffGridPriceError, match="beyond float64"):
        parse_levels((("100.1", "9" * 400),), TickGrid(1, 1))
