"""Exit rules fire on a real BacktestEngine over real Binance USDT-M BTCUSDT 5-minute bars.

One scripted short entry; each case isolates one rule by pushing the others out of reach.
The book view (WOBI) is injected: bars carry no order book.
"""

from __future__ import annotations

import msgspec
import pytest

from dolphin.execution.agent import AgentPorts
from dolphin.execution.ports import FixedMicrostructure, FixedRiskView, MemoryKillFlag, Posture, SimpleNevModel
from dolphin.research.backtest import load_bars, run_bar_backtest

from ._support import OneShot, cfg_with

FAR = 50_000.0  # bps: out of reach on this data
NO_HOLD = {"max_hold_bars": 1_000, "favourable_max_hold_bars": 1_000}  # bars: out of reach too


@pytest.fixture(scope="module")
def btc_bars():
    return load_bars(cfg_with(backtest={"symbols": ["BTCUSDT"]}), max_bars=1_200)


CASES = {
    "take_profit": ({"take_profit_bps": 15.0, "stop_loss_bps": FAR, **NO_HOLD}, None),
    "stop_loss": ({"take_profit_bps": FAR, "stop_loss_bps": 15.0, **NO_HOLD}, None),
    "max_hold": ({"take_profit_bps": FAR, "stop_loss_bps": FAR, "max_hold_bars": 10}, None),
    "book_contradicts": ({"take_profit_bps": FAR, "stop_loss_bps": FAR}, +0.5),  # bid-heavy book vs a short
    "favourable_max_hold": ({"take_profit_bps": FAR, "stop_loss_bps": FAR}, -0.5),  # ask-heavy book helps a short
}
EXPECTED_BARS = {"max_hold": 10, "book_contradicts": 60, "favourable_max_hold": 180}


@pytest.mark.parametrize("rule", list(CASES))
def test_each_exit_rule_fires_and_closes_the_position(rule, btc_bars):
    exits, wobi = CASES[rule]
    cfg = cfg_with(exits=exits)
    entry_ts = btc_bars.sets[0].bars[300].ts_event
    # TURTLE right after the entry: exits must still be allowed.
    risk = FixedRiskView(Posture.STALKER, schedule=((entry_ts + 3 * 300_000_000_000, Posture.TURTLE),))
    ports = AgentPorts(
        risk=risk, signals=OneShot(at=300), nev=SimpleNevModel(), kill=MemoryKillFlag(),
        micro=FixedMicrostructure(fixed_wobi=wobi, fixed_confidence=0.5),
    )
    res = run_bar_backtest(cfg, data=btc_bars, ports=ports)
    signals = [e for e in res.agent.run.events if e["kind"] == "exit_signal"]
    assert len(signals) == 1
    sig = signals[0]
    assert sig["reason"] == rule
    trades = res.agent.run.trades
    assert len(trades) == 1 and trades[0]["exit_reason"] == rule and trades[0]["side"] == -1
    entry = trades[0]["entry_px"]
    pnl_bps = -(sig["px"] / entry - 1.0) * 1e4
    if rule == "take_profit":
        assert pnl_bps >= 15.0
    elif rule == "stop_loss":
        assert pnl_bps <= -15.0
        exits_sent = [o for o in res.engine.cache.orders() if o.is_reduce_only]
        assert exits_sent and not exits_sent[0].is_post_only  # a stop goes straight to market
    else:
        assert sig["bars_held"] == EXPECTED_BARS[rule]
    assert any(e["kind"] == "posture" and e["new"] == "TURTLE" for e in res.agent.run.events)
    assert not res.engine.cache.positions_open()
    if rule != "stop_loss":
        first_exit = next(o for o in res.engine.cache.orders() if o.is_reduce_only)
        assert first_exit.is_post_only  # passive first


def test_a_neutral_book_is_not_favourable_at_a_zero_wobi_threshold():
    """With ``exits.wobi_threshold = 0`` a WOBI of exactly 0 (equal top sizes) read as favourable
    and held a position to the favourable max hold; neutral is neutral for any threshold."""
    from dolphin.execution.exits import ExitReason, exit_decision

    ex = msgspec.structs.replace(cfg_with().execution.exits, wobi_threshold=0.0)
    held = (ex.max_hold_bars + ex.favourable_max_hold_bars) // 2
    assert exit_decision(1, 100.0, 100.0, held, 0.0, ex) == ExitReason.MAX_HOLD
    assert exit_decision(-1, 100.0, 100.0, held, 0.0, ex) == ExitReason.MAX_HOLD
    assert exit_decision(1, 100.0, 100.0, held, None, ex) == ExitReason.MAX_HOLD
    assert exit_decision(1, 100.0, 100.0, held, 0.05, ex) is None  # favourable: holds
    assert exit_decision(-1, 100.0, 100.0, held, 0.05, ex) == ExitReason.BOOK_CONTRADICTS  # against
