"""`dolphin run` on the shipped sample: the main job end to end, twice (idempotent)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dolphin.core.config import load_config
from dolphin.runtime.main_job import run_main_job


def test_main_job_ingests_the_sample_and_is_idempotent(tmp_path: Path) -> None:
    cfg = load_config(environ={}, overrides={
        "data": {"catalog_dir": str(tmp_path / "catalog"), "quarantine_dir": str(tmp_path / "q")},
        "execution": {"backtest": {"nautilus_dir": str(tmp_path / "var" / "nautilus-bt")}},
    })  # fmt: skip
    console = Console(record=True, width=160)
    assert run_main_job(cfg, console, out_dir=tmp_path / "var") == 0
    first = console.export_text()
    assert "quarantined: 0" in first and "written: 0 " not in first
    assert (tmp_path / "var" / "reports" / "catalog.png").stat().st_size > 10_000
    # the bars go where the backtest reads them (execution.backtest.nautilus_dir), not to a var/ of its own
    assert any((tmp_path / "var" / "nautilus-bt" / "data" / "bar").iterdir())
    assert not (tmp_path / "var" / "nautilus").exists()
    assert (tmp_path / "var" / "scan" / "scan_BINANCE_USDM_5m.parquet").stat().st_size > 0
    import json

    (gate,) = (tmp_path / "var" / "reports" / "hell").glob("*.json")  # the HELL report the live gate reads
    (side_by_side,) = (tmp_path / "var" / "reports").glob("hell-*.json")
    assert gate.stat().st_size > 0 and json.loads(side_by_side.read_text())
    console2 = Console(record=True, width=160)
    assert run_main_job(cfg, console2, out_dir=tmp_path / "var") == 0
    second = console2.export_text()
    assert "written: 0 " in second and "up to date" in second
