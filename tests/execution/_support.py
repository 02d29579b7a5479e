"""Test support for the execution plane: real data, real NautilusTrader, injected ports.

The ports here (fixed posture, scripted signals, fixed NEV) are injection of the other
planes' interfaces, not mocks of NautilusTrader, which is real in every test.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import msgspec
from nautilus_trader.model.events import (
    OrderFilled,
    OrderPendingCancel,
    OrderPendingUpdate,
    OrderSubmitted,
)

from dolphin.core.config import DolphinConfig, load_config
from dolphin.execution.feeds import TickSet
from dolphin.execution.ports import Candidate, FixedMicrostructure, MemoryKillFlag, SimpleNevModel

L2_SYMBOL = "BTCUSDT"


@lru_cache(maxsize=1)
def l2_ticks(max_quotes: int | None = 40_000) -> TickSet:
    """Real Binance USDT-M BTCUSDT bookTicker quotes + trades of the 2024-08-08 L2 capture (catalog)."""
    from dolphin.research.backtest import load_l1

    return load_l1(load_config(environ={}), L2_SYMBOL, max_quotes=max_quotes)


def cfg_with(**sections: dict[str, Any]) -> DolphinConfig:
    """Default config with execution sub-sections overridden, e.g. placer={"cancel_after_ms": 200}."""
    return load_config(environ={}, overrides={"execution": sections})


class EveryNBars:
    """Scripted signal source: `per_bar` candidates of `side` every `n` bars (from bar `start`)."""

    def __init__(self, n: int, side: int = -1, edge_bps: float = 30.0, per_bar: int = 1, start: int = 1) -> None:
        self.n, self.side, self.edge_bps, self.per_bar, self.start = n, side, edge_bps, per_bar, start
        self.bars = 0

    def on_bar(self, iid: str, ts: int, o: float, h: float, lo: float, c: float, v: float) -> Sequence[Candidate]:
        self.bars += 1
        if self.bars >= self.start and (self.bars - self.start) % self.n == 0:
            return tuple(Candidate(iid, self.side, ts, self.edge_bps, 1.0, f"t{i}") for i in range(self.per_bar))
        return ()


class OneShot(EveryNBars):
    """One candidate at bar `at`, nothing else."""

    def __init__(self, at: int, side: int = -1, edge_bps: float = 30.0) -> None:
        super().__init__(n=10**9, side=side, edge_bps=edge_bps, start=at)


def order_messages(orders) -> tuple[list[int], list[int], list[int]]:
    """(message timestamps, fill timestamps, cancel timestamps) read from NautilusTrader's events."""
    msgs, fills, cancels = [], [], []
    for o in orders:
        for e in o.events:
            if isinstance(e, (OrderSubmitted, OrderPendingUpdate)):
                msgs.append(e.ts_event)
            elif isinstance(e, OrderPendingCancel):
                msgs.append(e.ts_event)
                cancels.append(e.ts_event)
            elif isinstance(e, OrderFilled):
                fills.append(e.ts_event)
    return sorted(msgs), sorted(fills), sorted(cancels)


def replace(struct, **changes):
    return msgspec.structs.replace(struct, **changes)


def bar_engine(cfg: DolphinConfig, data, agent_cls=None, ports=None):
    """A BacktestEngine over the shipped real bars with the agent as `dolphin backtest` builds it
    (the composition root's real ports unless ``ports`` is given; ``agent_cls`` a DolphinAgent
    subclass for instrumented runs). Returns (engine, agent), not yet run."""
    from dolphin.execution.agent import DolphinAgent, DolphinAgentConfig
    from dolphin.research.backtest import BACKTEST_AGENT_LOGS, bar_order_ttl_ms, build_engine, default_ports

    bt = cfg.execution.backtest
    engine = build_engine(bt)
    for s in data.sets:
        engine.add_instrument(s.instrument)
        engine.add_data(s.bars)
    agent = (agent_cls or DolphinAgent)(
        DolphinAgentConfig(instrument_ids=tuple(str(s.instrument.id) for s in data.sets),
                           bar_types=tuple(str(s.bar_type) for s in data.sets),
                           order_ttl_ms=bar_order_ttl_ms(bt), **BACKTEST_AGENT_LOGS),
        cfg.execution,
        ports if ports is not None else default_ports(cfg, data),
    )
    engine.add_strategy(agent)
    return engine, agent


def resting_ports(risk: Any, kill: Any = None, *, signals: Any) -> Any:
    """Ports whose entries rest unfilled (stand back: placement confidence 0) under ``risk``."""
    from dolphin.execution.agent import AgentPorts

    return AgentPorts(risk=risk, signals=signals, nev=SimpleNevModel(), kill=kill or MemoryKillFlag(),
                      micro=FixedMicrostructure(fixed_confidence=0.0))  # fmt: skip


def assert_kill_stopped_everything(res: Any, t_kill: int) -> None:
    """One kill at or after ``t_kill`` that cancelled working orders; no order submitted from the
    kill on, and every order closed at the end."""
    kill = [e for e in res.agent.run.events if e["kind"] == "kill_raised"]
    assert len(kill) == 1 and kill[0]["ts_ns"] >= t_kill and kill[0]["cancelled"] > 0
    for o in res.engine.cache.orders():
        sub = next(e for e in o.events if isinstance(e, OrderSubmitted))
        assert sub.ts_event < t_kill
        assert o.is_closed
