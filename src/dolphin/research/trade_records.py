"""NautilusTrader's per-closed-position analyzer record, buffered (same data, built once on read).

NautilusTrader 1.231's ``Portfolio`` calls ``PortfolioAnalyzer.record_trade`` for every closed
position, unconditionally (also with ``run_analysis=False``). The stock method builds two
one-element pandas Series and ``pd.concat``-s each onto the growing record: about 1 ms per
closed position on this machine (pandas 3, Arrow-backed string index), quadratic in the
number of trades, and in a dolphin backtest nothing reads the records during the run.

:func:`buffer_trade_records` switches one analyzer instance to :class:`BufferedAnalyzer`,
which appends ``(position id, pnl, ts)`` to a list and builds the same two Series (same
values, index, dtypes, order) the first time anything reads them. Every other analyzer
method is NautilusTrader's own. Installed by ``research.backtest.build_engine`` for every
backtest engine (the benchmark's empty-strategy runs included), never in live or paper nodes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer

__all__ = ["BufferedAnalyzer", "buffer_trade_records"]


class BufferedAnalyzer(PortfolioAnalyzer):
    """PortfolioAnalyzer whose ``record_trade`` appends to a list; Series are built on first read."""

    def record_trade(self, position_id: Any, realized_pnl: Any, ts_event: int | None = None) -> None:
        pending = self.__dict__.get("_pending_trades")
        if pending is None:
            pending = self.__dict__["_pending_trades"] = []
        pending.append((position_id.value, realized_pnl.currency, realized_pnl.as_double(), ts_event))

    def _flush_trades(self) -> None:
        pending = self.__dict__.get("_pending_trades")
        if not pending:
            return
        self.__dict__["_pending_trades"] = []
        pnls = self.__dict__["_recorded_realized_pnls"]
        stamps = self.__dict__["_recorded_realized_pnl_timestamps"]
        by_ccy: dict[Any, tuple[list[str], list[float], list[int | None]]] = {}
        for pid, ccy, value, ts in pending:
            ids, values, times = by_ccy.setdefault(ccy, ([], [], []))
            ids.append(pid)
            values.append(value)
            times.append(int(ts) if ts is not None else None)
        for ccy, (ids, values, times) in by_ccy.items():
            new_pnls = pd.Series(values, index=ids, dtype="float64")
            new_ts = pd.Series(times, index=ids, dtype=object)
            old_pnls, old_ts = pnls.get(ccy), stamps.get(ccy)
            pnls[ccy] = new_pnls if old_pnls is None else pd.concat([old_pnls, new_pnls])
            stamps[ccy] = new_ts if old_ts is None else pd.concat([old_ts, new_ts])

    # The stock code reads and resets these two attributes directly: flush before any read.
    @property
    def _recorded_realized_pnls(self) -> dict:
        self._flush_trades()
        return self.__dict__["_recorded_realized_pnls"]

    @_recorded_realized_pnls.setter
    def _recorded_realized_pnls(self, value: dict) -> None:
        self.__dict__["_pending_trades"] = []
        self.__dict__["_recorded_realized_pnls"] = value

    @property
    def _recorded_realized_pnl_timestamps(self) -> dict:
        self._flush_trades()
        return self.__dict__["_recorded_realized_pnl_timestamps"]

    @_recorded_realized_pnl_timestamps.setter
    def _recorded_realized_pnl_timestamps(self, value: dict) -> None:
        self.__dict__["_pending_trades"] = []
        self.__dict__["_recorded_realized_pnl_timestamps"] = value


def buffer_trade_records(analyzer: Any) -> bool:
    """Switch a stock ``PortfolioAnalyzer`` instance to :class:`BufferedAnalyzer` in place.

    Returns False (and changes nothing) for any other type or layout, e.g. after a
    NautilusTrader upgrade renamed the attributes.
    """
    if type(analyzer) is not PortfolioAnalyzer:
        return False
    state = analyzer.__dict__
    if "_recorded_realized_pnls" not in state or "_recorded_realized_pnl_timestamps" not in state:
        return False
    analyzer.__class__ = BufferedAnalyzer
    state["_pending_trades"] = []
    return True
