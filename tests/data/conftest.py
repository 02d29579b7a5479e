from __future__ import annotations

from pathlib import Path

import pytest

from dolphin.data.catalog import Catalog
from dolphin.data.ingest import ingest_paths


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "catalog")


@pytest.fixture(scope="module")
def perp_catalog(tmp_path_factory, sample_data: Path) -> Catalog:
    """The shipped real sample (USDT-M 1m + 5m bars, funding) ingested once per module."""
    root = tmp_path_factory.mktemp("perp")
    cat = Catalog(root / "catalog")
    reports = ingest_paths(
        cat,
        [sample_data / "binance_usdm_5m_2023-07", sample_data / "binance_usdm_1m_2023-07",
         sample_data / "binance_usdm_funding_8h_2023-07.csv.gz"],
        quarantine_dir=root / "q",
    )  # fmt: skip
    assert all(r.ok for r in reports)
    return cat
