"""Report metric semantics, strict JSON, the knee's choice and the live gate's acceptance rules.

Most tests here drive `build_report` / `knee_index` / `check_live_allowed` on hand-made inputs
(no engine) so each edge case is exact; the CLI tests stop at validation, before any data is
read, except the HELL-without-signals run, which is a real (short) `dolphin backtest`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from dolphin.cli import main
from dolphin.core.config import ConfigError, load_config
from dolphin.execution.live_gate import check_live_allowed, hell_report_path
from dolphin.research.backtest import NS_PER_YEAR, build_report, load_bars
from dolphin.research.knee import knee_index, run_knee
from dolphin.research.report import report_json

MIN5 = 300_000_000_000
PPY = NS_PER_YEAR / MIN5


def _agent(equity, trades):
    run = NS(counters={}, equity=[(i * MIN5, e) for i, e in enumerate(equity)], trades=trades,
             traded_notional_usdt=1e6, fees_usdt=200.0)  # fmt: skip
    gov = NS(submits=10, amends=0, cancels=4, fills=6, max_otr_seen=2.0, denials=0)
    a = NS(run=run, governor=NS(counters=gov), _pos={})  # no position open at the end
    a._capital = lambda: equity[-1]
    return a


def _trade(p):
    return {"pnl": p, "realised_bps": p, "expected_nev_bps": 1.0, "exit_reason": "x"}


def _strict_loads(text: str):
    def refuse(c):
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- metrics


def test_ggr_is_minus_inf_and_ruin_once_equity_went_non_positive_anywhere(cfg):
    bt = cfg.execution.backtest
    r = build_report(_agent([1e5, -2e4, 5e4, 1.1e5], [_trade(1e4)]), bt, "hell", periods_per_year=PPY)
    assert r["ggr_annual"] == -math.inf and r["ruin"] is True
    # The returns stop where the account died: no return is taken from a negative base.
    assert r["sharpe"] == 0.0  # a single return (-120 %) has no dispersion


def test_a_ruined_run_reports_its_equity_at_ruin_not_after(cfg):
    """Found in review: 1e5 -> -1 -> 2e5 reported ROI +100 % and final equity 2e5 beside ruin:
    nothing after the account died is a return of it (decision 0001-research)."""
    bt = cfg.execution.backtest
    r = build_report(_agent([1e5, 5e4, -1.0, 2e5], [_trade(1e4)]), bt, "hell", periods_per_year=PPY)
    assert r["ruin"] is True and r["final_equity"] == -1.0
    assert r["roi"] == pytest.approx(-1.0 - 1e-5) and r["max_drawdown"] == pytest.approx(1.0 + 1e-5)


def test_nan_final_equity_is_ruin_not_a_zero_growth_rate(cfg):
    bt = cfg.execution.backtest
    r = build_report(_agent([1e5, 1.01e5, math.nan], [_trade(10.0)]), bt, "hell", periods_per_year=PPY)
    assert r["ruin"] is True
    assert r["ggr_annual"] == -math.inf and r["ggr_annual"] != 0.0


def test_a_healthy_path_keeps_the_log_growth_rate(cfg):
    bt = cfg.execution.backtest
    eq = [1e5, 1.01e5, 1.02e5]
    r = build_report(_agent(eq, [_trade(1000.0), _trade(-100.0)]), bt, "nominal", periods_per_year=PPY)
    years = 2 * MIN5 / NS_PER_YEAR
    assert r["ggr_annual"] == pytest.approx(math.log(1.02) / years)
    assert r["ruin"] is False and r["profit_factor"] == pytest.approx(10.0)


def test_report_json_is_strict_json_with_flags_for_non_finite_values(cfg):
    bt = cfg.execution.backtest
    wiped = build_report(_agent([1e5, 5e4, 0.0], [_trade(-1e5)]), bt, "hell", periods_per_year=PPY)
    winners = build_report(_agent([1e5, 1.01e5, 1.02e5], [_trade(1e3)]), bt, "nominal", periods_per_year=PPY)
    text = report_json({"runs": [winners, wiped]})
    for token in ("Infinity", "NaN"):
        assert token not in text
    doc = _strict_loads(text)
    assert doc["runs"][0]["profit_factor"] is None and doc["runs"][0]["nonfinite"] == {"profit_factor": "inf"}
    assert doc["runs"][1]["ggr_annual"] is None and doc["runs"][1]["nonfinite"] == {"ggr_annual": "-inf"}
    # A finite report has no flag map: identical bytes to the plain canonical JSON.
    finite = dict(winners, profit_factor=3.0)
    assert report_json(finite) == json.dumps(finite, sort_keys=True, indent=1)


# --------------------------------------------------------------------------- knee


def test_knee_skips_nan_and_ruined_leverages():
    assert knee_index([math.nan, 0.1, 0.3]) == 2
    assert knee_index([0.1, 0.5, 0.3], [False, True, False]) == 2
    assert knee_index([0.1, -math.inf, 0.05]) == 0
    assert knee_index([math.nan, -math.inf], [False, True]) is None
    assert knee_index([-0.1, 0.2, 0.5, 0.4, -1.0]) == 2


def test_knee_refuses_no_or_sub_unit_leverages(cfg):
    with pytest.raises(ValueError, match="leverage"):
        run_knee(cfg, [])
    with pytest.raises(ValueError, match="leverage"):
        run_knee(cfg, [0.0, 1.0])


def test_knee_cli_max_leverage_zero_is_a_clear_error(capsys):
    assert main(["knee", "--max-leverage", "0"]) == 2
    assert "--max-leverage must be >= 1" in capsys.readouterr().err


def test_write_knee_writes_strict_json_and_no_knee_when_all_ruined(tmp_path):
    from dolphin.research.knee import write_knee

    result = {"seed": 42, "knee_leverage": None,
              "rows": [{"leverage": 1.0, "ggr_annual": -math.inf, "roi": -1.0, "max_drawdown": 1.0, "trades": 3,
                        "ruin": True}]}  # fmt: skip
    paths = write_knee(tmp_path, result)
    doc = _strict_loads(paths["json"].read_text())
    assert doc["knee_leverage"] is None
    assert doc["rows"][0]["ggr_annual"] is None and doc["rows"][0]["nonfinite"] == {"ggr_annual": "-inf"}
    assert paths["png"].stat().st_size > 1000


# --------------------------------------------------------------------------- bar interval


def test_bar_minutes_that_disagree_with_the_data_are_a_config_error():
    c = load_config(environ={}, overrides={"execution": {"backtest": {"bars": "bars_1m"}}})
    with pytest.raises(ConfigError, match=r"'execution\.backtest\.bar_minutes' = 5 .*1-minute bars"):
        load_bars(c)


def test_backtest_cli_reports_a_bar_interval_mismatch_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "c.toml"
    f.write_text('[execution.backtest]\nbars = "bars_1m"\n')
    assert main(["-c", str(f), "backtest", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bar_minutes" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- CLI overrides


@pytest.mark.parametrize("extra", [["--seed", "-1"], ["--symbols", ""], ["--symbols", ","],
                                   ["--symbols", "BTCUSDT,BTCUSDT"], ["--symbols", "BTCUSDT,btcusdt "]])
def test_cli_overrides_are_validated(tmp_path, monkeypatch, capsys, extra):
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "execution.backtest." in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("extra", [["--bar-seconds", "0"], ["--bar-seconds", "-1"], ["--bar-seconds", "x"]])
def test_bar_seconds_below_one_is_a_usage_error_before_any_run(tmp_path, monkeypatch, capsys, extra):
    """--bar-seconds 0 ran the whole engine and then divided by zero; -1 wrote an empty report."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["backtest", "--data", "l1", "--out", str(tmp_path / "r"), *extra])
    assert e.value.code == 2 and "--bar-seconds" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_symbols_with_the_capture_data_is_refused(tmp_path, monkeypatch, capsys):
    """The L1/L2 data is the one BTCUSDT capture: --symbols ETHUSDT was ignored and the report
    claimed ETHUSDT."""
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", "--data", "l1", "--symbols", "ETHUSDT", "--out", str(tmp_path / "r")]) == 2
    assert "--symbols applies to --data bars" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_scan_universe_may_not_repeat_a_symbol():
    with pytest.raises(ConfigError, match=r"scan_universe.*ETHUSDT listed more than once"):
        load_config(environ={}, overrides={"execution": {"backtest": {"scan_universe": ["ETHUSDT", "BTCUSDT", "ETHUSDT"]}}})


