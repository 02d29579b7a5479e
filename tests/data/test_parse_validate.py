"""Parser and validation rules, on real files, real files altered on purpose, and small
hand-written malformed inputs (labelled GENERATED where the data is not from a real source)."""

from __future__ import annotations

import gzip
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from _data_support import rebased_nautilus_fixture

from dolphin.data.errors import DataFormatError, UnknownColumnsError
from dolphin.data.ingest import check_file
from dolphin.data.parse import parse_bytes, parse_file
from dolphin.data.validate import REASONS, validate_table

MIN_NS = 60_000_000_000


def _lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode().splitlines()


def _check_bytes(data: bytes, name: str = "x-1m-2024-01-01.csv", bar_ns: int | None = MIN_NS):
    parsed = parse_bytes(data, name)
    out = {}
    for sym, table in parsed.tables.items():
        out[sym] = validate_table(table, parsed.fmt.kind, parsed.rejects, bar_ns=bar_ns)
    return parsed, out


def _accounted(parsed, out) -> None:
    accepted = sum(t.num_rows for t, _ in out.values())
    assert accepted + len(parsed.rejects) == parsed.rows_total


# ------------------------------------------------------------------- real files


@pytest.mark.parametrize(
    "rel, fmt, kind",
    [
        ("binance_usdm_5m_2023-07/BTCUSDT.csv.gz", "ohlcv_ms", "bars"),
        ("binance_usdm_1m_2023-07/ETHUSDT.csv.gz", "ohlcv_ms", "bars"),
        ("binance_spot_1m_2021-04/BTTUSDT.csv.gz", "ohlcv_ms", "bars"),
        ("binance_usdm_funding_8h_2023-07.csv.gz", "funding_long", "funding"),
        ("btc_derivs/binance_btcusdt_funding_8h_pct.csv", "funding_pct", "funding"),
        ("btc_derivs/deribit_dvol_btc_daily.csv", "daily_series", "series"),
        ("fixtures_nautilus/btcusdt-depth-snap.csv", "binance_depth", "depth"),
        ("fixtures_nautilus/btcusdt-depth-update.csv", "binance_depth", "depth"),
        ("fixtures_nautilus/binance_btcusdt_trades_2021-01-08.csv", "nautilus_trades", "trades"),
        ("fixtures_nautilus/binance_btcusdt_quotes_2021-01-08.csv", "nautilus_quotes", "quotes"),
        ("fixtures_nautilus/bitmex_trades_XBTUSD.csv", "tardis_trades", "trades"),
        ("fixtures_nautilus/deribit_incremental_book_L2_BTC-PERPETUAL.csv", "tardis_incremental_l2", "depth"),
    ],
)
def test_real_files_parse_and_every_line_is_accounted_for(shared_data: Path, rel: str, fmt: str, kind: str) -> None:
    path = shared_data / rel
    parsed = parse_file(path)
    assert parsed.fmt.name == fmt and parsed.fmt.kind == kind
    assert parsed.rows_total == len(_lines(path)) - 1  # minus the header
    out = {s: validate_table(t, kind, parsed.rejects, bar_ns=MIN_NS if kind == "bars" and "1m" in rel else None)
           for s, t in parsed.tables.items()}  # fmt: skip
    _accounted(parsed, out)


def test_real_bar_values_are_exact_decimals(shared_data: Path) -> None:
    path = shared_data / "binance_usdm_5m_2023-07" / "DOGEUSDT.csv.gz"
    parsed = parse_file(path)
    table = parsed.tables[None]
    first = _lines(path)[1].split(",")
    row = table.slice(0, 1).to_pylist()[0]
    assert row["ts_ns"] == int(first[0]) * 1_000_000
    assert row["open"] == Decimal(first[1]) and row["close"] == Decimal(first[4])
    assert row["volume"] == Decimal(first[5])
    assert table.schema.field("open").type == pa.decimal128(38, 18)


def test_real_depth_update_fixture_holds_a_repeated_message_which_is_quarantined(shared_data: Path) -> None:
    # The NautilusTrader fixture repeats lines 2.. of one message further down: real duplicates.
    parsed, out = check_file(shared_data / "fixtures_nautilus" / "btcusdt-depth-update.csv")
    counts = parsed.rejects.counts()
    assert set(counts) == {"duplicate"} and counts["duplicate"] > 0
    assert sum(v[1].num_rows for v in out.values()) + counts["duplicate"] == parsed.rows_total


