"""Bad input gets a clear error and loses nothing: truncated captures, integers beyond int64,
implausible timestamps, file order, re-ingest quarantine, corrupt partitions, venue hints.

Inputs are the real files in ../shared/data, cut or altered on purpose; the few hand-written
lines are labelled GENERATED."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dolphin.data.binance_capture import CaptureFormatError, CaptureReader, CaptureTruncatedError, iter_capture
from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError, DataFormatError
from dolphin.data.formats import FORMATS, venue_from_path
from dolphin.data.ingest import check_file, check_source, ingest_file, ingest_paths

SPOT_CAPTURE = "l2_binance_2024-08-08/binance_spot_btcusdt_20240808.gz"
HEADER = "open_time_ms,open,high,low,close,volume"


def _gz_lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).split(b"\n")


def _truncated_capture(shared_data: Path, out: Path, n_lines: int = 3000) -> tuple[Path, int]:
    """The first ``n_lines`` of the real spot capture, gzip-compressed and cut at 2/3 of its bytes."""
    head = b"\n".join(_gz_lines(shared_data / SPOT_CAPTURE)[:n_lines]) + b"\n"
    comp = gzip.compress(head)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(comp[: len(comp) * 2 // 3])
    return out, n_lines


def _bars_file(shared_data: Path, out: Path, edit) -> tuple[Path, list[str]]:
    src = shared_data / "binance_usdm_1m_2023-07" / "LTCUSDT.csv.gz"
    lines = gzip.decompress(src.read_bytes()).decode().splitlines()
    lines = edit(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out, lines


# ------------------------------------------------------------------ 1. truncated capture


def test_truncated_capture_raises_a_data_format_error_naming_file_and_last_line(shared_data, tmp_path) -> None:
    path, _ = _truncated_capture(shared_data, tmp_path / "cut_spot_btcusdt.gz")
    seen = []
    with pytest.raises(CaptureTruncatedError) as info:
        for msg in iter_capture(path):
            seen.append(msg.line_no)
    err = info.value
    assert isinstance(err, DataFormatError) and isinstance(err, CaptureFormatError)
    assert str(path) in str(err) and f"after line {seen[-1]}" in str(err)
    assert seen == list(range(1, len(seen) + 1)) and len(seen) > 100  # the lines before the cut were read

    reader = CaptureReader(path, on_error="skip")
    assert sum(1 for _ in reader) == len(seen)
    assert reader.truncated and reader.n_errors == 1 and reader.errors[0].line_no == seen[-1] + 1


def test_truncated_capture_keeps_rows_before_the_cut_and_the_batch_goes_on(shared_data, tmp_path) -> None:
    folder = tmp_path / "in"
    cut, _ = _truncated_capture(shared_data, folder / "a_cut_spot_btcusdt.gz")
    good = folder / "b_good_spot_btcusdt.gz"
    good.write_bytes(gzip.compress(b"\n".join(_gz_lines(shared_data / SPOT_CAPTURE)[:200]) + b"\n"))
    cat = Catalog(tmp_path / "c")
    reps = ingest_paths(cat, [folder], quarantine_dir=tmp_path / "q")
    assert [Path(r.source).name for r in reps] == [cut.name, good.name]
    r = reps[0]
    assert r.ok and r.reasons.get("truncated") == 1 and r.rows_written > 1000
    assert r.rows_total == r.rows_written + r.rows_already_present + r.rows_quarantined
    q = pq.read_table(r.quarantine_file).to_pylist()
    assert [x["reason"] for x in q] == ["truncated"] and "truncated" in q[0]["detail"]
    assert reps[1].ok and reps[1].rows_total == reps[1].rows_written + reps[1].rows_already_present


def test_unexpected_error_in_one_file_is_reported_and_the_batch_goes_on(sample_data, tmp_path, monkeypatch) -> None:
    folder = sample_data / "binance_usdm_5m_2023-07"
    files = sorted(folder.glob("*.csv.gz"))[:3]
    cat = Catalog(tmp_path / "c")
    real_write = Catalog.write

    def flaky(self, dataset, venue, symbol, table):
        if symbol == files[1].name.split(".")[0]:
            raise RuntimeError("disk on fire")
        return real_write(self, dataset, venue, symbol, table)

    monkeypatch.setattr(Catalog, "write", flaky)
    reps = ingest_paths(cat, files, quarantine_dir=tmp_path / "q")
    assert [r.ok for r in reps] == [True, False, True]
    assert str(files[1]) in reps[1].error and "RuntimeError" in reps[1].error and "disk on fire" in reps[1].error
    assert reps[2].rows_written > 0


def test_cli_ingest_exits_non_zero_for_a_truncated_capture(shared_data, tmp_path, capsys) -> None:
    from dolphin.cli import main

    cut, _ = _truncated_capture(shared_data, tmp_path / "in" / "cut_spot_btcusdt.gz")
    rc = main(["data", "ingest", str(cut), "--catalog", str(tmp_path / "c"), "--quarantine", str(tmp_path / "q")])
    assert rc == 1
    out = capsys.readouterr().out
    assert "1 failed" in out and "truncated" in out


# ------------------------------------------------------------------ 2. integers beyond int64


def test_integers_beyond_int64_are_unparseable_rows_not_a_crash(shared_data, tmp_path) -> None:
    big = "99999999999999999999"
    path, _ = _bars_file(shared_data, tmp_path / "LTCUSDT-1m-2023-07.csv",
                         lambda ls: ls[:10] + [big + "," + ls[10].split(",", 1)[1]] + ls[11:])  # fmt: skip
    parsed, out = check_file(path)
    assert parsed.rejects.counts() == {"unparseable_timestamp": 1}
    # int64's own limits still parse; one past them does not (GENERATED ids on real trade rows).
    src = shared_data / "fixtures_nautilus" / "binance_btcusdt_trades_2021-01-08.csv"
    rows = src.read_text().splitlines()[1:4]
    ids = ["9223372036854775807", "9223372036854775808", "-9223372036854775809"]
    lines = [f"{int(r.split(',')[0]) * 1_000_000},{i},{r.split(',', 2)[2]}" for r, i in zip(rows, ids)]
    t = tmp_path / "binance_btcusdt_trades_2021-01-08.csv"
    t.write_text("ts_ms,trade_id,price,quantity,buyer_maker\n" + "\n".join(lines) + "\n")
    parsed, out = check_file(t)
    assert parsed.rejects.counts() == {"unparseable": 2}
    (_, accepted, _, _), = out.values()
    assert accepted.column("trade_id").to_pylist() == [9223372036854775807]


def test_depth_pu_beyond_int64_or_garbage_is_unparseable(shared_data, tmp_path) -> None:
    lines = (shared_data / "fixtures_nautilus" / "btcusdt-depth-update.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",99999999999999999999"
    lines[5] = lines[5].rsplit(",", 1)[0] + ",garbage"
    lines[7] = lines[7].rsplit(",", 1)[0] + ","  # empty: "no pu", accepted
    path = tmp_path / "btcusdt-depth-update.csv"
    path.write_text("\n".join(lines) + "\n")
    parsed, _ = check_file(path)
    q = parsed.rejects.to_table("x").to_pylist()
    assert sorted((x["line"], x["reason"]) for x in q if x["reason"] == "unparseable") == [(4, "unparseable"),
                                                                                          (6, "unparseable")]


# ------------------------------------------------------------------ 3. order and one bad row


def test_one_far_future_row_does_not_quarantine_the_rows_after_it(shared_data, tmp_path) -> None:
    future = "1933000020000,1,1,1,1,1"  # GENERATED: a 2031 typo
    path, lines = _bars_file(shared_data, tmp_path / "LTCUSDT-1m-2023-07.csv", lambda ls: ls[:3] + [future] + ls[3:])
    parsed, out = check_file(path)
    assert parsed.rejects.counts() == {"implausible_timestamp": 1}
    (_, accepted, _, _), = out.values()
    assert accepted.num_rows == len(lines) - 2


def test_a_newest_first_file_is_stored_whole_and_sorted(shared_data, tmp_path) -> None:
    path, lines = _bars_file(shared_data, tmp_path / "LTCUSDT-1m-2023-07.csv", lambda ls: ls[:1] + ls[:0:-1])
    parsed, out = check_file(path)
    assert len(parsed.rejects) == 0
    (_, accepted, gaps, _), = out.values()
    ts = accepted.column("ts_ns").to_numpy()
    assert accepted.num_rows == len(lines) - 1 and np.all(np.diff(ts) > 0)
    ordered, _ = _bars_file(shared_data, tmp_path / "o" / "LTCUSDT-1m-2023-07.csv", lambda ls: ls)
    _, out2 = check_file(ordered)
    (_, acc2, gaps2, _), = out2.values()
    assert accepted.drop_columns(["_line"]).equals(acc2.drop_columns(["_line"])) and gaps == gaps2


def test_depth_keeps_its_update_id_sequence_check(shared_data, tmp_path) -> None:
    lines = (shared_data / "fixtures_nautilus" / "btcusdt-depth-snap.csv").read_text().splitlines()
    head = lines[0]
    upd = (shared_data / "fixtures_nautilus" / "btcusdt-depth-update.csv").read_text().splitlines()
    first = upd[1].split(",")
    later = first[:2] + ["2098041696701", "2098041696800"] + first[4:8] + ["2098041696700"]
    earlier = first[:2] + ["2098041690000", "2098041690001"] + first[4:8] + ["2098041689999"]
    path = tmp_path / "btcusdt-depth-update.csv"
    path.write_text("\n".join([head, upd[1], ",".join(later), ",".join(earlier)]) + "\n")
    parsed, _ = check_file(path)
    assert parsed.rejects.counts() == {"out_of_order": 1}
    assert parsed.rejects.to_table("x").column("line").to_pylist() == [4]


def test_trade_times_that_contradict_the_trade_id_sequence_are_out_of_order(tmp_path) -> None:
    """Sorting trades by time must not hide a time that runs against the venue's own trade-id
    sequence (the first sorting version accepted both files whole, ids [1, 3, 2, 4])."""
    cases = {
        "ts_back": ([(1610064000000, 1), (1610064005000, 2), (1610064001000, 3), (1610064006000, 4)], [1, 3, 4]),
        "id_back": ([(1610064000000, 10), (1610064001000, 11), (1610064002000, 5), (1610064003000, 12)], [10, 11, 12]),
    }
    for name, (rows, kept) in cases.items():
        p = tmp_path / f"binance_btcusdt_trades_{name}.csv"
        p.write_text("ts_ms,trade_id,price,quantity,buyer_maker\n" + "".join(f"{t},{i},39432.48,0.1,True\n" for t, i in rows))
        parsed, out = check_file(p)
        ((_, acc, _, _),) = out.values()
        assert parsed.rejects.counts() == {"out_of_order": 1}, name
        assert acc.column("trade_id").to_pylist() == kept, name


# ------------------------------------------------------------------ 4. implausible timestamps


def test_negative_and_seconds_as_ms_timestamps_are_implausible(shared_data, tmp_path) -> None:
    path, _ = _bars_file(shared_data, tmp_path / "LTCUSDT-1m-2023-07.csv",
                         lambda ls: ls[:5] + ["-60000," + ls[5].split(",", 1)[1]] + ls[6:])  # fmt: skip
    parsed, _ = check_file(path)
    assert parsed.rejects.counts() == {"implausible_timestamp": 1}
    # The real percent-funding file with its times written in seconds instead of milliseconds.
    src = (shared_data / "btc_derivs" / "binance_btcusdt_funding_8h_pct.csv").read_text().splitlines()
    secs = [src[0]] + [f"{int(r.split(',')[0]) // 1000},{r.split(',')[1]}" for r in src[1:]]
    f = tmp_path / "f" / "binance_btcusdt_funding_8h_pct.csv"
    f.parent.mkdir()
    f.write_text("\n".join(secs) + "\n")
    rep = ingest_file(Catalog(tmp_path / "c"), f, quarantine_dir=tmp_path / "q")
    assert rep.ok and rep.rows_written == 0 and rep.reasons == {"implausible_timestamp": len(src) - 1}
    assert not (tmp_path / "c" / "funding").exists()


def _capture_with(shared_data: Path, path: Path, edits: dict[int, dict]) -> Path:
    """The first 200 lines of the real spot capture with some trade messages' fields changed."""
    lines = _gz_lines(shared_data / SPOT_CAPTURE)[:200]
    trades = [i for i, ln in enumerate(lines) if b"@trade" in ln]
    for k, change in edits.items():
        i = trades[k]
        ts, raw = lines[i].split(b" ", 1)
        obj = json.loads(raw)
        for key, v in change.items():
            if v is None:
                obj["data"].pop(key)
            else:
                obj["data"][key] = v
        lines[i] = ts + b" " + json.dumps(obj).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_trade_without_trade_time_uses_event_time_or_is_rejected(shared_data, tmp_path) -> None:
    path = _capture_with(shared_data, tmp_path / "binance_spot_btcusdt_x.gz", {0: {"T": None}, 1: {"T": None, "E": None}})
    parts = {p.fmt.kind: (p, per) for p, per in check_source(path)}
    parsed, per = parts["trades"]
    assert parsed.rejects.counts() == {"unparseable_timestamp": 1}
    (_, accepted, _, _), = per.values()
    assert accepted.column("ts_ns").to_numpy().min() > 1_700_000_000 * 10**9  # never the 1969 sentinel


