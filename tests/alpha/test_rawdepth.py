"""The numba raw-bytes depth decoder equals the general reader on every real diff line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _alpha_support import l2_files, read_lines
from dolphin.alpha.book import BookBuilder, BookResult, diff_from_message, snapshot_from_message
from dolphin.alpha.rawdepth import RawDepthError, depth_diff_from_bytes
from dolphin.alpha.ticks import TickGrid, infer_tick_grid
from dolphin.data.binance_capture import DepthDiff, DepthSnapshot, iter_capture


@pytest.fixture(scope="module", params=["usdm", "spot"])
def capture(request, shared_data: Path) -> Path:
    return next(p for p in l2_files(shared_data) if f"_{request.param}_" in p.name)


def test_equals_the_reader_on_every_real_diff(capture: Path) -> None:
    msgs = list(iter_capture(capture))
    snap = next(m for m in msgs if isinstance(m, DepthSnapshot))
    grid = infer_tick_grid(p for p, _ in snap.bids + snap.asks)
    lines = read_lines(capture)
    n = 0
    for m in msgs:
        if not isinstance(m, DepthDiff):
            continue
        ts, payload = lines[m.line_no - 1].split(b" ", 1)
        fast = depth_diff_from_bytes(payload, grid, int(ts))
        ref = diff_from_message(m, grid)
        assert (fast.U, fast.u, fast.pu, fast.exchange_ts_ns, fast.local_ts_ns) == (
            ref.U, ref.u, ref.pu, ref.exchange_ts_ns, ref.local_ts_ns,
        )
        for a, b in ((fast.bid_ticks, ref.bid_ticks), (fast.bid_qty, ref.bid_qty), (fast.ask_ticks, ref.ask_ticks), (fast.ask_qty, ref.ask_qty)):
            assert np.array_equal(a, b)
        n += 1
    assert n > 1000


def test_builds_the_same_book(capture: Path) -> None:
    msgs = list(iter_capture(capture))
    snap = next(m for m in msgs if isinstance(m, DepthSnapshot))
    grid = infer_tick_grid(p for p, _ in snap.bids + snap.asks)
    lines = read_lines(capture)
    fast = BookBuilder(grid=grid)
    slow = BookBuilder(grid=grid)
    for m in msgs:
        if isinstance(m, DepthSnapshot):
            fast.on_snapshot(snapshot_from_message(m, grid))
            slow.on_message(m)
        elif isinstance(m, DepthDiff):
            ts, payload = lines[m.line_no - 1].split(b" ", 1)
            r = fast.on_diff(depth_diff_from_bytes(payload, grid, int(ts)))
            assert r == slow.on_message(m)
    assert fast.is_synced and fast.counters.failures == 0
    for a, b in zip(fast.book.bid_levels(), slow.book.bid_levels()):
        assert np.array_equal(a, b)


GOOD = b'{"stream":"x@depth","data":{"e":"depthUpdate","E":5,"U":10,"u":12,"pu":9,"b":[["1.5","2"]],"a":[]}}'


def test_hand_case_and_key_order() -> None:
    g = TickGrid(1, 1)
    d = depth_diff_from_bytes(GOOD, g)
    assert (d.U, d.u, d.pu, d.exchange_ts_ns) == (10, 12, 9, 5_000_000)
    assert d.bid_ticks.tolist() == [15] and d.bid_qty.tolist() == [2.0] and d.ask_ticks.size == 0
    swapped = b'{"a":[["2.0","0.000"]],"u":3,"b":[],"U":1}'
    d2 = depth_diff_from_bytes(swapped, g)
    assert (d2.U, d2.u, d2.pu) == (1, 3, -1) and d2.ask_ticks.tolist() == [20] and d2.ask_qty.tolist() == [0.0]


@pytest.mark.parametrize(
    "bad",
    [
        GOOD.replace(b'"U":10,', b""),
        GOOD.replace(b'"b":[["1.5","2"]]', b'"b":[["1.5","2"'),
        GOOD.replace(b'"1.5"', b'"1.55"'),  # off the 0.1 grid
        GOOD.replace(b'"2"]', b'"2","x"]'),
        GOOD.replace(b'"2"', b'""'),
        GOOD.replace(b'"U":10', b'"U":"10"'),
        GOOD[: len(GOOD) // 2],
    ],
)
def test_malformed_payloads_raise(bad: bytes) -> None:
    with pytest.raises(RawDepthError):
        depth_diff_from_bytes(bad, TickGrid(1, 1))


@given(st.binary(max_size=200))
def test_garbage_never_crashes(junk: bytes) -> None:
    """Generated garbage (labelled generated): either a clean error or a decoded diff, never a crash."""
    try:
        depth_diff_from_bytes(junk, TickGrid(2, 1))
    except RawDepthError:
        pass


@given(st.integers(0, len(GOOD)))
def test_every_truncation_is_rejected_or_decoded(cut: int) -> None:
    try:
        d = depth_diff_from_bytes(GOOD[:cut], TickGrid(1, 1))
    except RawDepthError:
        return
    assert d.u == 12  # only a cut inside the trailing braces can still decode


@pytest.mark.parametrize("zero", [b'"0"', b'"0.0"', b'"0.00000"'])
def test_zero_price_is_rejected(zero: bytes) -> None:
    """A price must be > 0 (a zero best price would divide the slippage walk by zero)."""
    with pytest.raises(RawDepthError, match="not > 0"):
        depth_diff_from_bytes(GOOD.replace(b'"1.5"', zero), TickGrid(1, 1))
