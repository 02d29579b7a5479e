"""`dolphin scan` end to end on REAL perp bars read from the catalog."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from dolphin.cli import main
from dolphin.data.catalog import Catalog
from dolphin.data.ingest import ingest_paths

SYMBOLS = ("BTCUSDT", "ETHUSDT", "ADAUSDT", "DOGEUSDT", "DOTUSDT", "AVAXUSDT", "ATOMUSDT", "TRXUSDT")


def test_dolphin_scan_writes_parquet_and_png(sample_data, tmp_path, capsys) -> None:
    cat = Catalog(tmp_path / "catalog")
    src = sample_data / "binance_usdm_5m_2023-07"
    reports = ingest_paths(cat, [src / f"{s}.csv.gz" for s in SYMBOLS], quarantine_dir=tmp_path / "q")
    assert all(r.ok for r in reports)
    cfg = tmp_path / "scan.toml"
    cfg.write_text("[scan]\nwindows = [20, 50, 100]\nvel_div_short = 20\nvel_div_long = 50\n"
                   "[scan.regime]\nstructure_window = 50\n")
    out = tmp_path / "out"
    rc = main(["-c", str(cfg), "scan", "--catalog", str(cat.root), "--bar", "5m", "--out", str(out),
               "--limit", "400", "--no-progress"])  # fmt: skip
    assert rc == 0
    table = pq.read_table(out / "scan_BINANCE_USDM_5m.parquet")
    assert table.num_rows == 400
    assert {"lambda_max_w20", "entropy_w100", "vel_div", "regime"} <= set(table.column_names)
    png = out / "scan_BINANCE_USDM_5m.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "scanned 400 bars x 8 assets" in printed and "missing bars" in printed and "ATTACK" in printed
    # the numerics are visible too: scheduled and drift re-anchors, exact checks, solver events
    assert "numerics: re-anchors " in printed and "after a large return left a window" in printed
    assert "spectrum_warm" in printed  # the full scan's warm-started spectra, counted


def test_dolphin_scan_bad_inputs_are_clear_errors(sample_data, tmp_path, capsys) -> None:
    cat = Catalog(tmp_path / "catalog")
    ingest_paths(cat, [sample_data / "binance_usdm_5m_2023-07" / "BTCUSDT.csv.gz"], quarantine_dir=tmp_path / "q")
    assert main(["scan", "--catalog", str(cat.root), "--bar", "1m", "--no-progress"]) == 2
    assert "no bars for venue BINANCE_USDM" in capsys.readouterr().out
    assert main(["scan", "--catalog", str(cat.root), "--start", "yesterday", "--no-progress"]) == 2
    assert "bad time" in capsys.readouterr().out
    # Review 2026-12-06: epoch numbers were read as years (1715; then 8.7 GiB asked for), an empty
    # string as NaT; an unknown symbol made a scan of VETO; a venue typo merged the whole shipped
    # sample into this (non-empty) catalog; --limit 0 crashed or reported an earlier run's file.
    for bad in ("1688428800", "1688428800000", "", "1999-01-01"):
        assert main(["scan", "--catalog", str(cat.root), "--start", bad, "--no-progress"]) == 2
        assert "bad time" in capsys.readouterr().out
    assert main(["scan", "--catalog", str(cat.root), "--symbol", "BTCUSDT", "--symbol", "NOPEUSDT", "--no-progress"]) == 2
    assert "['NOPEUSDT']" in capsys.readouterr().out
    assert main(["scan", "--catalog", str(cat.root), "--venue", "BINANCE_USDMM", "--no-progress"]) == 2
    assert cat.datasets() == ["bars_5m"] and cat.venues("bars_5m") == ["BINANCE_USDM"]  # nothing ingested
    for limit in ("0", "-1"):
        with pytest.raises(SystemExit) as exc:
            main(["scan", "--catalog", str(cat.root), "--limit", limit, "--no-progress"])
        assert exc.value.code == 2


def test_a_scan_ends_at_the_last_stored_bar_also_when_finer_bars_are_aggregated(sample_data, tmp_path) -> None:
    """5-minute scan of BTCUSDT (5m) and DASHUSDT (stored at 1m only). Review 2026-12-06: the end
    was the last 1-minute bar's open + 5 minutes, one scan bar past the data with no real bar."""
    from dolphin.scan.source import CatalogSource

    cat = Catalog(tmp_path / "catalog")
    reports = ingest_paths(cat, [sample_data / "binance_usdm_5m_2023-07" / "BTCUSDT.csv.gz",
                                 sample_data / "binance_usdm_1m_2023-07" / "DASHUSDT.csv.gz"],
                           quarantine_dir=tmp_path / "q")  # fmt: skip
    assert all(r.ok for r in reports)
    bars = CatalogSource(cat, "BINANCE_USDM", "5m").load()
    assert bars.mask[-1].any()  # the last scan bar holds data
    last = max(int(cat.read(d, "BINANCE_USDM", s)["ts_ns"][-1].as_py())
               for d, s in (("bars_5m", "BTCUSDT"), ("bars_1m", "DASHUSDT")))  # fmt: skip
    assert int(bars.ts_ms[-1]) * 1_000_000 <= last < int(bars.ts_ms[-1]) * 1_000_000 + 300 * 10**9


def test_scan_with_workers_through_the_grid_equals_the_in_process_scan(sample_data, tmp_path) -> None:
    """`dolphin scan --workers 2`: returns computed by 2 worker processes, written to the
    shared-memory grid and read back, give the same scan as the in-process path."""
    import numpy as np

    cat = Catalog(tmp_path / "catalog")
    src = sample_data / "binance_usdm_5m_2023-07"
    ingest_paths(cat, [src / f"{s}.csv.gz" for s in SYMBOLS], quarantine_dir=tmp_path / "q")
    cfg = tmp_path / "scan.toml"
    cfg.write_text("[scan]\nwindows = [20, 50, 100]\nvel_div_short = 20\nvel_div_long = 50\n"
                   "[scan.regime]\nstructure_window = 50\n")
    outs = {}
    for k in (0, 2):
        out = tmp_path / f"out{k}"
        rc = main(["-c", str(cfg), "scan", "--catalog", str(cat.root), "--bar", "5m", "--out", str(out),
                   "--limit", "300", "--no-progress", "--workers", str(k)])  # fmt: skip
        assert rc == 0
        outs[k] = pq.read_table(out / "scan_BINANCE_USDM_5m.parquet")
    a, b = outs[0], outs[2]
    assert a.column("regime").to_pylist() == b.column("regime").to_pylist()
    for col in ("lambda_max_w20", "lambda_max_w100", "vel_div"):
        x, y = a.column(col).to_numpy(zero_copy_only=False), b.column(col).to_numpy(zero_copy_only=False)
        assert np.array_equal(np.isnan(x), np.isnan(y))
        np.testing.assert_allclose(x[~np.isnan(x)], y[~np.isnan(y)], rtol=1e-9)
