"""NautilusTrader's own ParquetDataCatalog reads what dolphin wrote (real engine, real data)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from _data_support import rebased_nautilus_fixture

from dolphin.data.catalog import Catalog
from dolphin.data.ingest import ingest_file
from dolphin.data.nautilus import bar_type_for, decimals_needed, export_stream, nautilus_catalog


def test_bars_read_back_by_nautilus_equal_the_catalog(perp_catalog: Catalog, tmp_path: Path) -> None:
    inst, n = export_stream(perp_catalog, tmp_path / "nt", "bars_5m", "BINANCE_USDM", "DOGEUSDT")
    ours = perp_catalog.read("bars_5m", "BINANCE_USDM", "DOGEUSDT")
    assert n == ours.num_rows
    assert str(inst.id) == "DOGEUSDT-PERP.BINANCE" and inst.price_precision == 5
    nc = nautilus_catalog(tmp_path / "nt")
    bars = nc.bars(bar_types=[str(bar_type_for(inst.id, "bars_5m"))])
    assert len(bars) == ours.num_rows
    step = 300 * 10**9
    assert [b.ts_event for b in bars] == [t + step for t in ours.column("ts_ns").to_pylist()]
    for name in ("open", "high", "low", "close"):
        assert [Decimal(str(getattr(b, name))) for b in bars] == ours.column(name).to_pylist()
    assert [Decimal(str(b.volume)) for b in bars] == ours.column("volume").to_pylist()
    assert [i.id for i in nc.instruments()] == [inst.id]


def test_reexport_replaces_instead_of_appending(perp_catalog: Catalog, tmp_path: Path) -> None:
    for _ in range(2):
        inst, n = export_stream(perp_catalog, tmp_path / "nt", "bars_5m", "BINANCE_USDM", "ETHUSDT")
    bars = nautilus_catalog(tmp_path / "nt").bars(bar_types=[str(bar_type_for(inst.id, "bars_5m"))])
    assert len(bars) == n


def test_depth_snapshot_builds_the_same_book_in_nautilus(shared_data: Path, tmp_path: Path) -> None:
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.enums import BookType

    cat = Catalog(tmp_path / "c")
    rep = ingest_file(cat, shared_data / "fixtures_nautilus" / "btcusdt-depth-snap.csv", quarantine_dir=tmp_path / "q",
                      venue="BINANCE_USDM")  # fmt: skip
    assert rep.ok and rep.rows_quarantined == 0
    inst, n = export_stream(cat, tmp_path / "nt", "depth", "BINANCE_USDM", "BTCUSDT")
    deltas = nautilus_catalog(tmp_path / "nt").order_book_deltas(instrument_ids=[str(inst.id)])
    assert len(deltas) == n == rep.rows_written + 1  # CLEAR + one ADD per level
    book = OrderBook(inst.id, BookType.L2_MBP)
    for d in deltas:
        book.apply_delta(d)
    ours = cat.read("depth", "BINANCE_USDM", "BTCUSDT")
    bids = ours.filter(ours.column("is_bid"))
    assert Decimal(str(book.best_bid_price())) == pc.max(bids.column("price")).as_py()
    assert len(book.bids()) == bids.num_rows
    total = sum(Decimal(str(level.size())) for level in book.bids())
    assert total == pc.sum(bids.column("quantity")).as_py()


def test_trades_read_back_by_nautilus(shared_data: Path, tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c")
    src = rebased_nautilus_fixture(shared_data, "binance_btcusdt_trades_2021-01-08.csv", tmp_path / "fixed")
    rep = ingest_file(cat, src, quarantine_dir=tmp_path / "q")
    assert rep.ok and rep.rows_written == 2001 and rep.venue == "BINANCE_SPOT"
    inst, n = export_stream(cat, tmp_path / "nt", "trades", "BINANCE_SPOT", "BTCUSDT")
    ticks = nautilus_catalog(tmp_path / "nt").trade_ticks(instrument_ids=[str(inst.id)])
    ours = cat.read("trades", "BINANCE_SPOT", "BTCUSDT")
    assert len(ticks) == ours.num_rows
    assert sorted(int(t.trade_id.value) for t in ticks) == sorted(ours.column("trade_id").to_pylist())


def test_decimals_needed_is_exact() -> None:
    import pyarrow as pa

    col = pa.array([Decimal("1.5"), Decimal("2.25"), None], pa.decimal128(38, 18))  # GENERATED
    assert decimals_needed(col) == 2
    assert decimals_needed(pa.array([Decimal("3")], pa.decimal128(38, 18))) == 0
    assert np.isclose(float(Decimal("2.25")), 2.25)


def test_real_l2_capture_ingests_and_nautilus_rebuilds_the_oracle_book(sample_data: Path, tmp_path: Path) -> None:
    """The raw Binance capture -> catalog (depth, trades, quotes) -> NautilusTrader deltas; the
    book NautilusTrader builds equals dolphin's own BookBuilder on the same capture."""
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.enums import BookType

    from dolphin.alpha.book import BookBuilder
    from dolphin.data.binance_capture import iter_capture

    src = sample_data / "l2_binance_2024-08-08" / "binance_usdm_btcusdt_20240808.gz"
    cat = Catalog(tmp_path / "c")
    rep = ingest_file(cat, src, quarantine_dir=tmp_path / "q")
    assert rep.ok and rep.venue == "BINANCE_USDM"
    assert rep.rows_quarantined == 0 and rep.gaps == []
    assert set(rep.datasets) == {"depth", "trades", "quotes"}
    assert rep.rows_written == rep.rows_total

    inst, n = export_stream(cat, tmp_path / "nt", "depth", "BINANCE_USDM", "BTCUSDT")
    deltas = nautilus_catalog(tmp_path / "nt").order_book_deltas(instrument_ids=[str(inst.id)])
    assert len(deltas) == n
    nt_book = OrderBook(inst.id, BookType.L2_MBP)
    for d in deltas:
        nt_book.apply_delta(d)

    ours = BookBuilder()
    for msg in iter_capture(src):
        ours.on_message(msg)
    assert ours.is_synced and ours.counters.failures == 0
    grid = ours.grid
    bid_t, bid_q = ours.book.bid_levels(20)
    ask_t, ask_q = ours.book.ask_levels(20)
    nt_bids = [(Decimal(str(lv.price)), float(lv.size())) for lv in nt_book.bids()[:20]]
    nt_asks = [(Decimal(str(lv.price)), float(lv.size())) for lv in nt_book.asks()[:20]]
    assert [p for p, _ in nt_bids] == [grid.ticks_to_price(int(t)) for t in bid_t]
    assert [p for p, _ in nt_asks] == [grid.ticks_to_price(int(t)) for t in ask_t]
    assert nt_asks[0][0] > nt_bids[0][0]
    np.testing.assert_allclose([q for _, q in nt_bids], bid_q, rtol=1e-12)
    np.testing.assert_allclose([q for _, q in nt_asks], ask_q, rtol=1e-12)

    again = ingest_file(cat, src, quarantine_dir=tmp_path / "q")
    assert again.rows_written == 0 and again.rows_already_present == rep.rows_total