def test_real_percent_funding_is_converted_to_a_fraction(shared_data: Path) -> None:
    parsed = parse_file(shared_data / "btc_derivs" / "binance_btcusdt_funding_8h_pct.csv")
    # README: 2023-07-05 reads 0.01 (percent) here and 0.0001 in the fraction file.
    t = parsed.tables[None]
    ts = t.column("ts_ns").to_numpy()
    day = np.datetime64("2023-07-05").astype("datetime64[ns]").astype(np.int64)
    sel = (ts >= day) & (ts < day + 86_400 * 10**9)
    rates = [t.column("funding_rate")[int(i)].as_py() for i in np.flatnonzero(sel)]
    assert Decimal("0.0001") in rates


# ------------------------------------------------------------ real files altered


def _altered(shared_data: Path, tmp_path: Path, edit) -> Path:
    src = shared_data / "binance_usdm_1m_2023-07" / "LTCUSDT.csv.gz"
    lines = _lines(src)
    lines = edit(lines)
    out = tmp_path / "LTCUSDT-1m-2023-07.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize(
    "reason, edit",
    [
        ("nan_or_inf", lambda ls: ls[:10] + [ls[10].replace(ls[10].split(",")[4], "NaN", 1)] + ls[11:]),
        ("nan_or_inf", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:2] + ["inf"] + ls[10].split(",")[3:])] + ls[11:]),
        ("unparseable", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:1] + ["12.5x"] + ls[10].split(",")[2:])] + ls[11:]),
        ("non_positive_price", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:1] + ["0"] + ls[10].split(",")[2:])] + ls[11:]),
        ("non_positive_price", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:3] + ["-1.5"] + ls[10].split(",")[4:])] + ls[11:]),
        ("negative_volume", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:5] + ["-3.0"])] + ls[11:]),
        ("inconsistent_ohlc", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:2] + ["0.0001"] + ls[10].split(",")[3:])] + ls[11:]),
        ("duplicate", lambda ls: ls[:11] + [ls[10]] + ls[11:]),
        ("duplicate_conflict", lambda ls: ls[:11] + [",".join(ls[10].split(",")[:5] + ["999999.0"])] + ls[11:]),
        ("implausible_timestamp", lambda ls: ls[:10] + [ls[10].replace(ls[10].split(",")[0], "-60000", 1)] + ls[11:]),
        ("misaligned_bar", lambda ls: ls[:10] + [ls[10].replace(ls[10].split(",")[0], str(int(ls[10].split(",")[0]) + 1), 1)] + ls[11:]),
        ("column_count", lambda ls: ls[:10] + [",".join(ls[10].split(",")[:4])] + ls[11:]),
        ("empty_line", lambda ls: ls[:10] + [""] + ls[10:]),
        ("unparseable_timestamp", lambda ls: ls[:10] + ["2023-07-04 00:00," + ",".join(ls[10].split(",")[1:])] + ls[11:]),
    ],
)
def test_each_rule_quarantines_exactly_the_altered_row(shared_data, tmp_path, reason, edit) -> None:
    path = _altered(shared_data, tmp_path, edit)
    parsed, out = check_file(path)
    counts = parsed.rejects.counts()
    assert counts == {reason: 1}, counts
    _accounted_rows = sum(v[1].num_rows for v in out.values()) + len(parsed.rejects)
    assert _accounted_rows == parsed.rows_total
    q = parsed.rejects.to_table(str(path)).to_pylist()[0]
    assert q["reason"] == reason and q["line"] >= 2 and q["source"] == str(path)


def test_gap_is_reported_not_filled_and_rows_kept(shared_data, tmp_path) -> None:
    path = _altered(shared_data, tmp_path, lambda ls: ls[:100] + ls[107:])
    parsed, out = check_file(path)
    (dataset, accepted, gaps, bar_ns), = out.values()
    assert dataset == "bars_1m" and bar_ns == MIN_NS
    assert len(parsed.rejects) == 0
    assert len(gaps) == 1 and gaps[0].missing == 7
    assert gaps[0].before_ns - gaps[0].after_ns == 8 * MIN_NS


def test_rule_codes_are_documented() -> None:
    import dolphin.data.validate as v

    for reason in REASONS:
        assert f"``{reason}``" in (v.__doc__ or "") or reason in (
            "column_count", "empty_line", "unparseable", "unparseable_timestamp", "nan_or_inf")  # fmt: skip


# --------------------------------------------------- crossed books (real fixtures altered)


def test_crossed_quote_is_quarantined(shared_data, tmp_path) -> None:
    src = rebased_nautilus_fixture(shared_data, "binance_btcusdt_quotes_2021-01-08.csv", tmp_path / "fixed")
    lines = _lines(src)
    ts, sym, ask_size, ask, bid_size, bid = lines[5].split(",")
    lines[5] = ",".join([ts, sym, ask_size, ask, bid_size, str(Decimal(ask) + 1)])  # bid above ask
    out = tmp_path / "quotes.csv"
    out.write_text("\n".join(lines) + "\n")
    parsed, res = check_file(out)
    assert parsed.rejects.counts() == {"crossed_book": 1}
    assert parsed.rejects.to_table("q").column("line").to_pylist() == [6]


