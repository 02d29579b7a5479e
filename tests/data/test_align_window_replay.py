from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from _data_support import rebased_nautilus_fixture

from dolphin.data.align import align_bars, bars_from_trades
from dolphin.data.catalog import Catalog
from dolphin.data.errors import CatalogError
from dolphin.data.ingest import check_file
from dolphin.data.replay import Replay
from dolphin.data.window import BarWindow

DAY = 86_400 * 10**9
START = int(np.datetime64("2023-07-04T00:00").astype("datetime64[ns]").astype(np.int64))


def test_missing_bars_are_masked_never_filled(perp_catalog: Catalog) -> None:
    # ALGOUSDT starts 2023-07-04 12:35 in the real data; ETHUSDT at 2023-07-03 23:30.
    b = align_bars(perp_catalog, "BINANCE_USDM", ["ETHUSDT", "ALGOUSDT"], START, START + DAY, "5m")
    assert b.shape == (2, 288)
    first_algo = int(np.datetime64("2023-07-04T12:35").astype("datetime64[ns]").astype(np.int64))
    late = b.ts_ns < first_algo
    assert b.mask[0].all()
    assert not b.mask[1, late].any() and b.mask[1, ~late].all()
    assert np.isnan(b.close[1, late]).all()
    r, m = b.log_returns()
    assert np.isnan(r[~m]).all() and np.isfinite(r[m]).all()


def test_hole_in_the_middle_stays_a_hole(perp_catalog: Catalog, sample_data: Path, tmp_path: Path) -> None:
    parsed, per = check_file(sample_data / "binance_usdm_5m_2023-07" / "ETHUSDT.csv.gz")  # full day of 07-04
    (_, table, _, _), = per.values()
    ts = table.column("ts_ns").to_numpy()
    keep = ~((ts >= START + 3_600 * 10**9) & (ts < START + 2 * 3_600 * 10**9))  # drop one real hour
    cat = Catalog(tmp_path / "c")
    cat.write("bars_5m", "BINANCE_USDM", "ETHUSDT", table.filter(pa.array(keep)))
    b = align_bars(cat, "BINANCE_USDM", ["ETHUSDT"], START, START + DAY, "5m")
    assert (~b.mask[0]).sum() == 12
    assert np.isnan(b.close[0, 12:24]).all() and np.isfinite(b.close[0, 24])


def test_1m_aggregated_to_5m_equals_the_real_5m_bars(perp_catalog: Catalog) -> None:
    # ETHUSDT exists in both real sets: aggregating real 1m bars must reproduce Binance's 5m bars.
    agg = align_bars(perp_catalog, "BINANCE_USDM", ["ETHUSDT"], START, START + 2 * DAY, "5m")
    assert agg.source_datasets == ("bars_5m",)  # the coarsest matching dataset is used
    import dolphin.data.align as al

    one = Catalog(perp_catalog.root)
    # Force the 1m route by asking for 5m from a catalog view that lacks bars_5m.
    orig = al.bar_sources
    try:
        al.bar_sources = lambda c, v, ns: [(60_000_000_000, "bars_1m")]
        from_1m = align_bars(one, "BINANCE_USDM", ["ETHUSDT"], START, START + 2 * DAY, "5m")
    finally:
        al.bar_sources = orig
    both = agg.mask & from_1m.mask
    assert both.sum() > 500
    for f in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(agg, f)[both], getattr(from_1m, f)[both])
    np.testing.assert_allclose(agg.volume[both], from_1m.volume[both], rtol=1e-9)


def test_align_errors_are_clear(perp_catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="empty range"):
        align_bars(perp_catalog, "BINANCE_USDM", ["ETHUSDT"], START, START, "5m")
    with pytest.raises(CatalogError, match="no bar dataset"):
        align_bars(perp_catalog, "BINANCE_USDM", ["ETHUSDT"], START, START + DAY, "5s")
    with pytest.raises(ValueError, match="bad bar size"):
        align_bars(perp_catalog, "BINANCE_USDM", ["ETHUSDT"], START, START + DAY, "5x")


