from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError
from dolphin.data.ingest import check_file, ingest_file
from dolphin.data.schema import BARS


def test_round_trip_is_bit_identical(shared_data: Path, catalog: Catalog) -> None:
    for rel in ("binance_usdm_1m_2023-07/ETHUSDT.csv.gz", "binance_spot_1m_2021-04/BTTUSDT.csv.gz"):
        parsed, per = check_file(shared_data / rel)
        (dataset, accepted, _, _), = per.values()
        sym = Path(rel).name.split(".")[0]
        venue = "BINANCE_USDM" if "usdm" in rel else "BINANCE_SPOT"
        res = catalog.write(dataset, venue, sym, accepted)
        assert res.rows_written == accepted.num_rows
        back = catalog.read(dataset, venue, sym)
        assert back.equals(accepted.drop_columns(["_line"]))
        assert back.schema.equals(BARS)


def test_partitioned_by_dataset_venue_symbol_date(sample_data: Path, catalog: Catalog, tmp_path: Path) -> None:
    ingest_file(catalog, sample_data / "binance_usdm_5m_2023-07" / "BTCUSDT.csv.gz", quarantine_dir=tmp_path / "q")
    files = catalog.files("bars_5m", "BINANCE_USDM", "BTCUSDT")
    assert [f.stem for f in files][:2] == ["2023-07-04", "2023-07-05"]
    for f in files:
        ts = pq.read_table(f).column("ts_ns").to_numpy()
        day = np.datetime64(f.stem).astype("datetime64[ns]").astype(np.int64)
        assert ts.min() >= day and ts.max() < day + 86_400 * 10**9
        assert np.all(np.diff(ts) > 0)


def test_reingest_is_idempotent_and_accounts_every_row(sample_data: Path, catalog: Catalog, tmp_path: Path) -> None:
    src = sample_data / "binance_usdm_1m_2023-07" / "ZECUSDT.csv.gz"
    first = ingest_file(catalog, src, quarantine_dir=tmp_path / "q")
    second = ingest_file(catalog, src, quarantine_dir=tmp_path / "q")
    assert first.rows_written == first.rows_total > 20_000
    assert second.rows_written == 0 and second.rows_already_present == first.rows_total
    assert catalog.read("bars_1m", "BINANCE_USDM", "ZECUSDT").num_rows == first.rows_total


def test_conflicting_reingest_is_quarantined_not_overwritten(sample_data: Path, catalog: Catalog, tmp_path: Path) -> None:
    import gzip

    src = sample_data / "binance_usdm_1m_2023-07" / "ZECUSDT.csv.gz"
    ingest_file(catalog, src, quarantine_dir=tmp_path / "q")
    lines = gzip.decompress(src.read_bytes()).decode().splitlines()
    parts = lines[50].split(",")
    parts[5] = "123456.0"  # same bar, other volume
    lines[50] = ",".join(parts)
    altered = tmp_path / "alt" / "ZECUSDT.csv"
    altered.parent.mkdir()
    altered.write_text("\n".join(lines) + "\n")
    rep = ingest_file(catalog, altered, quarantine_dir=tmp_path / "q", venue="BINANCE_USDM")
    assert rep.reasons == {"conflicts_with_catalog": 1}
    assert rep.rows_already_present == rep.rows_total - 1
    q = pq.read_table(rep.quarantine_file).to_pylist()
    assert q[0]["line"] == 51 and q[0]["reason"] == "conflicts_with_catalog"
    stored = catalog.read("bars_1m", "BINANCE_USDM", "ZECUSDT").column("volume").to_pylist()
    assert str(stored[49]).rstrip("0").rstrip(".") != "123456"


def test_quarantine_file_holds_reason_line_and_raw(shared_data: Path, catalog: Catalog, tmp_path: Path) -> None:
    rep = ingest_file(catalog, shared_data / "fixtures_nautilus" / "btcusdt-depth-update.csv", quarantine_dir=tmp_path / "q")
    rows = pq.read_table(rep.quarantine_file).to_pylist()
    assert len(rows) == rep.rows_quarantined == rep.reasons["duplicate"]
    assert all(r["reason"] == "duplicate" and r["line"] > 1 and r["raw"] for r in rows)
    assert rep.rows_written + rep.rows_quarantined == rep.rows_total


def test_range_reads_are_half_open(perp_catalog: Catalog) -> None:
    full = perp_catalog.read("bars_5m", "BINANCE_USDM", "ETHUSDT")
    ts = full.column("ts_ns").to_numpy()
    a, b = int(ts[100]), int(ts[400])
    part = perp_catalog.read("bars_5m", "BINANCE_USDM", "ETHUSDT", a, b)
    assert part.num_rows == 300
    assert part.column("ts_ns")[0].as_py() == a and part.column("ts_ns")[-1].as_py() < b
    with pytest.raises(CatalogError):
        perp_catalog.read("bars_5m", "BINANCE_USDM", "ETHUSDT", b, a)


def test_bad_names_and_schemas_are_refused(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="symbol"):
        catalog.write("bars_1m", "BINANCE_USDM", "../etc", BARS.empty_table())
    with pytest.raises(CatalogError, match="schema"):
        catalog.write("bars_1m", "BINANCE_USDM", "BTCUSDT", pa.table({"ts_ns": [1]}))
    with pytest.raises(ValueError, match="unknown dataset"):
        catalog.read("nonsense", "X", "Y")


def test_listing_and_partitions(perp_catalog: Catalog) -> None:
    assert perp_catalog.datasets() == ["bars_1m", "bars_5m", "funding"]
    assert len(perp_catalog.symbols("bars_5m", "BINANCE_USDM")) == 30
    parts = [p for p in perp_catalog.partitions() if p.dataset == "bars_5m" and p.symbol == "BTCUSDT"]
    assert sum(p.rows for p in parts) == perp_catalog.read("bars_5m", "BINANCE_USDM", "BTCUSDT").num_rows
    assert all(p.first_ns <= p.last_ns for p in parts)


def test_every_shared_source_file_ingests_with_every_row_accounted(shared_data: Path, catalog: Catalog, tmp_path: Path) -> None:
    from dolphin.data.ingest import ingest_paths

    reports = ingest_paths(catalog, [shared_data], quarantine_dir=tmp_path / "q")
    assert len(reports) >= 100
    assert [r.error for r in reports if r.error] == []
    for r in reports:
        assert r.rows_total == r.rows_written + r.rows_already_present + r.rows_quarantined, r.source
    assert {"bars_1m", "bars_5m", "depth", "trades", "quotes", "funding"} <= set(catalog.datasets())


def test_catalog_of_ingests_once_and_ensure_sample_is_idempotent(sample_data: Path, tmp_path: Path) -> None:
    from dolphin.data.sample import catalog_of, ensure_sample

    src = sample_data / "binance_usdm_1m_2023-07"
    a = catalog_of(src, tmp_path / "cache")
    marker = next((tmp_path / "cache").glob("*/.ingested"))
    stamp = marker.stat().st_mtime_ns
    b = catalog_of(src, tmp_path / "cache")
    assert a.root == b.root and marker.stat().st_mtime_ns == stamp
    assert len(b.symbols("bars_1m", "BINANCE_USDM")) == 9

    cat = Catalog(tmp_path / "sample")
    first = ensure_sample(cat, tmp_path / "q")
    again = ensure_sample(cat, tmp_path / "q")
    assert sum(r.rows_written for r in first) > 0 and sum(r.rows_written for r in again) == 0
    assert all(r.ok for r in first + again)