def test_string_maker_flag_is_rejected_not_read_as_true(shared_data, tmp_path) -> None:
    path = _capture_with(shared_data, tmp_path / "binance_spot_btcusdt_x.gz", {0: {"m": "false"}})
    parts = {p.fmt.kind: (p, per) for p, per in check_source(path)}
    depth_rejects = parts["depth"][0].rejects.to_table("x").to_pylist()
    assert [(x["reason"], "'m'" in x["detail"]) for x in depth_rejects] == [("unparseable", True)]
    assert '"m": "false"' in depth_rejects[0]["raw"]


def test_snapshot_symbol_comes_from_the_file_name_or_is_rejected(shared_data, tmp_path) -> None:
    lines = _gz_lines(shared_data / SPOT_CAPTURE)[:200]
    snap = next(i for i, ln in enumerate(lines) if b"lastUpdateId" in ln)
    ts = lines[snap - 1].split(b" ", 1)[0]
    eth = ts + b' {"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255210,"s":"ETHUSDT",' \
                b'"U":10,"u":11,"b":[["2500.1","1"]],"a":[]}}'  # GENERATED: another symbol's diff
    mixed = lines[:snap] + [eth] + lines[snap:]
    named = tmp_path / "binance_spot_btcusdt_mixed.gz"
    named.write_bytes(gzip.compress(b"\n".join(mixed) + b"\n"))
    snaps = [m for m in iter_capture(named) if type(m).__name__ == "DepthSnapshot"]
    assert [s.symbol for s in snaps] == ["BTCUSDT"]
    anon = tmp_path / "mixed_capture.gz"
    anon.write_bytes(gzip.compress(b"\n".join(mixed) + b"\n"))
    snaps = [m for m in iter_capture(anon) if type(m).__name__ == "DepthSnapshot"]
    assert [s.symbol for s in snaps] == [""]
    parts = {p.fmt.kind: p for p, _ in check_source(anon)}
    assert parts["depth"].rejects.counts() == {"unparseable": 1}


