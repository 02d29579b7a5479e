"""OTR governor, HIBERNATE, kill flag and post-only on a real BacktestEngine.

Data: real Binance BTCUSDT USDT-M bookTicker quotes + trades (L2 capture 2024-08-08).
Limits are checked against NautilusTrader's own order events, not the governor's counters.
"""

from __future__ import annotations

import bisect

import pytest

from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.events import OrderFilled, OrderPendingCancel, OrderSubmitted
from nautilus_trader.trading.strategy import Strategy

from dolphin.execution.agent import AgentPorts
from dolphin.execution.ports import FileKillFlag, FixedMicrostructure, FixedRiskView, MemoryKillFlag, Posture, SimpleNevModel
from dolphin.research.backtest import run_tick_backtest

from ._support import EveryNBars, assert_kill_stopped_everything, cfg_with, l2_ticks, order_messages, resting_ports

MS = 1_000_000


def _max_in_window(ts: list[int], window_ns: int) -> int:
    best = 0
    for i, t in enumerate(ts):
        j = bisect.bisect_right(ts, t - window_ns)
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize(
    ("max_otr", "min_messages"),
    [(1000.0, 100), (8.0, 5)],
    ids=["rate-bound", "otr-bound"],
)
def test_burst_never_exceeds_order_rate_or_otr_limits(max_otr, min_messages):
    windows = [{"window_ms": 1_000, "max_messages": 20}, {"window_ms": 10_000, "max_messages": 60}]
    cfg = cfg_with(
        otr={"rate_windows": windows, "max_otr": max_otr, "otr_window_ms": 3_600_000},
        placer={"cancel_after_ms": 50, "max_requotes": 1000, "max_working_orders_per_instrument": 25},
    )
    ports = AgentPorts(
        risk=FixedRiskView(Posture.APEX, base_fraction=0.001),
        signals=EveryNBars(n=1, per_bar=25),  # a flood: 25 candidates every second
        nev=SimpleNevModel(),
        kill=MemoryKillFlag(),
        micro=FixedMicrostructure(fixed_confidence=0.5),
    )
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    msgs, fills, _ = order_messages(res.engine.cache.orders())
    gov = res.agent.governor.counters
    assert gov.denials > 0, "the burst must hit the budget"
    assert len(msgs) >= min_messages
    for w in windows:
        assert _max_in_window(msgs, w["window_ms"] * MS) <= w["max_messages"]
    # OTR at every message time: messages so far / max(1, fills so far) within the window.
    for i, t in enumerate(msgs):
        n_fills = bisect.bisect_right(fills, t)
        assert (i + 1) / max(1, n_fills) <= max_otr + 1e-9
    assert gov.forced_over_budget == 0
    assert any(e["kind"] == "otr_denied" and e["reason"] in ("rate_limit", "otr_limit") for e in res.agent.run.events)


def _resting_ports(risk, kill=None):
    return resting_ports(risk, kill, signals=EveryNBars(n=2, start=3))


def test_hibernate_cancels_every_open_order_in_the_same_cycle_and_submits_nothing_after():
    ticks = l2_ticks()
    t_hib = ticks.quotes[0].ts_event + 60_000 * MS
    cfg = cfg_with(placer={"cancel_after_ms": 10_000, "max_working_orders_per_instrument": 3, "stand_back_ticks": 5000})
    risk = FixedRiskView(Posture.STALKER, schedule=((t_hib, Posture.HIBERNATE),))
    res = run_tick_backtest(cfg, _resting_ports(risk), ticks=ticks)
    orders = res.engine.cache.orders()
    hib = [e for e in res.agent.run.events if e["kind"] == "hibernate"]
    assert len(hib) == 1
    t_cycle = hib[0]["ts_ns"]
    assert t_cycle >= t_hib and hib[0]["cancelled"] > 0
    open_at = 0
    for o in orders:
        sub = next(e for e in o.events if isinstance(e, OrderSubmitted))
        assert sub.ts_event < t_cycle, f"{o.client_order_id} submitted after HIBERNATE"
        closed_before = o.ts_closed is not None and 0 < o.ts_closed < t_cycle
        pend = [e for e in o.events if isinstance(e, OrderPendingCancel)]
        if not closed_before and not any(isinstance(e, OrderFilled) for e in o.events):
            open_at += 1
            assert pend and pend[-1].ts_event == t_cycle  # cancelled in the same event cycle
        assert o.is_closed
    assert open_at == hib[0]["cancelled"]
    assert res.agent.run.counters.get("entry_blocked_posture", 0) > 0


