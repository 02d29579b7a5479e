"""The agent asks a source that declares its candidate slots only for bars in those slots.

Real BacktestEngine over the shipped real bars with the composition root's real ports (as
`dolphin backtest`). The same run with the slots hidden (every bar asks the source) must give the
same counters, events, trades, equity curve and emitted candidates: skipping a bar outside the
slots changes nothing.
"""

from __future__ import annotations

from dolphin.core.config import load_config
from dolphin.research.backtest import default_ports, load_bars

from ._support import bar_engine


class _NoSlots:
    """The same source without ``candidate_slots`` (every bar is looked up); counts lookups."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    def on_bar(self, *args):
        return self.inner.on_bar(*args)

    def candidates_at(self, instrument_id: str, ts_ns: int):
        self.calls += 1
        return self.inner.candidates_at(instrument_id, ts_ns)


class _Slots(_NoSlots):
    def candidate_slots(self, instrument_id: str):
        return self.inner.candidate_slots(instrument_id)


def _run(cfg, data, wrap):
    ports = default_ports(cfg, data)
    ports.signals = source = wrap(ports.signals)
    engine, agent = bar_engine(cfg, data, ports=ports)
    engine.run()
    run = agent.run
    out = (dict(run.counters), list(run.events), list(run.trades), list(run.equity), source.inner.emitted)
    engine.dispose()
    return out, source.calls


def test_slot_skipping_changes_nothing() -> None:
    cfg = load_config(environ={})
    data = load_bars(cfg)
    n_bars = sum(len(s.bars) for s in data.sets)
    full, calls_full = _run(cfg, data, _NoSlots)
    slotted, calls_slotted = _run(cfg, data, _Slots)
    assert calls_full == n_bars
    assert 0 < calls_slotted < n_bars // 10  # only bars with a candidate are looked up
    assert full[2] and full[1]  # the run trades and records events
    assert slotted == full