def test_crossed_depth_snapshot_level_is_quarantined(shared_data, tmp_path) -> None:
    # The real snapshot fixture holds the top 100 bid levels; turning the second-best bid into
    # an ask crosses the book: the best bid now sits above the best ask and is quarantined.
    src = shared_data / "fixtures_nautilus" / "btcusdt-depth-snap.csv"
    lines = _lines(src)
    bids = sorted(((Decimal(ln.split(",")[6]), i) for i, ln in enumerate(lines) if i and ln.split(",")[4] == "b"),
                  reverse=True)  # fmt: skip
    (best_px, best_i), (_, second_i) = bids[0], bids[1]
    parts = lines[second_i].split(",")
    parts[4] = "a"
    lines[second_i] = ",".join(parts)
    out = tmp_path / "depth.csv"
    out.write_text("\n".join(lines) + "\n")
    parsed, _ = check_file(out)
    assert parsed.rejects.counts() == {"crossed_book": 1}
    assert parsed.rejects.to_table("d").column("line").to_pylist() == [best_i + 1]


# ------------------------------------------------------------ file-level errors


def test_unknown_columns_name_the_file_and_columns(tmp_path) -> None:
    p = tmp_path / "BTCUSDT.csv"
    p.write_text("open_time_ms,open,high,low,close,volume,colour\n1,2,3,1,2,5,red\n")  # GENERATED
    with pytest.raises(UnknownColumnsError) as exc:
        parse_file(p)
    assert "colour" in str(exc.value) and str(p) in str(exc.value) and "line 1" in str(exc.value)


def test_unrecognised_header_is_a_clear_error(tmp_path) -> None:
    p = tmp_path / "thing.csv"
    p.write_text("foo,bar\nx,y\n")  # GENERATED
    with pytest.raises(DataFormatError, match=r"thing\.csv, line 1: unrecognised header"):
        parse_file(p)


