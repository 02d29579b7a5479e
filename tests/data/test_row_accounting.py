"""Review 2026-12-06: rows that were lost, stored twice or failed a whole file. Each test holds
the promise ``rows_total == accepted + quarantined``, with a per-row reason for the bad row only.

Inputs are the real files in ../shared/data; the altered cells are labelled GENERATED."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from _data_support import rebased_nautilus_fixture

from dolphin.data.catalog import Catalog
from dolphin.data.ingest import check_file, ingest_file
from dolphin.data.parse import parse_bytes

FIXTURES = "fixtures_nautilus"


def _accounted(rep) -> bool:
    return rep.ok and rep.rows_total == rep.rows_accepted + rep.rows_quarantined


def _quarantined(rep) -> list[dict]:
    return pq.read_table(rep.quarantine_file).to_pylist() if rep.quarantine_file else []


def _set_cell(line: str, col: int, value: str) -> str:
    cells = line.split(",")
    cells[col] = value
    return ",".join(cells)


# ------------------------------------------------------------------ 1. decimals beyond the fast casts


def test_one_value_beyond_decimal128_rejects_only_its_row(shared_data: Path, tmp_path: Path) -> None:
    """One value that fits neither decimal128(38,18) nor (38,24) sent the whole column through
    Python's 28-digit context, where every value of 1e10 or more failed: valid rows were
    quarantined as ``|value| >= 1e20``."""
    lines = gzip.decompress((shared_data / "binance_spot_1m_2021-04" / "BTTUSDT.csv.gz").read_bytes()).decode()
    lines = lines.splitlines()[:301]
    lines[10] = _set_cell(lines[10], 5, "25000000000")  # GENERATED: a 2.5e10 volume (PEPE-sized), valid
    lines[11] = _set_cell(lines[11], 5, "31000000000.5")  # GENERATED: valid
    lines[12] = _set_cell(lines[12], 5, "1e21")  # GENERATED: out of decimal128(38,18) range
    src = tmp_path / "BTTUSDT-1m-2021-04-02.csv"
    src.write_text("\n".join(lines) + "\n")
    cat = Catalog(tmp_path / "c", fsync=False)
    rep = ingest_file(cat, src, quarantine_dir=tmp_path / "q")
    assert _accounted(rep) and rep.rows_written == 299 and rep.reasons == {"unparseable": 1}
    (q,) = _quarantined(rep)
    assert q["line"] == 13 and "1e21" in q["detail"]
    stored = cat.read("bars_1m", rep.venue, "BTTUSDT").column("volume").to_pylist()
    expected = [Decimal(ln.split(",")[5]) for i, ln in enumerate(lines[1:], start=1) if i != 12]
    assert stored == expected  # the values as written (1e21 aside), 2.5e10 included


def test_percent_values_of_1e10_and_more_are_converted_not_a_file_failure(shared_data: Path, tmp_path: Path) -> None:
    """The percent -> fraction step quantized at Python's default 28 digits: a value of 1e12 percent
    raised InvalidOperation and the whole file failed."""
    src = shared_data / "btc_derivs" / "binance_btcusdt_funding_8h_pct.csv"
    lines = src.read_text().splitlines()
    lines[5] = _set_cell(lines[5], 1, "1000000000000")  # GENERATED: 1e12 percent
    alt = tmp_path / "binance_btcusdt_funding_8h_pct.csv"
    alt.write_text("\n".join(lines) + "\n")
    cat = Catalog(tmp_path / "c", fsync=False)
    rep = ingest_file(cat, alt, quarantine_dir=tmp_path / "q")
    assert _accounted(rep) and rep.rows_quarantined == 0 and rep.rows_written == len(lines) - 1
    ref, ref_per = check_file(src)
    (_, ref_rows, _, _), = ref_per.values()
    ref_by_ts = dict(zip(ref_rows.column("ts_ns").to_pylist(), ref_rows.column("funding_rate").to_pylist()))
    got = cat.read("funding", rep.venue, "BTCUSDT")
    changed_ts = int(lines[5].split(",")[0]) * 1_000_000
    for ts, rate in zip(got.column("ts_ns").to_pylist(), got.column("funding_rate").to_pylist()):
        assert rate == (Decimal(10) ** 10 if ts == changed_ts else ref_by_ts[ts])


def test_a_value_that_rounds_up_to_1e20_is_one_rejected_row() -> None:
    data = (b"open_time_ms,open,high,low,close,volume\n"  # GENERATED
            b"1723075200000,1,1,1,1,1e25\n"
            b"1723075260000,1,1,1,1,99999999999999999999.9999999999999999995\n"
            b"1723075320000,1,1,1,1,99999999999999999999.999999999999999999\n"
            b"1723075380000,1,1,1,1,12345678901.0000000000000000001\n")  # fmt: skip
    parsed = parse_bytes(data, "PEPEUSDT-1m-2024-08-08.csv")
    assert parsed.rejects.counts() == {"unparseable": 2}
    assert sorted(int(x) for xs in parsed.rejects.lines for x in xs) == [2, 3]
    (table,) = parsed.tables.values()
    assert table.column("volume").to_pylist() == [Decimal("99999999999999999999.999999999999999999"),
                                                   Decimal("12345678901")]  # fmt: skip
    assert parsed.rounded_values == 1


# ------------------------------------------------------------------ 2. rows without a symbol


def _depth_snapshot_without_some_symbols(shared_data: Path, out: Path) -> tuple[Path, list[int]]:
    lines = (shared_data / FIXTURES / "btcusdt-depth-snap.csv").read_text().splitlines()
    blank = {3: "", 6: "-/-", 9: " "}  # GENERATED: 1-based line -> symbol cell (empty, punctuation, blank)
    for lineno, value in blank.items():
        lines[lineno - 1] = _set_cell(lines[lineno - 1], 0, value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out, sorted(blank)


def test_rows_without_a_symbol_are_quarantined_not_filed_under_the_file_name(shared_data: Path, tmp_path: Path) -> None:
    """An empty symbol fell back to the file name's symbol, and that table overwrote the real
    BTCUSDT rows' table: rows were neither stored nor quarantined."""
    src, blank = _depth_snapshot_without_some_symbols(shared_data, tmp_path / "a" / "BTCUSDT-depth-2022-11-01.csv")
    cat = Catalog(tmp_path / "c", fsync=False)
    rep = ingest_file(cat, src, quarantine_dir=tmp_path / "q", venue="BINANCE_USDM")
    assert _accounted(rep) and rep.rows_total == 100
    assert rep.rows_written == 97 and rep.reasons == {"unparseable": 3}
    q = _quarantined(rep)
    assert [x["line"] for x in q] == blank and all("empty symbol" in x["detail"] for x in q)
    assert cat.read("depth", "BINANCE_USDM", "BTCUSDT").num_rows == 97