class _RaiseKillAt(Strategy):
    """Plays the cockpit: raises the shared kill flag at a set simulated time."""

    def __init__(self, flag: FileKillFlag, ts_ns: int) -> None:
        super().__init__()
        self.flag, self.ts_ns = flag, ts_ns

    def on_start(self) -> None:
        self.clock.set_time_alert_ns("kill", self.ts_ns, lambda e: self.flag.raise_())


def test_kill_flag_stops_submission_and_cancels_everything(tmp_path):
    ticks = l2_ticks()
    t_kill = ticks.quotes[0].ts_event + 45_000 * MS
    flag = FileKillFlag(tmp_path / "kill.flag")
    flag.clear()  # armed
    cfg = cfg_with(placer={"cancel_after_ms": 10_000, "max_working_orders_per_instrument": 3, "stand_back_ticks": 5000})
    ports = _resting_ports(FixedRiskView(Posture.STALKER), kill=flag)
    res = run_tick_backtest(cfg, ports, ticks=ticks, extra_strategies=[_RaiseKillAt(flag, t_kill)])
    assert flag.is_raised()
    assert_kill_stopped_everything(res, t_kill)
    # The signal source kept producing candidates after the kill; none reached the venue.
    assert ports.signals.bars > 100


def test_post_only_orders_never_take_liquidity():
    cfg = cfg_with(placer={"cancel_after_ms": 3_000, "max_requotes": 50, "max_working_orders_per_instrument": 2})
    ports = AgentPorts(
        risk=FixedRiskView(Posture.APEX, base_fraction=0.01),
        signals=EveryNBars(n=3),
        nev=SimpleNevModel(),
        kill=MemoryKillFlag(),
        micro=FixedMicrostructure(fixed_wobi=None, fixed_confidence=1.0),  # most aggressive maker placement
    )
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    post_only_fills = [
        e
        for o in res.engine.cache.orders()
        if o.is_post_only
        for e in o.events
        if isinstance(e, OrderFilled)
    ]
    assert len(post_only_fills) >= 3
    assert all(e.liquidity_side == LiquiditySide.MAKER for e in post_only_fills)
    # Exits go passive first too; any market fallback is not post-only and is allowed to take.
    assert res.agent.run.counters.get("post_only_taker_fills", 0) == 0


def test_hibernate_flattens_positions_passive_first_then_market():
    ticks = l2_ticks()
    t_hib = ticks.quotes[0].ts_event + 60_000 * MS
    cfg = cfg_with(
        placer={"cancel_after_ms": 3_000, "max_working_orders_per_instrument": 1},
        exits={"hibernate_flatten": "passive_then_market", "hibernate_market_after_ms": 2_000,
               "take_profit_bps": 5_000.0, "stop_loss_bps": 5_000.0},
    )
    risk = FixedRiskView(Posture.STALKER, schedule=((t_hib, Posture.HIBERNATE),))
    ports = AgentPorts(
        risk=risk, signals=EveryNBars(n=2), nev=SimpleNevModel(), kill=MemoryKillFlag(),
        micro=FixedMicrostructure(fixed_confidence=0.5),
    )
    res = run_tick_backtest(cfg, ports, ticks=ticks)
    hib = next(e for e in res.agent.run.events if e["kind"] == "hibernate")
    after = [o for o in res.engine.cache.orders() if o.ts_init >= hib["ts_ns"]]
    assert after, "an open position at HIBERNATE must be flattened"
    assert all(o.is_reduce_only for o in after)  # nothing but flattening after HIBERNATE
    assert after[0].is_post_only  # passive first
    assert not res.engine.cache.positions_open()
    assert any(t["exit_reason"] == "hibernate" for t in res.agent.run.trades)


