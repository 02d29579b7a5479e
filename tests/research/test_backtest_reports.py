"""`dolphin backtest` / HELL / knee / live gate on real BacktestEngine runs over real bars.

Data: the shipped Binance USDT-M 5-minute perps of July 2023, ingested into the catalog and read
from it. The agent's ports are the composition root's real ones (survival controller, Oracle
signals on the scanner's vel_div, Oracle NEV).
"""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.events import OrderFilled

from dolphin.cli import main
from dolphin.core.config import load_config
from dolphin.execution.live_gate import check_live_allowed
from dolphin.research.backtest import config_hash, run_bar_backtest
from dolphin.research.knee import knee_index, run_knee
from dolphin.research.report import render_table, report_json, write_report
from dolphin.research.trade_records import BufferedAnalyzer


def test_report_is_reproducible_bit_for_bit_with_a_fixed_seed(cfg, bar_sets):
    a = run_bar_backtest(cfg, data=bar_sets)
    b = run_bar_backtest(cfg, data=bar_sets)
    assert report_json(a.report) == report_json(b.report)
    assert a.equity == b.equity
    r = a.report
    assert r["trades"] > 5
    # The composition root's real components ran: Oracle signals on the scanner's vel_div, the
    # survival controller fed by the run (drawdown, slippage, order RTT), the Oracle NEV gate.
    assert r["signals"] == "oracle" and r["signal_candidates_emitted"] > 0
    sv = r["survival"]
    assert sv["layers"] == ["L6_slippage_drift", "L9_drawdown", "RTT_lockdown"]
    assert sv["readings"]["drawdown_frac"] > 0 and sv["readings"]["slippage_drift_bps"] > 0
    assert sv["readings"]["order_rtt_ms"] > 0 and sv["postures_entered"].get("TURTLE", 0) >= 1
    assert r["nev_reasons"]["PROPOSED"] > 0
    for key in ("roi", "max_drawdown", "profit_factor", "sharpe", "win_rate", "ggr_annual", "fill_rate",
                "cancel_rate", "otr", "realised_nev_bps", "fees_usdt", "taxes_usdt"):
        assert key in r and not (isinstance(r[key], float) and math.isnan(r[key])), key
    # Independent check from NautilusTrader's events: post-only orders only ever made liquidity.
    po = [e for o in a.engine.cache.orders() if o.is_post_only for e in o.events if isinstance(e, OrderFilled)]
    assert po and all(e.liquidity_side == LiquiditySide.MAKER for e in po)
    fees = sum(e.commission.as_double() for o in a.engine.cache.orders() for e in o.events if isinstance(e, OrderFilled))
    assert r["fees_usdt"] + r["taxes_usdt"] == pytest.approx(fees)
    # NautilusTrader's analyzer record per closed position is buffered (research.trade_records):
    # read after the run, it holds one record per trade the agent saw close, in order.
    analyzer = a.engine.portfolio.analyzer
    assert type(analyzer) is BufferedAnalyzer
    assert analyzer.realized_pnls().tolist() == [t["pnl"] for t in a.agent.run.trades]
    # Positions open at the end: counted and valued beside the closed trades, from NautilusTrader's
    # positions marked at their instruments' last bar closes.
    still_open = a.engine.cache.positions_open()
    assert r["open_positions_end"] == len(still_open) > 0  # the shipped run ends with positions held
    last_close = {str(s.instrument.id): s.bars[-1].close for s in bar_sets.sets}
    upnl = sum(p.unrealized_pnl(last_close[p.instrument_id.value]).as_double() for p in still_open)
    assert r["unrealised_pnl_end_usdt"] == pytest.approx(upnl, abs=1e-6)
    assert r["final_equity"] == pytest.approx(r["final_balance"] + upnl, abs=1e-6)
    table = render_table([r])
    assert "open positions at end" in table and f"{upnl:+,.2f}" in table


def test_a_different_seed_changes_the_fill_model_draws(cfg, bar_sets):
    other = msgspec.structs.replace(
        cfg, execution=msgspec.structs.replace(
            cfg.execution, backtest=msgspec.structs.replace(cfg.execution.backtest, seed=7)))
    a = run_bar_backtest(cfg, data=bar_sets)
    b = run_bar_backtest(other, data=bar_sets)
    assert report_json(a.report) != report_json(b.report)