def test_blank_capture_lines_are_counted(shared_data, tmp_path) -> None:
    lines = _gz_lines(shared_data / SPOT_CAPTURE)[:200]
    path = tmp_path / "binance_spot_btcusdt_blank.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines[:50] + [b"", b"   "] + lines[50:]) + b"\n"))
    parts = {p.fmt.kind: p for p, _ in check_source(path)}
    q = parts["depth"].rejects.to_table("x").to_pylist()
    assert [(x["line"], x["reason"]) for x in q] == [(51, "empty_line"), (52, "empty_line")]


# ------------------------------------------------------------------ 5. quarantine per run, raw text


def test_reingest_keeps_every_runs_quarantine_and_the_conflicting_values(shared_data, tmp_path) -> None:
    cat = Catalog(tmp_path / "c")
    first, _ = _bars_file(shared_data, tmp_path / "in" / "LTCUSDT-1m-2023-07.csv",
                          lambda ls: ls[:3] + ["garbage," + ls[3].split(",", 1)[1]] + ls[3:])  # fmt: skip
    r1 = ingest_file(cat, first, quarantine_dir=tmp_path / "q")
    assert r1.reasons == {"unparseable_timestamp": 1}
    _, lines = _bars_file(shared_data, tmp_path / "orig" / "x.csv", lambda ls: ls)
    parts = lines[20].split(",")
    parts[5] = "123456.0"  # same bar, other volume
    changed = ",".join(parts)
    _bars_file(shared_data, first, lambda ls: ls[:20] + [changed] + ls[21:])
    r2 = ingest_file(cat, first, quarantine_dir=tmp_path / "q")
    assert r2.reasons == {"conflicts_with_catalog": 1}
    assert r1.quarantine_file != r2.quarantine_file
    files = sorted((tmp_path / "q").iterdir())
    assert [f.name for f in files] == sorted(Path(r.quarantine_file).name for r in (r1, r2))
    assert pq.read_table(r1.quarantine_file).column("reason").to_pylist() == ["unparseable_timestamp"]
    (row,) = pq.read_table(r2.quarantine_file).to_pylist()
    assert row["raw"] == changed and row["line"] == 21


