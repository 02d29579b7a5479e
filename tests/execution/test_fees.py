"""The simulated venue's commission (execution.fees): maker / taker fee by liquidity side plus the
transaction tax on the side the NEV gate taxes, checked fill by fill on real BacktestEngine runs over
the shipped Binance USDT-M 5-minute perps (July 2023)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from nautilus_trader.backtest.models import MakerTakerFeeModel
from nautilus_trader.model.enums import LiquiditySide, OrderSide
from nautilus_trader.model.events import OrderFilled

from dolphin.core.config import load_config
from dolphin.execution.fees import SideTaxFeeModel, taxes_charged, venue_fee_model
from dolphin.research.backtest import load_bars, run_bar_backtest

TAX = 3.0  # bps (small enough that the NEV gate still lets trades through on both sides)


def _taxed(side: str):
    overrides = {"execution": {"backtest": {"tax_bps": TAX, "tax_side": side}},
                 "alpha": {"nev": {"fees": {"tax_bps": TAX, "tax_side": side}}}}  # fmt: skip
    return load_config(environ={}, overrides=overrides)


@pytest.fixture(scope="module")
def bars():
    return load_bars(load_config(environ={}))


def _fills(res):
    return [(o, e) for o in res.engine.cache.orders() for e in o.events if isinstance(e, OrderFilled)]


@pytest.mark.parametrize("side", ["sell", "buy", "both"])
def test_the_tax_is_charged_on_the_taxed_side_only(side, bars):
    cfg = _taxed(side)
    res = run_bar_backtest(cfg, data=bars)
    fills = _fills(res)
    bt = cfg.execution.backtest
    taxed = {"sell": {OrderSide.SELL}, "buy": {OrderSide.BUY}, "both": {OrderSide.BUY, OrderSide.SELL}}[side]
    assert {o.side for o, _ in fills} == {OrderSide.BUY, OrderSide.SELL}  # both sides traded
    want_tax = 0.0
    for order, fill in fills:
        notional = Decimal(str(fill.last_qty)) * Decimal(str(fill.last_px))
        fee = Decimal(str(bt.maker_fee_bps if fill.liquidity_side == LiquiditySide.MAKER else bt.taker_fee_bps)) / 10_000
        tax = Decimal(str(TAX)) / 10_000 if order.side in taxed else Decimal(0)
        # every fill's commission, from NautilusTrader's own event: fee + tax of its side
        assert fill.commission.as_decimal() == pytest.approx(notional * fee + notional * tax, abs=Decimal("2e-8"))
        want_tax += float(notional * tax)
    r = res.report
    assert r["taxes_usdt"] == pytest.approx(want_tax, abs=1e-6) and r["taxes_usdt"] > 0
    commissions = sum(f.commission.as_double() for _, f in fills)
    assert r["fees_usdt"] + r["taxes_usdt"] == pytest.approx(commissions, abs=1e-6)


def test_a_one_sided_tax_costs_less_than_a_both_sided_one_on_the_same_run(bars):
    sell = run_bar_backtest(_taxed("sell"), data=bars).report
    both = run_bar_backtest(_taxed("both"), data=bars).report
    assert 0 < sell["taxes_usdt"] < both["taxes_usdt"]


def test_no_tax_is_nautilus_traders_own_model_and_reports_zero(bars):
    cfg = load_config(environ={})
    assert type(venue_fee_model(0.0, "sell")) is MakerTakerFeeModel
    assert type(venue_fee_model(5.0, "none")) is MakerTakerFeeModel
    assert taxes_charged(MakerTakerFeeModel()) == 0.0
    res = run_bar_backtest(cfg, data=bars)
    assert res.report["taxes_usdt"] == 0.0
    commissions = sum(f.commission.as_double() for _, f in _fills(res))
    assert res.report["fees_usdt"] == pytest.approx(commissions, abs=1e-6)


def test_bad_tax_arguments_are_refused():
    with pytest.raises(ValueError, match="tax_side"):
        SideTaxFeeModel(1.0, "sells")
    with pytest.raises(ValueError, match="tax_bps"):
        SideTaxFeeModel(float("nan"), "sell")
    with pytest.raises(ValueError, match="tax_side"):
        venue_fee_model(0.0, "neither")


def test_the_venue_and_the_gate_tax_the_same_side():
    from dolphin.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"execution\.backtest\.tax_side"):
        load_config(environ={}, overrides={"execution": {"backtest": {"tax_bps": TAX, "tax_side": "both"}},
                                           "alpha": {"nev": {"fees": {"tax_bps": TAX, "tax_side": "sell"}}}})
    cfg = _taxed("buy")
    assert msgspec.structs.asdict(cfg.execution.backtest)["tax_side"] == cfg.alpha.nev.fees.tax_side == "buy"


def test_a_reused_fee_model_reports_each_runs_own_taxes(bars, monkeypatch):
    """Review 2026-12-06: NautilusTrader never resets a fee model, so a model kept across runs
    (an engine reset, or one model given to two runs) reported the taxes of both."""
    import dolphin.research.backtest as backtest_mod

    cfg = _taxed("sell")
    shared = venue_fee_model(TAX, "sell")
    monkeypatch.setattr(backtest_mod, "venue_fee_model", lambda *a: shared)
    first = run_bar_backtest(cfg, data=bars).report
    second = run_bar_backtest(cfg, data=bars).report
    assert first["taxes_usdt"] > 0 and second["taxes_usdt"] == pytest.approx(first["taxes_usdt"], abs=1e-9)
    assert shared.taxes_usdt == pytest.approx(2 * first["taxes_usdt"], abs=1e-9)