def test_hell_scenario_runs_side_by_side_with_lower_fills(cfg, bar_sets, tmp_path):
    nominal = run_bar_backtest(cfg, data=bar_sets)
    hell = run_bar_backtest(cfg, data=bar_sets, scenario="hell")
    assert hell.report["scenario"] == "hell"
    # the data that ran, not only the configuration's label (review 2026-12-06)
    assert hell.report["bar_dataset"] == nominal.report["bar_dataset"] == "BINANCE_USDM/bars_5m"
    assert hell.report["fill_rate_entry"] < nominal.report["fill_rate_entry"]
    assert hell.report["fill_rate_exit"] < nominal.report["fill_rate_exit"]
    fm = hell.fill_model
    n = fm.allowed_entry + fm.denied_entry
    assert n >= 20
    sigma = math.sqrt(0.48 * 0.52 / n)
    assert abs(fm.allowed_entry / n - 0.48) < 4 * sigma  # the HELL draw is 48 % per entry order
    if fm.allowed_exit + fm.denied_exit >= 20:
        m = fm.allowed_exit + fm.denied_exit
        assert abs(fm.allowed_exit / m - 0.35) < 4 * math.sqrt(0.35 * 0.65 / m)
    text = render_table([nominal.report, hell.report])
    assert "nominal" in text and "hell" in text and "ROI" in text
    paths = write_report(tmp_path, "hell-test", [nominal.report, hell.report], [nominal.equity, hell.equity])
    assert paths["png"].stat().st_size > 1000
    assert "<table" in paths["html"].read_text()
    assert len(json.loads(paths["json"].read_text())["runs"]) == 2


def test_live_refuses_without_hell_report_and_names_the_command(cfg, tmp_path, monkeypatch, capsys):
    gate = check_live_allowed(cfg, reports_dir=tmp_path)
    assert not gate.allowed
    assert str(gate.report_path) in gate.reason and "dolphin backtest --scenario hell" in gate.reason
    assert gate.config_hash == config_hash(cfg)
    # A ruinous HELL report also refuses.
    gate.report_path.parent.mkdir(parents=True)
    ruin = {"config_hash": gate.config_hash, "runs": [{"scenario": "hell", "ruin": True, "final_equity": 1.0,
                                                       "max_drawdown": 0.99}]}
    gate.report_path.write_text(json.dumps(ruin))
    again = check_live_allowed(cfg, reports_dir=tmp_path)
    assert not again.allowed and "ruin" in again.reason
    # A changed configuration has another hash, so its report is missing.
    changed = load_config(environ={}, overrides={"execution": {"placer": {"cancel_after_ms": 250}}})
    assert config_hash(changed) != gate.config_hash
    assert not check_live_allowed(changed, reports_dir=tmp_path).allowed


def test_cli_hell_run_writes_the_report_the_live_gate_accepts(tmp_path, monkeypatch):
    """On a copy of the catalog's 5-minute bars: the HELL run's report opens the gate, until the
    data it was made on changes (review 2026-12-06: a report on one state of the catalog still
    opened the gate after new bars were ingested)."""
    import shutil

    from dolphin.data.catalog import Catalog
    from dolphin.runtime.wiring import catalog_lock, catalog_path, ensure_catalog

    base = load_config(environ={})
    with catalog_lock(base):
        ensure_catalog(base)
        # the scanner's panel takes 1m-only symbols from bars_1m; the run settles funding
        for ds in ("bars_5m", "bars_1m", "funding"):
            shutil.copytree(catalog_path(base) / ds, tmp_path / "cat" / ds)
    (tmp_path / "nt").mkdir()
    (tmp_path / "nt" / ".sample_ingested").write_text("copied\n")  # (the copy is the catalog)
    env = {"DOLPHIN__DATA__CATALOG_DIR": str(tmp_path / "cat"),
           "DOLPHIN__EXECUTION__BACKTEST__NAUTILUS_DIR": str(tmp_path / "nt"),
           "DOLPHIN__EXECUTION__BACKTEST__REPORTS_DIR": str(tmp_path / "var/reports")}  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    assert main(["live"]) == 3  # refused: no HELL report yet
    assert main(["backtest", "--scenario", "hell", "--symbols", "BTCUSDT"]) == 0
    cfg = load_config(environ=env, overrides={"execution": {"backtest": {"symbols": ["BTCUSDT"]}}})
    h = config_hash(cfg)
    doc = json.loads((tmp_path / "var/reports/hell" / f"{h}.json").read_text())
    assert [r["scenario"] for r in doc["runs"]] == ["nominal", "hell"]
    assert (tmp_path / f"var/reports/hell-{h}.png").is_file()
    gate = check_live_allowed(cfg, reports_dir=tmp_path / "var/reports")
    assert gate.allowed, gate.reason
    # One more bar of ETHUSDT (in the scan universe, not traded) reaches the catalog.
    cat = Catalog(tmp_path / "cat")
    stored = cat.read("bars_5m", "BINANCE_USDM", "ETHUSDT")
    last = stored.slice(stored.num_rows - 1)
    nxt = last.set_column(last.schema.get_field_index("ts_ns"), "ts_ns",
                          [[last["ts_ns"][0].as_py() + 300 * 10**9]])  # fmt: skip
    assert cat.write("bars_5m", "BINANCE_USDM", "ETHUSDT", nxt).rows_written == 1
    gate = check_live_allowed(cfg, reports_dir=tmp_path / "var/reports")
    assert not gate.allowed and "other data" in gate.reason and "dolphin backtest --scenario hell" in gate.reason


