"""`dolphin scan` end to end on a small copy of REAL perp bars (temporary CSV adapter)."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq

from dolphin.cli import main


def test_dolphin_scan_writes_parquet_and_png(shared_data, tmp_path, capsys) -> None:
    src = shared_data / "binance_usdm_5m_2023-07"
    data = tmp_path / "bars" / "perp5m"
    data.mkdir(parents=True)
    for name in ("BTCUSDT", "ETHUSDT", "ADAUSDT", "DOGEUSDT", "DOTUSDT", "AVAXUSDT", "ATOMUSDT", "TRXUSDT"):
        shutil.copy(src / f"{name}.csv.gz", data)
    cfg = tmp_path / "scan.toml"
    cfg.write_text("[scan]\nwindows = [20, 50, 100]\nvel_div_short = 20\nvel_div_long = 50\n"
                   "[scan.regime]\nstructure_window = 50\n")
    out = tmp_path / "out"
    rc = main(["-c", str(cfg), "scan", "--input", str(tmp_path / "bars"), "--out", str(out), "--limit", "400",
               "--no-progress"])
    assert rc == 0
    table = pq.read_table(out / "scan_perp5m.parquet")
    assert table.num_rows == 400
    assert {"lambda_max_w20", "entropy_w100", "vel_div", "regime"} <= set(table.column_names)
    png = out / "scan_perp5m.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "missing bars" in printed and "ATTACK" in printed


def test_dolphin_scan_missing_folder_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["scan", "--input", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "not found" in capsys.readouterr().out
