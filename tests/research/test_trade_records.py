"""The buffered analyzer record equals NautilusTrader's own, read at any point (generated PnLs)."""

from __future__ import annotations

import pandas as pd
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.objects import Money

from dolphin.research.trade_records import BufferedAnalyzer, buffer_trade_records


def _records(n: int, start: int = 0) -> list[tuple[PositionId, Money, int | None]]:
    # Generated PnLs: a NETTING id repeated (reopened positions), a second currency, a None timestamp.
    out = []
    for i in range(start, start + n):
        ccy = BTC if i % 7 == 3 else USDT
        pid = PositionId("BTCUSDT-PERP.BINANCE-S-001" if i % 2 else f"ETHUSDT-PERP.BINANCE-S-{i:03d}")
        out.append((pid, Money((-1) ** i * (i * 1.2345 + 0.01), ccy), None if i == 5 else 1_700_000_000_000_000_000 + i))
    return out


def _assert_same(stock: PortfolioAnalyzer, buffered: PortfolioAnalyzer) -> None:
    a, b = stock._recorded_realized_pnls, buffered._recorded_realized_pnls
    assert a.keys() == b.keys()
    for ccy in a:
        pd.testing.assert_series_equal(a[ccy], b[ccy])
        pd.testing.assert_series_equal(stock._recorded_realized_pnl_timestamps[ccy], buffered._recorded_realized_pnl_timestamps[ccy])
        pd.testing.assert_series_equal(stock.realized_pnls(ccy), buffered.realized_pnls(ccy))


def test_buffered_records_equal_stock_records_at_every_read() -> None:
    stock, buffered = PortfolioAnalyzer(), PortfolioAnalyzer()
    assert buffer_trade_records(buffered)
    assert type(buffered) is BufferedAnalyzer
    for pid, pnl, ts in _records(12):
        stock.record_trade(pid, pnl, ts)
        buffered.record_trade(pid, pnl, ts)
    _assert_same(stock, buffered)  # first read builds the Series
    for pid, pnl, ts in _records(9, start=12):  # more after a read: appended in order
        stock.record_trade(pid, pnl, ts)
        buffered.record_trade(pid, pnl, ts)
    _assert_same(stock, buffered)
    assert len(buffered._recorded_realized_pnls[USDT]) == sum(1 for _, m, _ in _records(21) if m.currency == USDT)


def test_reset_drops_pending_records_like_stock() -> None:
    stock, buffered = PortfolioAnalyzer(), PortfolioAnalyzer()
    buffer_trade_records(buffered)
    for pid, pnl, ts in _records(4):
        stock.record_trade(pid, pnl, ts)
        buffered.record_trade(pid, pnl, ts)
    stock.reset()
    buffered.reset()
    assert buffered._recorded_realized_pnls == {} == stock._recorded_realized_pnls
    assert buffered.realized_pnls() is None and stock.realized_pnls() is None
    for pid, pnl, ts in _records(3, start=30):
        stock.record_trade(pid, pnl, ts)
        buffered.record_trade(pid, pnl, ts)
    _assert_same(stock, buffered)


def test_only_a_stock_analyzer_is_switched() -> None:
    class Other(PortfolioAnalyzer):
        pass

    other = Other()
    assert not buffer_trade_records(other)
    assert type(other) is Other