@pytest.mark.parametrize("dataset, symbol", [("bars_5m", "ETHUSDT"), ("bars_1m", "DASHUSDT"), ("funding", "BTCUSDT")])
def test_the_hell_data_fingerprint_covers_every_bar_stream_the_run_reads(tmp_path, dataset, symbol):
    """One more bar in a 5-minute stream, or in a 1-minute stream of a symbol the 5-minute set
    lacks (the scanner's panel reads it from bars_1m; review 2026-12-06: the fingerprint covered
    bars_5m only), or one more funding row of a traded symbol (the run settles funding on its
    positions; review 2026-12-06) changes the fingerprint; nothing else does."""
    import shutil

    from dolphin.data.catalog import Catalog
    from dolphin.execution.live_gate import hell_data_fingerprint
    from dolphin.runtime.wiring import catalog_lock, catalog_path, ensure_catalog

    base = load_config(environ={})
    with catalog_lock(base):
        ensure_catalog(base)
        for ds in ("bars_5m", "bars_1m", "funding"):
            shutil.copytree(catalog_path(base) / ds, tmp_path / "cat" / ds)
    cfg = load_config(environ={"DOLPHIN__DATA__CATALOG_DIR": str(tmp_path / "cat")})
    cat = Catalog(tmp_path / "cat")
    assert symbol not in cat.symbols("bars_5m", "BINANCE_USDM") or dataset != "bars_1m"
    before = hell_data_fingerprint(cfg)
    assert hell_data_fingerprint(cfg) == before  # stable
    (tmp_path / "cat" / "bars_5m" / "BINANCE_USDM" / "unrelated.txt").write_text("x")  # not a stream file
    assert hell_data_fingerprint(cfg) == before
    stored = cat.read(dataset, "BINANCE_USDM", symbol)
    last = stored.slice(stored.num_rows - 1)
    step = {"bars_5m": 300, "bars_1m": 60, "funding": 8 * 3600}[dataset]
    nxt = last.set_column(last.schema.get_field_index("ts_ns"), "ts_ns",
                          [[last["ts_ns"][0].as_py() + step * 10**9]])  # fmt: skip
    assert cat.write(dataset, "BINANCE_USDM", symbol, nxt).rows_written == 1
    assert hell_data_fingerprint(cfg) != before


def test_knee_index_marks_the_peak():
    assert knee_index([-0.1, 0.2, 0.5, 0.4, -1.0]) == 2
    assert knee_index([0.3, 0.3]) == 0


@pytest.mark.slow
def test_knee_runs_one_backtest_per_leverage(cfg):
    result = run_knee(cfg, [1.0, 2.0, 4.0, 8.0])
    assert [r["leverage"] for r in result["rows"]] == [1.0, 2.0, 4.0, 8.0]
    ggr = [r["ggr_annual"] for r in result["rows"]]
    assert result["knee_leverage"] == result["rows"][knee_index(ggr)]["leverage"]
    assert len(set(ggr)) > 1  # leverage changes the outcome


@pytest.mark.slow
def test_knee_cli_writes_table_png_and_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOLPHIN__EXECUTION__BACKTEST__REPORTS_DIR", str(tmp_path / "var/reports"))
    assert main(["knee", "--max-leverage", "3", "--symbols", "BTCUSDT"]) == 0
    doc = json.loads((tmp_path / "var/reports/knee.json").read_text())
    assert [r["leverage"] for r in doc["rows"]] == [1.0, 2.0, 3.0]
    assert (tmp_path / "var/reports/knee.png").stat().st_size > 1000


def test_report_json_is_identical_across_processes(tmp_path):
    import os
    import subprocess
    import sys

    from dolphin.core.paths import repo_root

    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}"
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(repo_root() / "src"))
        subprocess.run(
            [sys.executable, "-m", "dolphin.cli", "backtest", "--symbols", "BTCUSDT", "--out", str(out)],
            check=True, cwd=tmp_path, env=env, capture_output=True, timeout=300,
        )
        outs.append(next(out.glob("backtest-*.json")).read_bytes())
    assert outs[0] == outs[1]
    assert json.loads(outs[0])["trades"] > 0