def test_a_symbol_column_never_needs_the_file_name(shared_data: Path, tmp_path: Path) -> None:
    """With no symbol in the file name the whole file failed (the fallback was tried)."""
    src, blank = _depth_snapshot_without_some_symbols(shared_data, tmp_path / "a" / "depth_capture_2022-11-01.csv")
    rep = ingest_file(Catalog(tmp_path / "c", fsync=False), src, quarantine_dir=tmp_path / "q", venue="BINANCE_USDM")
    assert _accounted(rep) and rep.rows_written == 97 and rep.datasets == {"depth": ["BTCUSDT"]}
    assert [x["line"] for x in _quarantined(rep)] == blank


# ------------------------------------------------------------------ 3. duplicate keys with nulls


def test_identical_quotes_without_update_id_are_one_duplicate(shared_data: Path, tmp_path: Path) -> None:
    """NautilusTrader quote files have no update id (null): the null became NaN in the key and
    NaN != NaN, so the same quote twice was stored twice."""
    src = rebased_nautilus_fixture(shared_data, "binance_btcusdt_quotes_2021-01-08.csv", tmp_path / "fx")
    lines = src.read_text().splitlines()
    lines.insert(21, lines[20])  # GENERATED: line 21 repeated as line 22
    src.write_text("\n".join(lines) + "\n")
    cat = Catalog(tmp_path / "c", fsync=False)
    rep = ingest_file(cat, src, quarantine_dir=tmp_path / "q")
    assert _accounted(rep) and rep.rows_total == 452
    assert rep.rows_written == 451 and rep.reasons == {"duplicate": 1}
    assert [x["line"] for x in _quarantined(rep)] == [22]
    stored = cat.read("quotes", rep.venue, "BTCUSDT")
    assert stored.num_rows == 451 and stored.column("update_id").null_count == 451


# ------------------------------------------------------------------ 6. integers with a plus sign


def test_integers_with_a_plus_sign_parse_like_the_plain_ones(shared_data: Path, tmp_path: Path) -> None:
    """``+2`` passed the integer rule but not Arrow's cast: the whole file failed, with no line."""
    trades = rebased_nautilus_fixture(shared_data, "binance_btcusdt_trades_2021-01-08.csv", tmp_path / "fx")
    depth = shared_data / FIXTURES / "btcusdt-depth-update.csv"
    for src, edits in ((trades, {4: (1, "+"), 5: (0, "+")}), (depth, {3: (8, "+"), 4: (2, "+")})):
        lines = src.read_text().splitlines()
        for i, (col, sign) in edits.items():  # GENERATED: a plus sign before an id, a time, a pu
            lines[i] = _set_cell(lines[i], col, sign + lines[i].split(",")[col])
        plain = parse_bytes(src.read_bytes(), src.name)
        signed = parse_bytes(("\n".join(lines) + "\n").encode(), src.name)
        assert signed.rejects.counts() == plain.rejects.counts()
        assert signed.tables.keys() == plain.tables.keys()
        for sym in plain.tables:
            assert signed.tables[sym].equals(plain.tables[sym])


# ------------------------------------------------------------------ 7. receive times


def test_receive_time_overflow_or_implausible_is_quarantined(shared_data: Path, tmp_path: Path) -> None:
    """A Tardis ``local_timestamp`` of 99999999999999999 us wrapped around int64 to year 2216 and
    was stored; a far-future one was stored too. They get the checks ``timestamp`` gets."""
    lines = (shared_data / FIXTURES / "deribit_incremental_book_L2_BTC-PERPETUAL.csv").read_text().splitlines()
    lines[2] = _set_cell(lines[2], 3, "99999999999999999")  # GENERATED: overflows int64 as ns
    lines[4] = _set_cell(lines[4], 3, "5000000000000000")  # GENERATED: 2128-06-11
    src = tmp_path / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    src.write_text("\n".join(lines) + "\n")
    rep = ingest_file(Catalog(tmp_path / "c", fsync=False), src, quarantine_dir=tmp_path / "q")
    assert _accounted(rep) and rep.rows_total == 15 and rep.rows_written == 13
    assert rep.reasons == {"unparseable_timestamp": 1, "implausible_timestamp": 1}
    q = {x["line"]: x for x in _quarantined(rep)}
    assert q[3]["reason"] == "unparseable_timestamp" and "99999999999999999" in q[3]["detail"]
    assert q[5]["reason"] == "implausible_timestamp" and q[5]["detail"].startswith("local_ts_ns=")