def test_a_quarantine_file_another_run_created_under_the_same_name_is_never_overwritten(
    shared_data, tmp_path, monkeypatch
) -> None:
    """Two runs that pick the same name (same source, same microsecond, another process between
    the existence check and the write) both keep their file (before: the rename replaced it)."""
    import dolphin.data.ingest as ingest_mod

    taken = tmp_path / "q" / "LTCUSDT-1m-2023-07.csv.same.parquet"
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"another run's quarantine")
    monkeypatch.setattr(ingest_mod, "_quarantine_path", lambda qdir, source: taken)
    first, _ = _bars_file(shared_data, tmp_path / "in" / "LTCUSDT-1m-2023-07.csv",
                          lambda ls: ls[:3] + ["garbage," + ls[3].split(",", 1)[1]] + ls[3:])  # fmt: skip
    r = ingest_file(Catalog(tmp_path / "c"), first, quarantine_dir=tmp_path / "q")
    assert taken.read_bytes() == b"another run's quarantine"
    assert Path(r.quarantine_file) != taken and Path(r.quarantine_file).name.startswith(taken.stem)
    assert pq.read_table(r.quarantine_file).column("reason").to_pylist() == ["unparseable_timestamp"]
    assert not [f for f in taken.parent.iterdir() if ".tmp-" in f.name]


