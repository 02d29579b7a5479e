"""SmartPlacer cancel timer on a real BacktestEngine fed with real Binance L1 quotes + trades.

Data: bookTicker quotes and trades of the usdm BTCUSDT L2 capture (2024-08-08), so simulated
time advances in millisecond steps; the agent's bars are 1-second internal bars from quotes.
"""

from __future__ import annotations

from nautilus_trader.model.events import OrderCanceled, OrderFilled, OrderPendingCancel, OrderSubmitted

from dolphin.execution.agent import AgentPorts
from dolphin.execution.ports import FixedMicrostructure, FixedRiskView, MemoryKillFlag, Posture, SimpleNevModel
from dolphin.research.backtest import run_tick_backtest

from ._support import EveryNBars, cfg_with, l2_ticks

MS = 1_000_000


def _run(nev, cancel_after_ms=200, max_requotes=3):
    cfg = cfg_with(placer={"cancel_after_ms": cancel_after_ms, "max_requotes": max_requotes, "stand_back_ticks": 3})
    ports = AgentPorts(
        risk=FixedRiskView(Posture.STALKER),
        signals=EveryNBars(n=20, start=5),
        nev=nev,
        kill=MemoryKillFlag(),
        micro=FixedMicrostructure(fixed_wobi=None, fixed_confidence=0.0),  # stand back: orders rest
    )
    return run_tick_backtest(cfg, ports, ticks=l2_ticks())


def test_unfilled_maker_order_is_cancelled_at_200ms_of_simulated_time():
    res = _run(SimpleNevModel())
    orders = [o for o in res.engine.cache.orders() if o.is_post_only and not o.is_reduce_only]
    checked = 0
    for o in orders:
        if any(isinstance(e, OrderFilled) for e in o.events):
            continue
        submitted = next(e for e in o.events if isinstance(e, OrderSubmitted))
        pending = [e for e in o.events if isinstance(e, OrderPendingCancel)]
        canceled = [e for e in o.events if isinstance(e, OrderCanceled)]
        assert pending and canceled, f"{o.client_order_id} was neither filled nor cancelled"
        assert pending[0].ts_event - submitted.ts_event == 200 * MS
        assert canceled[0].ts_event >= pending[0].ts_event
        checked += 1
    assert checked >= 10
    assert res.agent.run.counters.get("requotes", 0) > 0


def test_cancel_timer_is_configurable():
    res = _run(SimpleNevModel(), cancel_after_ms=350, max_requotes=0)
    gaps = []
    for o in res.engine.cache.orders():
        sub = next(e for e in o.events if isinstance(e, OrderSubmitted))
        pend = [e for e in o.events if isinstance(e, OrderPendingCancel)]
        if pend and not any(isinstance(e, OrderFilled) for e in o.events) and not o.is_reduce_only:
            gaps.append(pend[0].ts_event - sub.ts_event)
    assert gaps and set(gaps) == {350 * MS}


class _NevTurnsNegative:
    """Positive NEV for the first quote of each candidate, negative afterwards."""

    def __init__(self) -> None:
        self.calls = 0

    def nev_bps(self, candidate, *, taker, spread_bps):
        if taker:
            return -1.0
        self.calls += 1
        return 10.0 if self.calls % 2 == 1 else -5.0


def test_requote_only_while_nev_positive():
    res = _run(_NevTurnsNegative())
    c = res.agent.run.counters
    entries = [o for o in res.engine.cache.orders() if not o.is_reduce_only]
    # Every candidate is quoted once; the re-quote after the 200 ms cancel sees NEV < 0 and stops.
    assert entries
    assert c.get("entry_nev_negative", 0) >= 1
    nev_events = [e for e in res.agent.run.events if e["kind"] == "nev_negative"]
    assert all(e["attempt"] == 1 for e in nev_events)
    assert c.get("submitted_entry", 0) == len(entries)


def _taker_run(posture, edge_bps):
    from nautilus_trader.model.enums import OrderType

    from ._support import EveryNBars as Every

    cfg = cfg_with(placer={"cancel_after_ms": 200, "max_requotes": 0, "stand_back_ticks": 5000})
    ports = AgentPorts(
        risk=FixedRiskView(posture), signals=Every(n=30, start=5, edge_bps=edge_bps), nev=SimpleNevModel(),
        kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=0.0),
    )
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    entries = [o for o in res.engine.cache.orders() if not o.is_reduce_only]
    return res, [o for o in entries if o.order_type == OrderType.MARKET], entries


def test_taker_entry_only_in_apex_and_only_with_positive_taker_nev():
    # Maker first: the unfilled maker quote is cancelled at 200 ms; then APEX may take.
    res, market, entries = _taker_run(Posture.APEX, edge_bps=30.0)  # taker NEV = 30 - 10 - spread/2 > 0
    assert market and all(any(o.is_post_only for o in entries if o.ts_init < m.ts_init) for m in market)
    _, market, entries = _taker_run(Posture.STALKER, edge_bps=30.0)
    assert entries and not market
    res, market, entries = _taker_run(Posture.APEX, edge_bps=9.0)  # maker NEV 5 > 0, taker NEV < 0
    assert entries and not market
    assert res.agent.run.counters.get("entry_abandoned", 0) > 0