def _hibernate_run(rule: str, schedule, after_ms: int = 1_500):
    """Real L1 with a scripted posture schedule and the given HIBERNATE flatten rule."""
    cfg = cfg_with(
        placer={"cancel_after_ms": 3_000, "max_working_orders_per_instrument": 1},
        exits={"hibernate_flatten": rule, "hibernate_market_after_ms": after_ms,
               "take_profit_bps": 5_000.0, "stop_loss_bps": 5_000.0},
    )
    ports = AgentPorts(
        risk=FixedRiskView(Posture.STALKER, schedule=schedule), signals=EveryNBars(n=2), nev=SimpleNevModel(),
        kill=MemoryKillFlag(), micro=FixedMicrostructure(fixed_confidence=0.5),
    )
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    return res, [e["ts_ns"] for e in res.agent.run.events if e["kind"] == "hibernate"]


def _hibernate_twice(rule: str, second_ms: int, after_ms: int = 1_500):
    """Real L1: HIBERNATE 60 s in, STALKER 500 ms later, HIBERNATE again at +second_ms."""
    t_hib = l2_ticks().quotes[0].ts_event + 60_000 * MS
    schedule = ((t_hib, Posture.HIBERNATE), (t_hib + 500 * MS, Posture.STALKER), (t_hib + second_ms * MS, Posture.HIBERNATE))
    res, hibs = _hibernate_run(rule, schedule, after_ms)
    assert len(hibs) == 2
    return res, hibs


def test_a_second_hibernate_gets_its_own_passive_phase():
    # HIBERNATE with a position (deadline set), back to STALKER (a new position fills), HIBERNATE
    # again before the first episode's deadline: the second episode must rest passive for its full
    # hibernate_market_after_ms. Before the fix the first episode's deadline fired 290 ms into the
    # second and sent the market flatten then.
    res, hibs = _hibernate_twice("passive_then_market", 1_200)
    assert res.agent.run.counters.get("flatten_deadline_cancelled") == 1  # the first episode's, on leaving it
    first = [o for o in res.engine.cache.orders() if hibs[0] <= o.ts_init < hibs[1]]
    assert first and first[0].is_reduce_only  # the first episode flattened a position
    second = sorted((o for o in res.engine.cache.orders() if o.ts_init >= hibs[1]), key=lambda o: o.ts_init)
    assert second and second[0].is_post_only and second[0].is_reduce_only  # passive first
    market = [o for o in second if not o.is_post_only]
    assert market, "the passive exit did not fill within the deadline on this data: the market flatten follows"
    assert all(o.is_reduce_only for o in second)
    assert market[0].ts_init >= hibs[1] + 1_500 * MS  # not before the second episode's own deadline
    assert not res.engine.cache.positions_open()


def test_an_entry_filled_during_hibernate_gets_the_market_deadline():
    # The second HIBERNATE starts while an entry rests: its cancel is sent, but the entry fills
    # (the cancel was still on the way), so the episode starts flat and a position opens inside
    # it. It is flattened passive first and at market after hibernate_market_after_ms; before the
    # fix no deadline was armed and the passive exit rested 2.5 s.
    res, hibs = _hibernate_twice("passive_then_market", 1_066)
    opened = [t for t in res.agent.run.trades if t["ts_open_ns"] >= hibs[1]]
    assert opened and all(t["exit_reason"] == "hibernate" for t in opened)
    second = sorted((o for o in res.engine.cache.orders() if o.ts_init >= hibs[1]), key=lambda o: o.ts_init)
    assert second[0].is_post_only and all(o.is_reduce_only for o in second)
    market = [o for o in second if not o.is_post_only]
    assert market, "no market flatten: the deadline was not armed for the position opened in HIBERNATE"
    assert market[0].ts_init >= opened[0]["ts_open_ns"] + 1_500 * MS
    assert not res.engine.cache.positions_open()


