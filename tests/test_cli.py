"""The `dolphin` command end to end (in-process, real files)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dolphin.cli import main


def test_config_error_is_exit_2_with_a_message(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[data]\nrow_group_size = 3\n")
    assert main(["-c", str(cfg), "data", "inspect"]) == 2
    err = capsys.readouterr().err
    assert "data.row_group_size" in err and "3" in err


def test_validate_flags_a_bad_real_file(shared_data: Path, tmp_path: Path, capsys) -> None:
    lines = gzip.decompress((shared_data / "binance_usdm_1m_2023-07" / "EOSUSDT.csv.gz").read_bytes()).decode().splitlines()
    lines[7] = lines[7].replace(lines[7].split(",")[4], "nan")
    bad = tmp_path / "EOSUSDT-1m.csv"
    bad.write_text("\n".join(lines) + "\n")
    good = shared_data / "binance_usdm_1m_2023-07" / "EOSUSDT.csv.gz"
    assert main(["data", "validate", str(good)]) == 0
    assert main(["data", "validate", str(bad)]) == 1
    assert "nan_or_inf=1" in capsys.readouterr().out


def test_ingest_then_inspect(sample_data: Path, tmp_path: Path, capsys) -> None:
    cat = tmp_path / "cat"
    rc = main(["data", "ingest", str(sample_data / "binance_usdm_5m_2023-07"), "--catalog", str(cat),
               "--quarantine", str(tmp_path / "q")])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "files: 30 (0 failed)" in out and "quarantined: 0" in out
    png = tmp_path / "overview.png"
    assert main(["data", "inspect", "--catalog", str(cat), "--plot", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert "bars_5m" in capsys.readouterr().out


def test_ingest_of_an_unreadable_file_fails_loudly(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "BTCUSDT.csv"
    bad.write_text("this,is,not\nmarket,data,at all\n")  # GENERATED
    assert main(["data", "ingest", str(bad), "--catalog", str(tmp_path / "c"), "--quarantine", str(tmp_path / "q")]) == 1
    assert "unrecognised header" in capsys.readouterr().out


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["data", "ingest", str(tmp_path / "nope"), "--catalog", str(tmp_path / "c")]) == 2
    assert "no such file" in capsys.readouterr().out


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "data" in out and "run" in out


def test_5s_bars_from_the_real_capture_trades_align_with_a_mask(sample_data: Path, tmp_path: Path, capsys) -> None:
    import numpy as np

    from dolphin.data.align import align_bars
    from dolphin.data.catalog import Catalog

    cat = tmp_path / "cat"
    src = sample_data / "l2_binance_2024-08-08" / "binance_spot_btcusdt_20240808.gz"
    assert main(["data", "ingest", str(src), "--catalog", str(cat), "--quarantine", str(tmp_path / "q")]) == 0
    assert main(["data", "bars", "--venue", "BINANCE_SPOT", "--bar", "5s", "--catalog", str(cat)]) == 0
    c = Catalog(cat)
    trades = c.read("trades", "BINANCE_SPOT", "BTCUSDT")
    bars = c.read("bars_5s", "BINANCE_SPOT", "BTCUSDT")
    assert int(np.sum(bars.column("trade_count").to_numpy())) == trades.num_rows
    t0, t1 = bars.column("ts_ns")[0].as_py(), bars.column("ts_ns")[-1].as_py() + 5 * 10**9
    a = align_bars(c, "BINANCE_SPOT", ["BTCUSDT"], t0, t1, "5s")
    assert a.mask.sum() == bars.num_rows and a.shape[1] == (t1 - t0) // (5 * 10**9)
    assert np.isnan(a.close[~a.mask]).all()


@pytest.mark.parametrize("exc, code, kind", [("catalog", 1, "data error"), ("config", 2, "configuration error")])
def test_domain_errors_while_a_command_runs_are_one_line(monkeypatch, capsys, exc, code, kind) -> None:
    import dolphin.research.commands as rc
    from dolphin.core.config import ConfigError
    from dolphin.data.errors import CatalogError

    def boom(cfg, args):
        raise CatalogError("no bars_5m for BINANCE_USDM/NOPEUSDT") if exc == "catalog" else ConfigError("bad key")

    monkeypatch.setattr(rc, "_backtest", boom)
    assert main(["backtest"]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"dolphin: {kind}: ") and err.count("\n") == 1 and "Traceback" not in err