def test_corrupt_gzip_names_the_file(shared_data, tmp_path) -> None:
    raw = (shared_data / "binance_usdm_5m_2023-07" / "BTCUSDT.csv.gz").read_bytes()
    p = tmp_path / "BTCUSDT.csv.gz"
    p.write_bytes(raw[: len(raw) // 2])  # a real file cut in half
    with pytest.raises(DataFormatError, match=r"BTCUSDT\.csv\.gz.*corrupt gzip"):
        parse_file(p)


def test_binary_file_is_a_clear_error(tmp_path) -> None:
    p = tmp_path / "BTCUSDT-1m-2024-01-01.csv"
    p.write_bytes(b"\xff\xfe\x00\x81garbage\n")  # GENERATED
    with pytest.raises(DataFormatError, match="line 1"):
        parse_file(p)


def test_header_only_file_is_a_clear_error(tmp_path) -> None:
    p = tmp_path / "BTCUSDT.csv"
    p.write_text("open_time_ms,open,high,low,close,volume\n")
    with pytest.raises(DataFormatError, match="no data rows"):
        parse_file(p)


def test_zip_without_csv_is_a_clear_error(tmp_path) -> None:
    p = tmp_path / "two.zip"
    with zipfile.ZipFile(p, "w") as zf:  # GENERATED
        zf.writestr("a.txt", "x")
        zf.writestr("b.txt", "y")
    with pytest.raises(DataFormatError, match="no .csv member"):
        parse_file(p)


def test_bybit_orderbook_json_lines(shared_data) -> None:
    path = shared_data / "fixtures_nautilus" / "xrpusdt-ob500.data.zip"
    parsed, out = check_file(path)
    assert parsed.fmt.name == "bybit_orderbook_json"
    (ds, table, gaps, _), = out.values()
    assert ds == "depth" and list(out) == ["XRPUSDT"] and gaps == []
    import json

    msgs = [json.loads(x) for x in zipfile.ZipFile(path).read(zipfile.ZipFile(path).namelist()[0]).decode().splitlines()]
    levels = sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in msgs)
    assert table.num_rows + len(parsed.rejects) == levels == parsed.rows_total
    snap = table.filter(table.column("is_snapshot"))
    assert snap.num_rows == len(msgs[0]["data"]["b"]) + len(msgs[0]["data"]["a"])


def test_bybit_broken_line_is_one_rejected_row(shared_data, tmp_path) -> None:
    src = shared_data / "fixtures_nautilus" / "xrpusdt-ob500.data.zip"
    lines = zipfile.ZipFile(src).read(zipfile.ZipFile(src).namelist()[0]).decode().splitlines()
    lines[3] = lines[3][: len(lines[3]) // 2]  # a real message cut in half
    p = tmp_path / "xrpusdt-ob500.data"
    p.write_text("\n".join(lines) + "\n")
    parsed, out = check_file(p)
    assert parsed.rejects.counts() == {"unparseable": 1}
    assert parsed.rejects.to_table("b").column("line").to_pylist() == [4]
    (_, table, gaps, _), = out.values()
    assert len(gaps) == 1  # the lost message breaks the update-id chain, and that is reported


def test_tardis_book_snapshot_is_reshaped_to_levels(shared_data) -> None:
    path = shared_data / "fixtures_nautilus" / "binance-futures_book_snapshot_25_BTCUSDT.csv"
    parsed, out = check_file(path)
    assert parsed.fmt.name == "tardis_book_snapshot"
    (ds, table, _, _), = out.values()
    assert ds == "depth" and table.num_rows == 10 * 50 and len(parsed.rejects) == 0
    first = _lines(path)[1].split(",")
    header = _lines(path)[0].split(",")
    row0 = table.slice(0, 50).to_pylist()
    best_ask = Decimal(first[header.index("asks[0].price")])
    assert min(r["price"] for r in row0 if not r["is_bid"]) == best_ask


# ------------------------------------------------ Binance public formats (kline zip etc.)


def _binance_kline_lines(shared_data: Path, unit: int = 1) -> list[str]:
    """Real 1m perp bars rewritten in Binance's public kline layout (12 columns, no header)."""
    rows = _lines(shared_data / "binance_usdm_1m_2023-07" / "XMRUSDT.csv.gz")[1:200]
    out = []
    for r in rows:
        t, o, h, lo, c, v = r.split(",")
        ot = int(t) * unit
        out.append(f"{ot},{o},{h},{lo},{c},{v},{ot + 59_999 * unit},0,0,0,0,0")
    return out


def test_binance_kline_zip_headerless(shared_data, tmp_path) -> None:
    lines = _binance_kline_lines(shared_data)
    p = tmp_path / "XMRUSDT-1m-2023-07-04.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("XMRUSDT-1m-2023-07-04.csv", "\n".join(lines) + "\n")
    parsed, out = check_file(p)
    assert parsed.fmt.name == "binance_kline" and parsed.ts_unit == "ms"
    (ds, accepted, gaps, _), = out.values()
    assert ds == "bars_1m" and accepted.num_rows == len(lines) and list(out) == ["XMRUSDT"]


def test_binance_kline_microsecond_timestamps(shared_data, tmp_path) -> None:
    # Binance spot files switched to microseconds in 2025: same data, other unit, same ns.
    ms = _binance_kline_lines(shared_data, 1)
    us = _binance_kline_lines(shared_data, 1000)
    a, b = tmp_path / "XMRUSDT-1m-2023-07-04.csv", tmp_path / "us" / "XMRUSDT-1m-2023-07-04.csv"
    b.parent.mkdir()
    a.write_text("\n".join(ms) + "\n")
    b.write_text("\n".join(us) + "\n")
    pa_, pb = parse_file(a), parse_file(b)
    assert pb.ts_unit == "us"
    assert pa_.tables[None].column("ts_ns").equals(pb.tables[None].column("ts_ns"))


def test_binance_trades_and_aggtrades(shared_data, tmp_path) -> None:
    rows = _lines(rebased_nautilus_fixture(shared_data, "binance_btcusdt_trades_2021-01-08.csv", tmp_path / "fixed"))[1:]
    trades = [f"{tid},{p},{q},0,{ts},{m.lower()}" for ts, tid, p, q, m in (r.split(",") for r in rows)]
    t1 = tmp_path / "BTCUSDT-trades-2021-01-08.csv"
    t1.write_text("id,price,qty,quote_qty,time,is_buyer_maker\n" + "\n".join(trades) + "\n")
    agg = [f"{tid},{p},{q},{tid},{tid},{ts},{m},True" for ts, tid, p, q, m in (r.split(",") for r in rows)]
    t2 = tmp_path / "BTCUSDT-aggTrades-2021-01-08.csv"
    t2.write_text("\n".join(agg) + "\n")
    for path, fmt in ((t1, "binance_trades"), (t2, "binance_aggtrades")):
        parsed, out = check_file(path)
        assert parsed.fmt.name == fmt
        (ds, accepted, _, _), = out.values()
        assert ds == "trades" and accepted.num_rows == len(rows)
        assert accepted.column("buyer_is_maker").to_pylist() == [r.split(",")[4] == "True" for r in rows]