@pytest.mark.parametrize("rule", ["market", "passive_then_market"])
def test_hibernate_sends_the_flatten_when_its_cancel_took_a_resting_exit(rule):
    """Found in review: a passive exit resting at HIBERNATE (here a max-hold exit, 3 s TTL) was
    cancelled by the cancel-all, and the flatten could not go out while it worked; on the cancel
    nothing was re-sent, so the flatten waited for the next bar (up to a bar late; with "market"
    no deadline exists at all). Now it goes out at the cancel's acknowledgement."""
    t0 = l2_ticks().quotes[0].ts_event
    cfg = cfg_with(
        placer={"cancel_after_ms": 3_000, "max_working_orders_per_instrument": 1},
        exits={"hibernate_flatten": rule, "hibernate_market_after_ms": 1_500, "max_hold_bars": 3,
               "take_profit_bps": 5_000.0, "stop_loss_bps": 5_000.0},
    )
    ports = AgentPorts(
        risk=FixedRiskView(Posture.STALKER, schedule=((t0 + 12_500 * MS, Posture.HIBERNATE),)),
        signals=EveryNBars(n=2), nev=SimpleNevModel(), kill=MemoryKillFlag(),
        micro=FixedMicrostructure(fixed_confidence=0.5),
    )
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks())
    hib = next(e["ts_ns"] for e in res.agent.run.events if e["kind"] == "hibernate")
    taken = [o for o in res.engine.cache.orders() if o.is_reduce_only and o.ts_init < hib and o.is_canceled
             and o.ts_last > hib]
    assert len(taken) == 1, "scenario: one passive exit rests when HIBERNATE starts"
    ack = taken[0].ts_last
    after = sorted((o for o in res.engine.cache.orders() if o.ts_init >= hib), key=lambda o: o.ts_init)
    assert after and after[0].is_reduce_only and after[0].ts_init == ack  # at the cancel's acknowledgement
    assert after[0].is_post_only == (rule == "passive_then_market")
    assert not res.engine.cache.positions_open()


def test_hibernate_flatten_none_leaves_a_position_opened_during_hibernate():
    # hibernate_flatten = "none": HIBERNATE cancels orders but flattens nothing, also not a position
    # whose entry filled while its cancel was on the way (before the fix that one was flattened).
    # The ordinary exits stay allowed. HIBERNATE starts 1 ms before a resting entry fills.
    t_hib = l2_ticks().quotes[0].ts_event + 60_000 * MS + 21_368 * MS
    res, hibs = _hibernate_run("none", ((t_hib, Posture.HIBERNATE),))
    hib = hibs[0]
    opened = [t for t in res.agent.run.trades if t["ts_open_ns"] >= hib]
    assert opened, "scenario: an entry resting at HIBERNATE fills during it"
    assert all(t["exit_reason"] != "hibernate" for t in res.agent.run.trades)


def test_an_l1_hell_run_reports_what_hell_drew():
    """Review 2026-12-06: the L1 HELL run built its fill model inside the engine and its report had
    no `hell_fill_draws` (the L2 one had); the draws are the HELL run's own evidence."""
    cfg = cfg_with(placer={"cancel_after_ms": 3_000, "max_requotes": 50, "max_working_orders_per_instrument": 2})
    ports = AgentPorts(risk=FixedRiskView(Posture.APEX, base_fraction=0.01), signals=EveryNBars(n=3),
                       nev=SimpleNevModel(), kill=MemoryKillFlag(),
                       micro=FixedMicrostructure(fixed_wobi=None, fixed_confidence=1.0))  # fmt: skip
    res = run_tick_backtest(cfg, ports, ticks=l2_ticks(), scenario="hell")
    draws = res.report["hell_fill_draws"]
    assert (draws["entry_frac"], draws["exit_frac"]) == (0.48, 0.35)
    assert draws["entry_allowed"] + draws["entry_denied"] > 0 and res.fill_model is not None