def test_validation_rejects_keep_the_source_text(shared_data, tmp_path) -> None:
    bad = {}

    def edit(ls):
        parts = ls[10].split(",")
        parts[1] = "0"
        bad["line"] = ",".join(parts)
        return ls[:10] + [bad["line"]] + ls[11:]

    path, _ = _bars_file(shared_data, tmp_path / "LTCUSDT-1m-2023-07.csv", edit)
    parsed, _ = check_file(path)
    (row,) = parsed.rejects.to_table("x").to_pylist()
    assert row["reason"] == "non_positive_price" and row["raw"] == bad["line"]


# ------------------------------------------------------------------ 6. corrupt partitions, fsync


def test_corrupt_partition_is_a_catalog_error_naming_it(sample_data, tmp_path) -> None:
    cat = Catalog(tmp_path / "c")
    files = sorted((sample_data / "binance_usdm_5m_2023-07").glob("*.csv.gz"))[:2]
    assert all(r.ok for r in ingest_paths(cat, files, quarantine_dir=tmp_path / "q"))
    part = cat.files("bars_5m", "BINANCE_USDM", files[0].name.split(".")[0])[3]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    reps = ingest_paths(cat, files, quarantine_dir=tmp_path / "q")
    assert not reps[0].ok and str(part) in reps[0].error and "CatalogError" not in reps[0].error
    assert reps[1].ok and reps[1].rows_already_present == reps[1].rows_total
    assert part.read_bytes() == data[: len(data) // 2]  # left untouched
    with pytest.raises(CatalogError, match=str(part)):
        cat.read("bars_5m", "BINANCE_USDM", files[0].name.split(".")[0])
    with pytest.raises(CatalogError, match=str(part)):
        list(cat.partitions())


def test_partition_writes_are_fsynced_before_and_after_the_rename(sample_data, tmp_path, monkeypatch) -> None:
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    cat = Catalog(tmp_path / "c")
    src = sample_data / "binance_usdm_5m_2023-07" / "ADAUSDT.csv.gz"
    rep = ingest_file(cat, src, quarantine_dir=tmp_path / "q")
    parts = cat.files("bars_5m", "BINANCE_USDM", "ADAUSDT")
    assert rep.ok and parts
    folder = str(parts[0].parent)
    assert any(".tmp-" in s for s in synced) and folder in synced


# ------------------------------------------------------------------ 8. venue hints


def _fmt(name: str):
    return next(f for f in FORMATS if f.name == name)


def test_venue_comes_from_the_format_then_the_nearest_names(shared_data) -> None:
    import dataclasses

    bybit = dataclasses.replace(_fmt("binance_depth"), name="bybit_orderbook_json")
    assert venue_from_path(shared_data / "fixtures_nautilus" / "xrpusdt-ob500.data.zip", fmt=bybit) == "BYBIT"
    assert venue_from_path("/home/alice/perpetual-research/binance_spot_1m/BTCUSDT.csv") == "BINANCE_SPOT"
    assert venue_from_path(shared_data / "btc_derivs" / "binance_btcusdt_funding_8h_pct.csv",
                           fmt=_fmt("funding_pct")) == "BINANCE_USDM"  # fmt: skip
    assert venue_from_path("/d/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip") == "BINANCE_USDM"
    with pytest.raises(DataFormatError, match="conflicting venue hints"):
        venue_from_path("/d/binance_spot_usdm_BTCUSDT.csv")
    with pytest.raises(DataFormatError, match="BYBIT"):
        venue_from_path("/d/binance_usdm/xrpusdt-ob500.data.zip", fmt=bybit)


def test_every_shared_file_keeps_its_venue_except_the_two_that_were_wrong(shared_data, tmp_path) -> None:
    fixed = {"fixtures_nautilus/xrpusdt-ob500.data.zip": "BYBIT",  # was BINANCE_SPOT
             "btc_derivs/binance_btcusdt_funding_8h_pct.csv": "BINANCE_USDM"}  # was BINANCE_SPOT  # fmt: skip
    before = {"fixtures_nautilus/binance-futures_book_snapshot_25_BTCUSDT.csv": "BINANCE_USDM",
              "fixtures_nautilus/bitmex_trades_XBTUSD.csv": "BITMEX",
              "fixtures_nautilus/deribit_incremental_book_L2_BTC-PERPETUAL.csv": "DERIBIT",
              "l2_binance_2024-08-08/binance_usdm_btcusdt_20240808.gz": "BINANCE_USDM",
              "binance_usdm_funding_8h_2023-07.csv.gz": "BINANCE_USDM"}  # fmt: skip
    from dolphin.data.capture_ingest import is_capture_file
    from dolphin.data.parse import parse_file

    for f in sorted(shared_data.rglob("*")):
        rel = str(f.relative_to(shared_data))
        if not f.is_file() or f.name == "README.md" or "deribit_dvol" in rel:
            continue
        fmt = None if is_capture_file(f) else parse_file(f).fmt
        want = fixed.get(rel) or before.get(rel) or ("BINANCE_USDM" if "usdm" in rel else "BINANCE_SPOT")
        assert venue_from_path(f, fmt=fmt) == want, rel
