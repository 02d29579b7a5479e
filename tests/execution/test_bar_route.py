"""Bars and quotes reach the agent through handlers with the instrument key bound (agent._keyed).

Real BacktestEngines with the composition root's real ports: the shipped real 5-minute bars (as
`dolphin backtest`) and the real L1 capture (bookTicker quotes + trades, internal 1-second bars
from the quotes; the agent prices its orders from the quotes it keeps per instrument). The keyed
routes must give exactly what NautilusTrader's stock ``handle_bar`` / ``handle_quote_tick`` path
gives (``keyed_routes = False``), and data published after the strategy stopped must change
nothing (the running check the stock handlers make).
"""

from __future__ import annotations

from nautilus_trader.model.data import Bar
from nautilus_trader.model.objects import Price, Quantity

from dolphin.core.config import load_config
from dolphin.execution.agent import DolphinAgent, DolphinAgentConfig
from dolphin.research.backtest import BACKTEST_AGENT_LOGS, build_engine, load_bars
from dolphin.runtime.wiring import build_tick_ports

from ._support import EveryNBars, bar_engine, l2_ticks

_ROUTE = ("route_keyed", "route_stock")


class _StockRoutes(DolphinAgent):
    keyed_routes = False


def _l1_engine(cfg, ticks, cls):
    engine = build_engine(cfg.execution.backtest, trades=True)
    engine.add_instrument(ticks.instrument)
    engine.add_data(ticks.quotes)
    engine.add_data(ticks.trades)
    iid = str(ticks.instrument.id)
    agent = cls(
        DolphinAgentConfig(instrument_ids=(iid,), bar_types=(f"{iid}-1-SECOND-MID-INTERNAL",), subscribe_quotes=True,
                           subscribe_trades=True, order_ttl_ms=cfg.execution.placer.cancel_after_ms,
                           **BACKTEST_AGENT_LOGS),
        cfg.execution,
        build_tick_ports(cfg, EveryNBars(n=10, start=5)).ports,
    )
    engine.add_strategy(agent)
    return engine, agent


def _outcome(agent):
    run = agent.run
    counters = {k: v for k, v in run.counters.items() if k not in _ROUTE}
    quotes = {k: (q.ts_event, str(q.bid_price), str(q.ask_price)) for k, q in agent._quotes.items()}
    return counters, list(run.events), list(run.trades), list(run.equity), dict(agent._last_px), quotes


def _route_counts(agent):
    return {k: agent.run.counters.get(k, 0) for k in _ROUTE}


def _keyed_and_stock(make_engine) -> dict:
    """The same run with the keyed routes and with the stock ones: class -> (outcome, route counts)."""
    out = {}
    for cls in (DolphinAgent, _StockRoutes):
        engine, agent = make_engine(cls)
        engine.run()
        out[cls] = (_outcome(agent), _route_counts(agent))
        engine.dispose()
    return out


def test_keyed_bar_route_gives_the_stock_paths_results() -> None:
    cfg = load_config(environ={})
    data = load_bars(cfg)
    out = _keyed_and_stock(lambda cls: bar_engine(cfg, data, cls))
    n = len(data.sets)
    assert out[DolphinAgent][1] == {"route_keyed": n, "route_stock": 0}
    assert out[_StockRoutes][1] == {"route_keyed": 0, "route_stock": n}
    keyed = out[DolphinAgent][0]
    assert keyed[2] and keyed[1]  # the run trades and records events
    assert len(keyed[3]) == len({b.ts_event for s in data.sets for b in s.bars})  # an equity point per timestamp
    assert keyed == out[_StockRoutes][0]


def test_keyed_quote_route_gives_the_stock_paths_results() -> None:
    cfg = load_config(environ={})
    ticks = l2_ticks()
    out = _keyed_and_stock(lambda cls: _l1_engine(cfg, ticks, cls))
    assert out[DolphinAgent][1] == {"route_keyed": 2, "route_stock": 0}  # the quotes and the bars
    assert out[_StockRoutes][1] == {"route_keyed": 0, "route_stock": 2}
    keyed = out[DolphinAgent][0]
    assert keyed[0].get("submitted_entry", 0) > 10 and keyed[5]  # it traded, priced from the kept quotes
    assert keyed == out[_StockRoutes][0]


def test_a_bar_after_stop_is_not_handled() -> None:
    cfg = load_config(environ={})
    data = load_bars(cfg)
    engine, agent = bar_engine(cfg, data, DolphinAgent)
    engine.run()  # ends with the strategy stopped
    assert not agent.is_running
    before = _outcome(agent)
    s = data.sets[0]
    last = s.bars[-1]
    doubled = Price(last.close.as_double() * 2, last.close.precision)  # a price the agent never saw
    late = Bar(s.bar_type, doubled, doubled, doubled, doubled, Quantity.from_str(str(last.volume)),
               last.ts_event + 300_000_000_000, last.ts_init + 300_000_000_000)
    topics = [sub.topic for sub in agent.msgbus.subscriptions() if str(s.bar_type) in sub.topic
              and _is_keyed_bar_route(agent, sub.handler)]
    assert len(topics) == 1  # the keyed handler is on the bar type's topic
    agent.msgbus.publish(topics[0], late)
    assert _outcome(agent) == before
    engine.dispose()


def _is_keyed_bar_route(agent, handler) -> bool:
    """The agent's keyed bar handler: partial(agent._routed, agent._on_bar, key)."""
    return getattr(handler, "func", None) == agent._routed and handler.args[:1] == (agent._on_bar,)


class _Counting(DolphinAgent):
    """Counts the bars that reach the agent's bar logic, per instrument key."""

    def _on_bar(self, key, bar) -> None:
        self.seen[key] = self.seen.get(key, 0) + 1
        super()._on_bar(key, bar)


def test_a_restarted_agent_gets_each_bar_once() -> None:
    # stop -> reset -> start runs on_start again and NautilusTrader puts its stock handler back
    # on the topic; the keyed route must be reused, not added a second time.
    cfg = load_config(environ={})
    data = load_bars(cfg)
    engine, agent = bar_engine(cfg, data, _Counting)
    agent.seen = {}
    engine.run()  # ends with the strategy stopped
    n_bars = {str(s.instrument.id): len(s.bars) for s in data.sets}
    assert agent.seen == n_bars  # each bar once in the run
    agent.reset()
    agent.start()
    assert agent.is_running
    for s in data.sets:
        handlers = [sub.handler for sub in agent.msgbus.subscriptions() if sub.topic == f"data.bars.{s.bar_type}"]
        assert len(handlers) == 1 and _is_keyed_bar_route(agent, handlers[0])
    s = data.sets[0]
    last = s.bars[-1]
    late = Bar(s.bar_type, last.open, last.high, last.low, last.close, last.volume,
               last.ts_event + 300_000_000_000, last.ts_init + 300_000_000_000)
    agent.seen = {}
    agent.msgbus.publish(f"data.bars.{s.bar_type}", late)
    assert agent.seen == {str(s.instrument.id): 1}
    assert agent.run.counters["route_keyed"] == 2 * len(data.sets)  # both starts keyed every bar type
    agent.stop()
    engine.dispose()
