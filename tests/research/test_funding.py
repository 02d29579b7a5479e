"""Perpetual funding in backtests (research.funding): the schedule from the catalog's funding rows,
and its settlement on real BacktestEngine runs over the shipped Binance USDT-M 5-minute perps of
July 2023 and their real 8-hourly funding rates."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money, Quantity
from nautilus_trader.model.currencies import USDT
from nautilus_trader.trading.strategy import Strategy

from dolphin.core.config import ConfigError, load_config
from dolphin.research.backtest import build_engine, funding_module, run_bar_backtest
from dolphin.research.funding import FundingEvent, FundingModule, FundingSeries, funding_events
from dolphin.research.report import render_table

H = 3_600_000_000_000
STEP = 8 * H


def _series(ts, rates) -> FundingSeries:
    return FundingSeries(np.asarray(ts, dtype=np.int64), np.asarray(rates, dtype=np.float64))


# --------------------------------------------------------------------------- the schedule


def test_rows_are_settlements_and_gaps_before_after_and_between_them_are_missing():
    t0 = 1_000 * STEP
    s = _series([t0, t0 + STEP, t0 + 3 * STEP], [1e-4, -2e-4, 3e-4])  # t0 + 2 STEP is not in the data
    ev = funding_events({"BTCUSDT": s}, {"BTCUSDT": "B"}, t0 - STEP, t0 + 5 * STEP, STEP)
    assert [(e.ts_ns - t0) // STEP for e in ev] == [-1, 0, 1, 2, 3, 4]
    assert [e.rate for e in ev] == [None, 1e-4, -2e-4, None, 3e-4, None]
    # [start, end): a funding time at the run's last data point has nothing after it to settle at
    assert funding_events({"BTCUSDT": s}, {"BTCUSDT": "B"}, t0, t0 + 3 * STEP, STEP)[-1].ts_ns == t0 + 2 * STEP


def test_a_symbol_without_rows_gets_the_default_grid_all_missing():
    start = 10 * STEP + 5 * H  # 05:00 UTC
    ev = funding_events({}, {"XUSDT": "X"}, start, start + 2 * STEP, STEP)
    assert [e.ts_ns for e in ev] == [11 * STEP, 12 * STEP]  # 08:00, 16:00 UTC
    assert all(e.rate is None and e.instrument_id == "X" for e in ev)


def test_a_non_finite_rate_is_missing_and_the_symbols_own_interval_is_used():
    t0 = 500 * STEP
    four = 4 * H
    s = _series([t0, t0 + four, t0 + 2 * four], [1e-4, math.nan, 1e-4])
    ev = funding_events({"A": s}, {"A": "A-ID"}, t0, t0 + 4 * four, STEP)  # default 8 h, the data says 4 h
    assert [e.ts_ns - t0 for e in ev] == [0, four, 2 * four, 3 * four]
    assert [e.rate for e in ev] == [1e-4, None, 1e-4, None]
    with pytest.raises(ValueError):
        funding_events({}, {"A": "A-ID"}, 0, 1, 0)


def test_a_gap_in_a_short_window_is_missing_not_a_longer_interval():
    """Review 2026-12-06: two rows 16 h apart read as a 16-hour symbol, and the time between them
    vanished from the schedule (neither settled nor counted)."""
    t = 3_000 * STEP
    ev = funding_events({"X": _series([t - STEP, t + STEP], [1e-4, 1e-4])}, {"X": "X"}, t - 3 * H, t + 3 * H, STEP)
    assert [(e.ts_ns, e.rate) for e in ev] == [(t, None)]


def test_rows_of_one_funding_time_are_settled_once():
    """Binance stamps some funding rows at +1 ms; two rows of one time were both settled, and their
    1 ms spacing became the grid (86,394 false missing events in a day)."""
    t = 4_000 * STEP
    ts = [t, t + 1_000_000, t + STEP, t + STEP + 1_000_000_000, t + 2 * STEP]
    ev = funding_events({"X": _series(ts, [1e-4, 9e-4, 2e-4, 9e-4, 3e-4])}, {"X": "X"}, t, t + 2 * STEP + 1, STEP)
    assert [(e.ts_ns - t, e.rate) for e in ev] == [(0, 1e-4), (STEP, 2e-4), (2 * STEP, 3e-4)]


def test_unsorted_and_repeated_rows_terminate_in_time_order():
    t = 5_000 * STEP
    ev = funding_events({"X": _series([t + STEP, t, t, t + STEP], [2e-4, 1e-4, 5e-4, 6e-4])}, {"X": "X"},
                        t, t + 2 * STEP, STEP)  # fmt: skip
    assert [(e.ts_ns - t, e.rate) for e in ev] == [(0, 1e-4), (STEP, 2e-4)]
    with pytest.raises(ValueError, match="1 h"):
        funding_events({}, {"X": "X"}, t, t + STEP, H // 2)


def test_a_change_of_interval_keeps_the_shorter_grid_and_counts_at_most_two_false_misses():
    """8-hour rows, then 4-hour rows (Binance moves symbols between intervals): the 4-hour stretch is
    exact; near the change the 8-hour stretch may count up to two times as missing (counted, never
    settled), and never hides a due time."""
    t = 6_000 * STEP
    four = 4 * H
    ts = [t + k * STEP for k in range(6)] + [t + 5 * STEP + k * four for k in range(1, 7)]
    ev = funding_events({"X": _series(ts, [1e-4] * len(ts))}, {"X": "X"}, t, ts[-1] + 1, STEP)
    assert {e.ts_ns for e in ev if e.rate is not None} == set(ts)
    false = [e.ts_ns for e in ev if e.rate is None]
    assert len(false) <= 2 and all(t + 3 * STEP < x < t + 5 * STEP for x in false)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 30),
    dropped=st.sets(st.integers(0, 29)),
    lo=st.integers(-3, 33),
    span=st.integers(0, 40),
    off=st.integers(0, STEP - 1),
)
def test_the_schedule_is_the_whole_grid_in_range_with_the_rates_it_has(n, dropped, lo, span, off):
    t0 = 2_000 * STEP
    keep = [k for k in range(n) if k not in dropped]
    if not keep:
        keep = [0]
    ts = [t0 + k * STEP for k in keep]
    rates = [1e-5 * (k + 1) for k in keep]
    start = t0 + lo * STEP - off
    end = start + span * STEP
    ev = funding_events({"S": _series(ts, rates)}, {"S": "S"}, start, end, STEP)
    grid = [g for g in range(start - STEP - (start - t0) % STEP, end + STEP, STEP) if start <= g < end]
    assert [e.ts_ns for e in ev] == grid
    have = dict(zip(ts, rates))
    assert [e.rate for e in ev] == [have.get(g) for g in grid]


# --------------------------------------------------------------------------- real engine runs


def _fills_qty(rep, iid: str, ts_ns: int) -> float:
    """Net position from NautilusTrader's fills report (not the module's own walk over orders)."""
    if rep.empty:
        return 0.0
    q = 0.0
    for _, row in rep.iterrows():
        if str(row["instrument_id"]) != iid or int(row["ts_event"].value) > ts_ns:
            continue
        q += float(row["last_qty"]) * (1.0 if str(row["order_side"]) == "BUY" else -1.0)
    return q


def test_the_shipped_run_settles_funding_into_the_balance(cfg, bar_sets):
    res = run_bar_backtest(cfg, data=bar_sets)
    r = res.report
    mod = res.funding
    assert isinstance(mod, FundingModule)
    assert r["funding_model"] == "catalog"
    assert r["funding_settlements"] == len(mod.records) >= 10
    assert r["funding_usdt"] == pytest.approx(sum(rec[5] for rec in mod.records), abs=1e-9)
    assert r["funding_missing"] == 0 and r["funding_unpriced"] == 0  # the rows cover the run
    closes = {str(s.instrument.id): s.bars for s in bar_sets.sets}
    rows = bar_sets.funding
    fills = res.engine.trader.generate_fills_report()
    for ts, iid, qty, mark, rate, pay in mod.records:
        sym = iid.split("-")[0]
        k = int(np.searchsorted(rows[sym].ts_ns, ts))
        assert rows[sym].ts_ns[k] == ts and rows[sym].rate[k] == rate  # the catalog's rate at that time
        assert qty == pytest.approx(_fills_qty(fills, iid, ts), abs=1e-9)  # held at the funding time
        bars = closes[iid]
        last = max((b for b in bars if b.ts_event <= ts), key=lambda b: b.ts_event)
        assert mark == pytest.approx(float(last.close), rel=1e-12)  # the last close at or before it
        assert pay == pytest.approx(-qty * mark * rate, abs=1e-8)
    # It reached the account: the balance is the start, every position's realised PnL (closed
    # trades, and the commissions of those still open) and the funding, nothing else.
    open_rpnl = sum(p.realized_pnl.as_double() for p in res.engine.cache.positions_open())
    trades = sum(t["pnl"] for t in res.agent.run.trades)
    start = cfg.execution.backtest.starting_usdt
    assert r["final_balance"] == pytest.approx(start + trades + open_rpnl + r["funding_usdt"], abs=1e-6)
    assert abs(r["funding_usdt"]) > 1.0  # so the identity above could not hold without it
    table = render_table([r])
    assert "funding received (USDT)" in table and f"{r['funding_usdt']:+,.2f}" in table


def test_funding_off_is_reported_off(cfg, bar_sets):
    off = msgspec.structs.replace(
        cfg, execution=msgspec.structs.replace(
            cfg.execution, backtest=msgspec.structs.replace(cfg.execution.backtest, funding=False)))
    r = run_bar_backtest(off, data=bar_sets).report
    assert r["funding_model"] == "off" and "funding_usdt" not in r
    line = next(x for x in render_table([r]).splitlines() if "funding received" in x)
    assert line.rstrip(" │").endswith("-")


class _BuyAndHold(Strategy):
    """Buys ``qty`` at market on the first bar and holds."""

    def __init__(self, bar_type, iid: str, qty: str) -> None:
        super().__init__()
        self._bar_type, self._iid, self._qty, self._done = bar_type, InstrumentId.from_str(iid), qty, False

    def on_start(self) -> None:
        self.subscribe_bars(self._bar_type)

    def on_bar(self, bar) -> None:
        if not self._done:
            self._done = True
            self.submit_order(self.order_factory.market(self._iid, OrderSide.BUY, Quantity.from_str(self._qty)))


def _buy_and_hold(cfg, bar_sets, series):
    bt = cfg.execution.backtest
    btc = next(s for s in bar_sets.sets if str(s.instrument.raw_symbol) == "BTCUSDT")
    start, end = btc.bars[0].ts_event, btc.bars[-1].ts_event
    mod = funding_module(bt, series, [btc.instrument], start, end)
    engine = build_engine(bt, funding=mod)
    engine.add_instrument(btc.instrument)
    engine.add_data(btc.bars)
    engine.add_strategy(_BuyAndHold(btc.bar_type, str(btc.instrument.id), "1.000"))
    engine.run()
    return engine, mod, btc


def test_a_long_position_pays_positive_funding_at_the_last_close(cfg, bar_sets):
    engine, mod, btc = _buy_and_hold(cfg, bar_sets, {"BTCUSDT": bar_sets.funding["BTCUSDT"]})
    fills = [e for o in engine.cache.orders() for e in o.events if isinstance(e, OrderFilled)]
    assert len(fills) == 1
    t_fill = fills[0].ts_event
    rows = bar_sets.funding["BTCUSDT"]
    end = btc.bars[-1].ts_event
    due = [(int(t), float(x)) for t, x in zip(rows.ts_ns, rows.rate) if t_fill <= t < end]
    assert len(due) >= 30 and len(mod.records) == len(due)
    expected = 0.0
    for (ts, _iid, qty, mark, rate, pay), (t, x) in zip(mod.records, due):
        assert (ts, rate, qty) == (t, x, 1.0)
        close = float(max((b for b in btc.bars if b.ts_event <= ts), key=lambda b: b.ts_event).close)
        assert mark == close
        assert pay == Money(-close * x, USDT).as_double()
        assert (pay < 0) == (x > 0)  # longs pay a positive rate
        expected += pay
    account = engine.cache.account_for_venue(btc.instrument.id.venue)
    commission = fills[0].commission.as_double()
    start = cfg.execution.backtest.starting_usdt
    assert account.balance_total(USDT).as_double() == pytest.approx(start - commission + expected, abs=1e-6)


def test_a_funding_time_without_a_rate_is_counted_not_guessed(cfg, bar_sets):
    rows = bar_sets.funding["BTCUSDT"]
    gap = rows.ts_ns.size // 2
    holed = FundingSeries(np.delete(rows.ts_ns, gap), np.delete(rows.rate, gap))  # one real row taken out
    engine, mod, btc = _buy_and_hold(cfg, bar_sets, {"BTCUSDT": holed})
    full_engine, full_mod, _ = _buy_and_hold(cfg, bar_sets, {"BTCUSDT": rows})
    assert mod.missing == 1 and mod.missing_at == [(str(btc.instrument.id), int(rows.ts_ns[gap]))]
    assert len(mod.records) == len(full_mod.records) - 1
    lost = next(rec[5] for rec in full_mod.records if rec[0] == rows.ts_ns[gap])
    assert mod.total_usdt == pytest.approx(full_mod.total_usdt - lost, abs=1e-9)
    s = mod.summary()
    assert s["funding_missing"] == 1 and s["funding_missing_at"][0][0] == str(btc.instrument.id)


def test_funding_interval_hours_is_bounded():
    with pytest.raises(ConfigError):
        load_config(environ={"DOLPHIN__EXECUTION__BACKTEST__FUNDING_INTERVAL_HOURS": "0"})


def test_funding_event_order_is_time_then_instrument():
    ev = [FundingEvent(5, "B", 1e-4), FundingEvent(5, "A", 1e-4), FundingEvent(1, "C", None)]
    mod = FundingModule(ev)
    assert [(e.ts_ns, e.instrument_id) for e in mod._events] == [(1, "C"), (5, "A"), (5, "B")]