def test_bars_from_real_trades(shared_data: Path, tmp_path: Path) -> None:
    src = rebased_nautilus_fixture(shared_data, "binance_btcusdt_trades_2021-01-08.csv", tmp_path)
    parsed, per = check_file(src)
    (_, trades, _, _), = per.values()
    assert trades.num_rows == 2001 and len(parsed.rejects) == 0
    bars = bars_from_trades(trades, "5s")
    assert int(pc.sum(bars.column("trade_count")).as_py()) == trades.num_rows
    assert pc.max(bars.column("high")).as_py() == pc.max(trades.column("price")).as_py()
    assert pc.sum(bars.column("volume")).as_py() == pc.sum(trades.column("quantity")).as_py()



def _data_bars(catalog_root: Path) -> int:
    """``dolphin data bars --venue BINANCE_SPOT --bar 5s --symbol BTCUSDT --catalog <root>``."""
    import argparse

    from dolphin.core.config import DolphinConfig
    from dolphin.data.commands import _cmd_bars

    args = argparse.Namespace(catalog=str(catalog_root), venue="BINANCE_SPOT", bar="5s", symbol=["BTCUSDT"])
    return _cmd_bars(DolphinConfig(), args)


def _real_trades_split_inside_a_bar(sample_data: Path) -> tuple[pa.Table, pa.Table]:
    """The real spot capture's trades (2024-08-08, about 70 bars of 5 s) cut in two inside one bar,
    as when a capture is ingested in pieces: the second part changes that bar."""
    from dolphin.data.capture_ingest import parse_capture
    from dolphin.data.validate import validate_table

    parsed = parse_capture(sample_data / "l2_binance_2024-08-08" / "binance_spot_btcusdt_20240808.gz")["trades"]
    trades, _ = validate_table(parsed.tables["BTCUSDT"], "trades", parsed.rejects)
    assert len(parsed.rejects) == 0
    trades = trades.drop_columns(["_line"])
    bucket = trades.column("ts_ns").to_numpy() // 5_000_000_000
    cut = next(i for i in range(trades.num_rows // 2, trades.num_rows) if bucket[i] == bucket[i - 1])
    return trades.slice(0, cut), trades.slice(cut)


def test_data_bars_rebuilds_the_bars_that_later_trades_change(sample_data: Path, tmp_path: Path, capsys) -> None:
    """Found in review 2026-12-06: a bar rebuilt from more trades conflicted with the stored one
    and was dropped in silence (exit 0), so the stored bars disagreed with the stored trades."""
    first, second = _real_trades_split_inside_a_bar(sample_data)
    cat = Catalog(tmp_path / "c", fsync=False)
    cat.write("trades", "BINANCE_SPOT", "BTCUSDT", first)
    assert _data_bars(cat.root) == 0
    before = cat.read("bars_5s", "BINANCE_SPOT", "BTCUSDT")
    cat.write("trades", "BINANCE_SPOT", "BTCUSDT", second)
    assert _data_bars(cat.root) == 0
    assert "1 rebuilt" in capsys.readouterr().out
    stored = cat.read("bars_5s", "BINANCE_SPOT", "BTCUSDT")
    assert stored.equals(bars_from_trades(cat.read("trades", "BINANCE_SPOT", "BTCUSDT"), "5s"))
    assert stored.num_rows == bars_from_trades(second, "5s").num_rows + before.num_rows - 1
    assert int(pc.sum(stored.column("trade_count")).as_py()) == first.num_rows + second.num_rows


def test_data_bars_never_replaces_bars_from_another_source(sample_data: Path, tmp_path: Path, capsys) -> None:
    """Venue klines carry a quote volume; a bar built from trades does not. A stored kline that
    differs from the trades' bar is kept, counted, and the command fails (exit 1)."""
    first, second = _real_trades_split_inside_a_bar(sample_data)
    cat = Catalog(tmp_path / "c", fsync=False)
    klines = bars_from_trades(first, "5s")
    qv = klines.schema.get_field_index("quote_volume")
    klines = klines.set_column(qv, klines.schema.field(qv), klines.column("volume"))  # GENERATED: a quote volume, as klines have
    cat.write("bars_5s", "BINANCE_SPOT", "BTCUSDT", klines)
    cat.write("trades", "BINANCE_SPOT", "BTCUSDT", pa.concat_tables([first, second]))
    assert _data_bars(cat.root) == 1
    out = capsys.readouterr().out.replace("\n", " ")
    assert f"{klines.num_rows} stored bars_5s bars from another source" in out  # each differs (its quote volume at least)
    stored = cat.read("bars_5s", "BINANCE_SPOT", "BTCUSDT")
    assert stored.filter(pc.is_valid(stored.column("quote_volume"))).equals(klines)  # every kline kept as it was
    assert stored.num_rows == bars_from_trades(cat.read("trades", "BINANCE_SPOT", "BTCUSDT"), "5s").num_rows

def test_bar_window_ring(perp_catalog: Catalog) -> None:
    b = align_bars(perp_catalog, "BINANCE_USDM", ["ETHUSDT", "ALGOUSDT"], START, START + DAY, "5m")
    w = BarWindow(b.symbols, capacity=50)
    for t in range(b.shape[1]):
        w.push(int(b.ts_ns[t]), b.close[:, t], b.mask[:, t])
    ts, close, mask = w.view()
    assert len(w) == 50 and (ts == b.ts_ns[-50:]).all()
    np.testing.assert_array_equal(mask, b.mask[:, -50:])
    np.testing.assert_array_equal(close[mask], b.close[:, -50:][mask])
    batch = w.to_arrow()
    assert batch.num_rows == 50 and batch.schema.metadata[b"symbols"] == b"ETHUSDT,ALGOUSDT"
    with pytest.raises(ValueError, match="not after"):
        w.push(int(b.ts_ns[-1]), b.close[:, -1])


def test_replay_merges_streams_in_time_order(perp_catalog: Catalog) -> None:
    end = START + 3_600 * 10**9
    rp = Replay(perp_catalog, [("bars_5m", "BINANCE_USDM", "ETHUSDT"), ("bars_1m", "BINANCE_USDM", "ETHUSDT")],
                start_ns=START, end_ns=end)  # fmt: skip
    events = list(rp)
    ts = [e.ts_ns for e in events]
    assert ts == sorted(ts) and len(events) == 12 + 60
    assert {e.dataset for e in events} == {"bars_5m", "bars_1m"}


def test_replay_paces_by_speed_with_an_injected_clock(perp_catalog: Catalog) -> None:
    now = [0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += int(s * 1e9)

    rp = Replay(perp_catalog, [("bars_5m", "BINANCE_USDM", "ETHUSDT")], start_ns=START, end_ns=START + 3_600 * 10**9,
                speed=60.0, clock_ns=lambda: now[0], sleep=sleep)  # fmt: skip
    n = sum(1 for _ in rp)
    assert n == 12
    # 5 minutes of data at 60x -> 5 s of wall time between bars.
    assert slept == pytest.approx([5.0] * 11)
    fast = Replay(perp_catalog, [("bars_5m", "BINANCE_USDM", "ETHUSDT")], start_ns=START, end_ns=START + DAY,
                  speed=None, sleep=lambda s: (_ for _ in ()).throw(AssertionError("slept")))  # fmt: skip
    assert sum(1 for _ in fast) == 288
    with pytest.raises(ValueError, match="speed"):
        Replay(perp_catalog, [("bars_5m", "BINANCE_USDM", "ETHUSDT")], speed=0)