# --------------------------------------------------------------------------- live gate


def _good_hell(h, cfg=None):
    from dolphin.execution.live_gate import code_fingerprint, hell_data_fingerprint

    fp = hell_data_fingerprint(cfg if cfg is not None else load_config(environ={}))
    return {"config_hash": h, "data_fingerprint": fp, "code_fingerprint": code_fingerprint(), "runs": [
        {"scenario": "nominal", "ruin": False, "final_equity": 99_000.0, "max_drawdown": 0.02, "signals": "oracle",
         "trades": 12},
        {"scenario": "hell", "ruin": False, "final_equity": 98_000.0, "max_drawdown": 0.03, "signals": "oracle",
         "trades": 9},
    ]}  # fmt: skip


def _gate(cfg, tmp_path, doc, raw: str | None = None):
    h, p = hell_report_path(cfg, tmp_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(raw if raw is not None else json.dumps(doc))
    return check_live_allowed(cfg, reports_dir=tmp_path)


def test_gate_accepts_a_valid_hell_report(cfg, tmp_path):
    h, _ = hell_report_path(cfg, tmp_path)
    g = _gate(cfg, tmp_path, _good_hell(h))
    assert g.allowed, g.reason


@pytest.mark.parametrize(
    "change, why",
    [
        ({"ruin": None}, "ruin"),
        ({"ruin": 0}, "ruin"),
        ({"ruin": "false"}, "ruin"),
        ({"final_equity": math.nan}, "final equity"),
        ({"final_equity": None, "nonfinite": {"final_equity": "nan"}}, "final equity"),
        ({"final_equity": 0.0}, "final equity"),
        ({"max_drawdown": math.inf}, "max drawdown"),
        ({"max_drawdown": None}, "max drawdown"),
        ({"signals": "none: dolphin.scan.sonar is not available"}, "signals"),
        ({"trades": 0}, "trades"),
    ],
)
def test_gate_refuses_a_hell_run_that_shows_nothing(cfg, tmp_path, change, why):
    h, _ = hell_report_path(cfg, tmp_path)
    doc = _good_hell(h)
    doc["runs"][1].update(change)
    g = _gate(cfg, tmp_path, doc)
    assert not g.allowed
    assert why in g.reason and "dolphin backtest --scenario hell" in g.reason


@pytest.mark.parametrize("key, value", [("hell_entry_fill_frac", 1.0), ("hell_exit_fill_frac", 0.36),
                                        ("ruin_drawdown_frac", 1.0)])
def test_gate_refuses_a_configuration_whose_hell_is_milder_than_the_issue_s(tmp_path, key, value):
    """Found in review: with both HELL fractions at 1.0 the "HELL" run was the nominal one and the
    gate passed it. A configuration may be harsher than 48 % / 35 % fills and a 50 % ruin line, never
    milder; a report whose recorded fractions are not the configuration's is refused too."""
    milder = load_config(environ={}, overrides={"execution": {"backtest": {key: value}}})
    h, _ = hell_report_path(milder, tmp_path)
    g = _gate(milder, tmp_path, _good_hell(h, milder))
    assert not g.allowed and key in g.reason and "dolphin backtest --scenario hell" in g.reason
    harsher = load_config(environ={}, overrides={"execution": {"backtest": {"hell_entry_fill_frac": 0.3}}})
    h, _ = hell_report_path(harsher, tmp_path)
    assert _gate(harsher, tmp_path, _good_hell(h, harsher)).allowed
    doc = _good_hell(h, harsher)
    doc["runs"][1]["hell_fill_draws"] = {"entry_frac": 0.48, "exit_frac": 0.35}
    g = _gate(harsher, tmp_path, doc)
    assert not g.allowed and "fill fractions" in g.reason


@pytest.mark.parametrize("raw", ["[1, 2]", '"hell"', "null", '{"runs": 3}', '{"runs": [1]}'])
def test_gate_refuses_a_document_that_is_not_a_report_without_crashing(cfg, tmp_path, raw):
    g = _gate(cfg, tmp_path, None, raw=raw)
    assert not g.allowed and "dolphin backtest --scenario hell" in g.reason


@pytest.mark.parametrize("key, fp, why", [
    ("data_fingerprint", None, "records no data fingerprint"), ("data_fingerprint", "0" * 16, "made on other data"),
    # review 2026-12-06: a report of earlier code stayed valid after the code changed
    ("code_fingerprint", None, "records no code fingerprint"), ("code_fingerprint", "0" * 16, "made by other code"),
])  # fmt: skip
def test_gate_refuses_a_report_made_on_other_data_or_by_other_code(cfg, tmp_path, key, fp, why):
    h, _ = hell_report_path(cfg, tmp_path)
    doc = _good_hell(h, cfg)
    if fp is None:
        del doc[key]
    else:
        doc[key] = fp
    g = _gate(cfg, tmp_path, doc)
    assert not g.allowed and why in g.reason and "dolphin backtest --scenario hell" in g.reason


def test_the_code_fingerprint_follows_the_package_sources(tmp_path, monkeypatch):
    import dolphin
    from dolphin.execution import live_gate

    before = live_gate.code_fingerprint()
    assert live_gate.code_fingerprint() == before
    fake = tmp_path / "dolphin"
    fake.mkdir()
    (fake / "__init__.py").write_text("x = 1\n")
    monkeypatch.setattr(dolphin, "__file__", str(fake / "__init__.py"))
    one = live_gate.code_fingerprint()
    (fake / "__init__.py").write_text("x = 2\n")
    assert one != before and live_gate.code_fingerprint() != one


def test_gate_checks_the_drawdown_itself_not_only_the_ruin_flag(cfg, tmp_path):
    """Review 2026-12-06: an edited report with "ruin": false passed whatever its drawdown said."""
    h, _ = hell_report_path(cfg, tmp_path)
    doc = _good_hell(h, cfg)
    doc["runs"][1]["max_drawdown"] = cfg.execution.backtest.ruin_drawdown_frac
    g = _gate(cfg, tmp_path, doc)
    assert not g.allowed and "reaches the ruin threshold" in g.reason


def test_gate_refuses_a_catalog_without_bar_data(tmp_path):
    from dolphin.execution.live_gate import NO_DATA, hell_data_fingerprint

    empty = load_config(environ={"DOLPHIN__DATA__CATALOG_DIR": str(tmp_path / "none")})
    assert hell_data_fingerprint(empty) == NO_DATA
    h, _ = hell_report_path(empty, tmp_path)
    g = _gate(empty, tmp_path, _good_hell(h, empty))  # a report "made" on no data
    assert not g.allowed and "no bars_5m data" in g.reason
    assert not (tmp_path / "none").exists()  # the gate only reads


def test_gate_names_an_unreadable_catalog_instead_of_raising(tmp_path):
    import shutil

    from dolphin.runtime.wiring import catalog_lock, catalog_path, ensure_catalog

    base = load_config(environ={})
    with catalog_lock(base):
        ensure_catalog(base)
        shutil.copytree(catalog_path(base) / "bars_5m" / "BINANCE_USDM" / "BTCUSDT", tmp_path / "cat" / "bars_5m"
                        / "BINANCE_USDM" / "BTCUSDT")  # fmt: skip
    cfg = load_config(environ={"DOLPHIN__DATA__CATALOG_DIR": str(tmp_path / "cat")})
    h, _ = hell_report_path(cfg, tmp_path)
    doc = _good_hell(h, cfg)
    day = sorted((tmp_path / "cat" / "bars_5m" / "BINANCE_USDM" / "BTCUSDT").iterdir())[0]
    day.unlink()
    day.mkdir()  # a directory where a day file was: reading it fails
    g = _gate(cfg, tmp_path, doc)
    assert not g.allowed and "cannot be read" in g.reason


def test_the_refusal_names_environment_overrides_that_shape_the_hash(cfg, tmp_path):
    from dolphin.execution.live_gate import check_live_allowed

    g = check_live_allowed(cfg, reports_dir=tmp_path, environ={"DOLPHIN__EXECUTION__BACKTEST__SEED": "7", "HOME": "/"})
    assert not g.allowed and "DOLPHIN__EXECUTION__BACKTEST__SEED" in g.reason and "HOME" not in g.reason


def test_the_reports_dir_is_relative_to_the_repo_like_every_other_path(tmp_path, monkeypatch):
    """Review 2026-12-06: a relative reports_dir was taken from the current directory, so the gate
    looked for the report elsewhere when run from another folder."""
    from dolphin.core.paths import repo_root

    c = load_config(environ={}, overrides={"execution": {"backtest": {"reports_dir": "rl_reports"}}})
    monkeypatch.chdir(tmp_path)
    h, path = hell_report_path(c)
    assert path == repo_root() / "rl_reports" / "hell" / f"{h}.json"


def test_gate_refuses_two_hell_runs(cfg, tmp_path):
    h, _ = hell_report_path(cfg, tmp_path)
    doc = _good_hell(h)
    doc["runs"].append(dict(doc["runs"][1], ruin=True))
    assert not _gate(cfg, tmp_path, doc).allowed


def _hell_cli_refuses(tmp_path, monkeypatch, capsys, why: str) -> Path:
    """Run `dolphin backtest --scenario hell` on BTCUSDT: it exits non-zero saying ``why`` and
    writes no gate report; the report folder."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r"
    rc = main(["backtest", "--scenario", "hell", "--symbols", "BTCUSDT", "--out", str(out)])
    assert rc != 0
    assert why in capsys.readouterr().err
    assert not (out / "hell").exists()
    return out


def test_hell_run_without_a_trade_exits_non_zero_and_writes_no_gate_report(tmp_path, monkeypatch, capsys):
    """Signals but no trade (a threshold nothing reaches): before, the gate report was written and
    the CLI exited 0, yet the gate refuses it; now the CLI says so and writes none."""
    monkeypatch.setenv("DOLPHIN__ALPHA__SIGNAL__SHORT_THRESHOLD", "-50.0")
    _hell_cli_refuses(tmp_path, monkeypatch, capsys, "made no trade")


def test_hell_run_without_signals_exits_non_zero_and_writes_no_gate_report(tmp_path, monkeypatch, capsys):
    # The scanner cannot be imported (e.g. a broken kernels build): signals are "none: ...".
    monkeypatch.setitem(sys.modules, "dolphin.scan.sonar", None)
    out = _hell_cli_refuses(tmp_path, monkeypatch, capsys, "no signals")
    c = load_config(environ={}, overrides={"execution": {"backtest": {"symbols": ["BTCUSDT"]}}})
    assert not check_live_allowed(c, reports_dir=Path(out)).allowed