def test_a_stream_ingested_further_is_exported_again(perp_catalog: Catalog, tmp_path: Path) -> None:
    """Found in review: the backtest's export step skipped a stream whose export folder existed,
    so rows ingested later were silently left out of every backtest. Now the export is redone
    whenever the stream's catalog files changed (their fingerprint is kept beside the export)."""
    from dolphin.execution.feeds import ensure_exported, stream_fingerprint

    full = perp_catalog.read("bars_5m", "BINANCE_USDM", "ETHUSDT")
    ts = full.column("ts_ns").to_numpy()
    cut = int(ts[len(ts) // 2])
    cat = Catalog(tmp_path / "c")
    cat.write("bars_5m", "BINANCE_USDM", "ETHUSDT", full.filter(pc.less(full.column("ts_ns"), cut)))
    nt = tmp_path / "nt"
    bar_type = "ETHUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL"

    def exported() -> int:
        return len(nautilus_catalog(nt).bars(bar_types=[bar_type]))

    ensure_exported(cat, nt, "bars_5m", "BINANCE_USDM", "ETHUSDT")
    first = exported()
    assert 0 < first < full.num_rows
    fp = stream_fingerprint(cat, "bars_5m", "BINANCE_USDM", "ETHUSDT")
    ensure_exported(cat, nt, "bars_5m", "BINANCE_USDM", "ETHUSDT")  # unchanged: nothing to do
    assert exported() == first and stream_fingerprint(cat, "bars_5m", "BINANCE_USDM", "ETHUSDT") == fp
    cat.write("bars_5m", "BINANCE_USDM", "ETHUSDT", full.filter(pc.greater_equal(full.column("ts_ns"), cut)))
    assert stream_fingerprint(cat, "bars_5m", "BINANCE_USDM", "ETHUSDT") != fp
    ensure_exported(cat, nt, "bars_5m", "BINANCE_USDM", "ETHUSDT")
    assert exported() == full.num_rows


def _run_engine(inst, *streams) -> None:
    """A NautilusTrader backtest over the streams (it checks every tick's precision against the instrument's)."""
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money

    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
                     starting_balances=[Money(10_000, USDT)], base_currency=USDT, book_type=BookType.L2_MBP)  # fmt: skip
    engine.add_instrument(inst)
    for data in streams:
        engine.add_data(data)
    try:
        engine.run()
    finally:
        engine.dispose()


def test_one_precision_per_instrument_whatever_was_exported_before(shared_data: Path, tmp_path: Path) -> None:
    """Found in review 2026-12-06: the precision was taken per exported stream but written as the
    instrument's, so exporting a second stream of an instrument (the USDT-M capture's trades need
    1 price decimal, the Tardis book 2) broke NautilusTrader backtests of the first. Now the
    instrument's precision is the most any stored stream needs, and a stream exported earlier at
    another precision is exported again with the instrument."""
    from nautilus_trader.model.enums import BookAction

    cat = Catalog(tmp_path / "c", fsync=False)
    nt = tmp_path / "nt"
    rep = ingest_file(cat, shared_data / "fixtures_nautilus" / "btcusdt-depth-snap.csv", quarantine_dir=tmp_path / "q",
                      venue="BINANCE_USDM")  # fmt: skip
    assert rep.ok and rep.rows_written == 100
    inst, _ = export_stream(cat, nt, "depth", "BINANCE_USDM", "BTCUSDT")
    assert (inst.price_precision, inst.size_precision) == (1, 3)  # 20377.00 / 1.770: all the depth needs
    trades = rebased_nautilus_fixture(shared_data, "binance_btcusdt_trades_2021-01-08.csv", tmp_path / "fixed")
    assert ingest_file(cat, trades, quarantine_dir=tmp_path / "q", venue="BINANCE_USDM").rows_written == 2001
    inst, n = export_stream(cat, nt, "trades", "BINANCE_USDM", "BTCUSDT")
    assert (inst.price_precision, inst.size_precision) == (2, 6) and n == 2001  # 39432.48 / 0.000263

    nc = nautilus_catalog(nt)
    assert [(i.price_precision, i.size_precision) for i in nc.instruments()] == [(2, 6)]
    ticks = nc.trade_ticks(instrument_ids=[str(inst.id)])
    deltas = nc.order_book_deltas(instrument_ids=[str(inst.id)])
    assert len(ticks) == 2001 and len(deltas) == 101
    assert {(t.price.precision, t.size.precision) for t in ticks} == {(2, 6)}
    levels = [d.order for d in deltas if d.action != BookAction.CLEAR]
    assert {(o.price.precision, o.size.precision) for o in levels} == {(2, 6)}
    ours = cat.read("depth", "BINANCE_USDM", "BTCUSDT")
    assert sorted(Decimal(str(o.price)) for o in levels) == sorted(ours.column("price").to_pylist())
    _run_engine(inst, ticks, deltas)

    # Exported again in the other order, the result is the same instrument and the same ticks.
    inst2, _ = export_stream(cat, nt, "depth", "BINANCE_USDM", "BTCUSDT")
    assert (inst2.price_precision, inst2.size_precision) == (2, 6)
    assert len(nautilus_catalog(nt).trade_ticks(instrument_ids=[str(inst.id)])) == 2001
