"""Zero-trust gate, regime rule, scan record (Arrow/Parquet and framed stream) and config checks."""

from __future__ import annotations

import math
import msgspec
import numpy as np
import pyarrow.parquet as pq
import pytest

from dolphin.core.config import ConfigError, load_config
from dolphin.scan.config import ScanConfig
from dolphin.scan.gate import InputCheck, bar_checksum, check_checksum, check_complete, check_fresh
from dolphin.scan.record import (
    ATTACK,
    VETO,
    RecordChecksumError,
    decode_record,
    encode_record,
    records_to_table,
    write_parquet,
)
from dolphin.scan.sonar import Sonar

from ._data import real_bars

MIN = 60_000_000_000


def _cfg(**kw: object) -> ScanConfig:
    base = dict(windows=[20, 50], vel_div_short=20, vel_div_long=50, full_spectrum=False,
                regime={"structure_window": 50, "max_instability": 10.0, "min_signal_ratio": 0.5})
    base.update(kw)
    return msgspec.convert(base, ScanConfig)


def _warm(sonar: Sonar, closes: np.ndarray, upto: int) -> None:
    for t in range(upto):
        sonar.update((t + 1) * MIN, closes[t], np.isfinite(closes[t]))


@pytest.fixture(scope="module")
def spot() -> np.ndarray:
    return real_bars("binance_spot_1m_2021-04").closes[3000:3200, :12]


def test_gate_checks_name_the_failure() -> None:
    assert check_fresh("x", 5, 10).ok and not check_fresh("x", 11, 10).ok
    assert "future" in check_fresh("x", -1, 10).reason
    assert check_complete("c", 8, 10, 0.8).ok and not check_complete("c", 7, 10, 0.8).ok
    assert not check_complete("c", 0, 0, 0.5).ok
    assert check_checksum("k", False, None, 1).ok
    assert "without a checksum" in check_checksum("k", True, None, 1).reason
    assert "mismatch" in check_checksum("k", True, 2, 1).reason


def test_attack_when_everything_verified_then_veto_naming_each_failed_input(spot: np.ndarray) -> None:
    """Real closes: ATTACK with every input verified; each unverified input alone flips it to VETO
    (each case on its own scanner warmed to the same bar: a corrupt bar is a gap for later scans)."""
    t = 120
    ts = (t + 1) * MIN
    mask = np.isfinite(spot[t])

    def warmed() -> Sonar:
        sonar = Sonar(spot.shape[1], _cfg())
        _warm(sonar, spot, t)
        return sonar

    sonar = warmed()
    ok = sonar.update(ts, spot[t], mask, now_ns=ts + 1_000_000_000, checksum=bar_checksum(ts, spot[t], mask),
                      crossed_boundary=True)
    assert ok.regime == ATTACK, ok
    assert ok.failed_inputs == () and ok.veto_reasons == ()

    sonar = warmed()
    stale = sonar.update(ts, spot[t], mask, now_ns=ts + 60_000_000_000)
    assert stale.regime == VETO and stale.failed_inputs == ("bar.fresh",)
    assert sonar.counters.stale_inputs == 1 and sonar.counters.events["failed_input.bar.fresh"] == 1
    sonar = warmed()
    unsigned = sonar.update(ts, spot[t], mask, now_ns=ts, crossed_boundary=True)
    assert unsigned.regime == VETO and unsigned.failed_inputs == ("bar.checksum",)
    sonar = warmed()
    corrupt = sonar.update(ts, spot[t], mask, now_ns=ts, checksum=bar_checksum(ts, spot[t] * 1.0001, mask),
                           crossed_boundary=True)
    assert corrupt.regime == VETO and corrupt.failed_inputs == ("bar.checksum",)
    assert sonar.counters.checksum_failures == 1 and sonar.counters.events["failed_input.bar.checksum"] == 1
    sonar = warmed()
    extra = sonar.update(ts, spot[t], mask, now_ns=ts, extra_inputs=[InputCheck("exf.funding", False, "stale")])
    assert extra.regime == VETO and extra.failed_inputs == ("exf.funding",)
    assert sonar.counters.events["failed_input.exf.funding"] == 1


def _feed(sonar: Sonar, bars: list[tuple]) -> list:
    return [sonar.update(ts, closes, mask, **kw) for ts, closes, mask, kw in bars]


def _diff(ra: list, rb: list) -> str:
    """'' when the records agree: every field exact except floats, equal to 1e-12 (relative, or
    absolute for velocities near 0; NaN features of warm-up equal). Two scanners fed the same bars
    agree to the last bits only when their arrays share an alignment: compiled reductions regroup."""

    def same(u: object, v: object) -> bool:
        if isinstance(u, float) and isinstance(v, float):
            return (u != u and v != v) or math.isclose(u, v, rel_tol=1e-12, abs_tol=1e-12)
        if isinstance(u, tuple) and isinstance(v, tuple):
            return len(u) == len(v) and all(same(x, y) for x, y in zip(u, v))
        if isinstance(u, msgspec.Struct) and type(u) is type(v):
            return all(same(getattr(u, f), getattr(v, f)) for f in u.__struct_fields__)
        return u == v

    if len(ra) != len(rb):
        return f"{len(ra)} records vs {len(rb)}"
    for i, (x, y) in enumerate(zip(ra, rb)):
        if not same(x, y):
            return f"record {i}: {x} != {y}"
    return ""


def _clean_bars(closes: np.ndarray) -> list[tuple]:
    return [((t + 1) * MIN, closes[t], np.isfinite(closes[t]), {}) for t in range(closes.shape[0])]


def test_a_bar_failing_its_checksum_is_a_gap_for_every_later_scan(spot: np.ndarray) -> None:
    """A bar whose closes do not match its checksum (here scaled x40 after the CRC) is masked whole:
    every later scan is exactly what it is when that bar was missing, so no scan uses its data
    (before, only its own scan was VETO and the next 49 were ATTACK on the corrupt returns)."""
    k = 130
    base = _clean_bars(spot)
    ts, closes, mask, _ = base[k]
    bad = closes.copy()
    bad[:4] *= 40.0
    corrupt = list(base)
    corrupt[k] = (ts, bad, mask, {"checksum": bar_checksum(ts, closes, mask), "crossed_boundary": True})
    missing = list(base)
    missing[k] = (ts, closes, np.zeros_like(mask), {})
    a, b = Sonar(spot.shape[1], _cfg()), Sonar(spot.shape[1], _cfg())
    ra, rb = _feed(a, corrupt), _feed(b, missing)
    assert ra[k].regime == VETO and ra[k].failed_inputs == ("bar.checksum",) and ra[k].n_real_bars == 0
    assert _diff(ra[:k], rb[:k]) == "" and _diff(ra[k + 1 :], rb[k + 1 :]) == ""
    c = Sonar(spot.shape[1], _cfg())
    _feed(c, corrupt[: k + 6])  # the W = 20 window then holds the returns of bars k - 14 .. k + 5
    rows, valid = c.window_view(20)
    assert not valid[-6].any() and not valid[-5].any() and valid[-4].all()  # into and out of bar k
    assert np.isfinite(rows).all()
    assert a.counters.checksum_failures == 1


def test_repeated_and_late_bars_change_nothing(spot: np.ndarray) -> None:
    """A repeated bar and a late one are VETO naming `bar.order`, repeat the last scan's features
    and leave the scanner's state untouched: every other record equals the clean run's (before,
    the repeat added a row of zero returns counted as real, the late bar two wrong returns)."""
    base = _clean_bars(spot[:160])
    k = 130
    dup = base[k]
    late = ((k - 4) * MIN, spot[k - 5], np.isfinite(spot[k - 5]), {})
    fed = base[: k + 1] + [dup] + base[k + 1 : k + 4] + [late] + base[k + 4 :]
    clean = Sonar(spot.shape[1], _cfg())
    rc = _feed(clean, base)
    sonar = Sonar(spot.shape[1], _cfg())
    rs = _feed(sonar, fed)
    r_dup, r_late = rs[k + 1], rs[k + 5]
    for r, prev in ((r_dup, rs[k]), (r_late, rs[k + 4])):
        assert r.regime == VETO and r.failed_inputs == ("bar.order",) and "gate" in r.veto_reasons
        assert r.windows == prev.windows and r.bar_index == prev.bar_index  # (ready: finite features)
        assert (r.vel_div, r.instability) == (prev.vel_div, prev.instability)
    assert _diff(rs[: k + 1] + rs[k + 2 : k + 5] + rs[k + 6 :], rc) == ""
    assert sonar.counters.events["out_of_order_bars"] == 2
    assert sonar.counters.events["failed_input.bar.order"] == 2
    assert sonar.counters.bars == clean.counters.bars


def test_a_call_that_raises_changes_nothing(spot: np.ndarray) -> None:
    """Bad arguments raise before anything is touched: a good bar afterwards gives exactly the
    clean run's record (before, a NaN clock or a bad extra input raised after the bar had been
    pushed, and the retried bar was VETO as out of order with the velocity lag shifted)."""
    base = _clean_bars(spot[:150])
    k = 130
    ts, closes, mask, _ = base[k]
    clean = Sonar(spot.shape[1], _cfg())
    rc = _feed(clean, base)
    sonar = Sonar(spot.shape[1], _cfg())
    rs = _feed(sonar, base[:k])
    with pytest.raises(ValueError, match="returns has shape"):
        sonar.update(ts, closes, mask, returns=np.zeros(spot.shape[1] - 1))
    with pytest.raises(ValueError, match="now_ns must be an integer"):
        sonar.update(ts, closes, mask, now_ns=float("nan"))
    with pytest.raises(ValueError, match="ts_ns must be an integer"):
        sonar.update(float(ts) + 0.5, closes, mask)
    with pytest.raises(TypeError, match="extra_inputs holds 'NoneType'"):
        sonar.update(ts, closes, mask, extra_inputs=[None])  # type: ignore[list-item]
    rs += _feed(sonar, base[k:])
    assert _diff(rs, rc) == ""
    data_quality = ("bars", "missing_bars", "gap_starts", "gap_ends", "bad_prices", "checksum_failures",
                    "stale_inputs", "vetoes", "attacks")
    assert [getattr(sonar.counters, f) for f in data_quality] == [getattr(clean.counters, f) for f in data_quality]
    assert "out_of_order_bars" not in sonar.counters.events


def test_a_price_ratio_out_of_range_is_masked_not_propagated(spot: np.ndarray) -> None:
    """A positive close so small (subnormal) that the next close's ratio to it overflows gives no
    return: that return is masked and counted (`nonfinite_returns`) and nothing non-finite enters
    the sums (before, inf went in and inf - inf = NaN excluded the asset as zero-variance until the
    next re-anchor). The return into it (log of a tiny but finite ratio, -716) is a finite number
    and is used: telling absurd prices from real ones is the data plane's validation."""
    base = _clean_bars(spot[:170])
    k = 130
    ts, closes, mask, _ = base[k]
    tiny = closes.copy()
    tiny[3] = 1e-310
    fed = list(base)
    fed[k] = (ts, tiny, mask, {})
    sonar = Sonar(spot.shape[1], _cfg())
    rs = _feed(sonar, fed)
    assert sonar.counters.events["nonfinite_returns"] == 1  # out of bar k
    assert sonar.counters.zero_variance_exclusions == 0
    rows, valid = sonar.window_view(50)
    j = len(base) - k  # rows from the end: bar k's return, then bar k + 1's
    assert valid[-j, 3] and rows[-j, 3] < -700  # into bar k: finite, used
    assert not valid[-(j - 1), 3] and valid[-(j - 1)].sum() == valid.shape[1] - 1  # out of it: masked
    assert np.isfinite(rows).all()
    for r in rs[k:]:
        for f in r.windows:
            assert math.isfinite(f.lambda_max) and f.n_assets >= spot.shape[1] - 1


def test_regime_rule_clauses(spot: np.ndarray) -> None:
    sonar = Sonar(spot.shape[1], _cfg(regime={"structure_window": 50, "max_instability": 1e-12}))
    recs = [sonar.update((t + 1) * MIN, spot[t], np.isfinite(spot[t])) for t in range(80)]
    assert "warmup" in recs[10].veto_reasons
    assert all("unstable" in r.veto_reasons for r in recs[60:])
    strict = Sonar(spot.shape[1], _cfg(regime={"structure_window": 50, "min_signal_ratio": 1e6}))
    recs = [strict.update((t + 1) * MIN, spot[t], np.isfinite(spot[t])) for t in range(80)]
    assert all("no_structure" in r.veto_reasons for r in recs[60:])


def test_records_to_parquet_and_stream_frames(spot: np.ndarray, tmp_path) -> None:
    sonar = Sonar(spot.shape[1], _cfg(full_spectrum=True))
    recs = [sonar.update((t + 1) * MIN, spot[t], np.isfinite(spot[t])) for t in range(80)]
    table = records_to_table(recs)
    assert table.num_rows == 80
    for col in ("lambda_max_w20", "entropy_w50", "absorption_w50", "velocity_w20", "vel_div", "regime", "ts"):
        assert col in table.column_names
    path = write_parquet(recs, tmp_path / "scan.parquet")
    back = pq.read_table(path)
    assert back.column("lambda_max_w50").to_pylist()[-1] == recs[-1].window(50).lambda_max
    frame = encode_record(recs[-1])
    assert decode_record(frame) == recs[-1]
    bad = bytearray(frame)
    bad[3] ^= 0xFF
    with pytest.raises(RecordChecksumError):
        decode_record(bytes(bad))
    with pytest.raises(KeyError):
        recs[-1].window(999)


def test_scan_config_validation() -> None:
    with pytest.raises(ConfigError, match="vel_div_short"):
        ScanConfig(windows=[10, 20], vel_div_short=50, vel_div_long=20).validate()
    with pytest.raises(ConfigError, match="duplicates"):
        ScanConfig(windows=[50, 50, 150]).validate()
    with pytest.raises(ConfigError, match="structure_window"):
        msgspec.convert({"windows": [50, 150], "regime": {"structure_window": 300}}, ScanConfig).validate()
    with pytest.raises(ValueError):
        Sonar(0)


def test_scan_section_in_config_tree() -> None:
    cfg = load_config(environ={"DOLPHIN__SCAN__WINDOWS": "[50, 150]", "DOLPHIN__SCAN__REGIME__STRUCTURE_WINDOW": "150"})
    assert cfg.scan.windows == [50, 150]
    with pytest.raises(ConfigError, match="scan"):
        load_config(environ={"DOLPHIN__SCAN__WINDOWS": "[10, 20]"})


def test_shape_errors_are_named() -> None:
    sonar = Sonar(3, _cfg())
    with pytest.raises(ValueError, match="closes has shape"):
        sonar.update(1, np.ones(4))
    with pytest.raises(ValueError, match="mask has shape"):
        sonar.update(1, np.ones(3), np.ones(2, dtype=bool))


def test_frame_sink_and_parquet_sink(spot: np.ndarray, tmp_path) -> None:
    from dolphin.scan.stream import FrameSink, ParquetSink

    sonar = Sonar(spot.shape[1], _cfg())
    recs = [sonar.update((t + 1) * MIN, spot[t], np.isfinite(spot[t])) for t in range(60)]
    ring: list[bytes] = []
    sink = FrameSink(lambda f: len(ring) < 50 and (ring.append(f) is None))
    pq_sink = ParquetSink(tmp_path / "s.parquet", rows_per_group=16)
    for r in recs:
        sink.publish(r)
        pq_sink.publish(r)
    pq_sink.close()
    assert sink.sent == 50 and sink.backpressured == 10  # a full ring is counted, not hidden
    # NaN != NaN, so compare re-encoded frames (bit-exact round trip)
    assert [encode_record(decode_record(f)) for f in ring] == [encode_record(r) for r in recs[:50]]
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert meta.num_rows == 60 and meta.num_row_groups == 4
    with pytest.raises(ValueError):
        ParquetSink(tmp_path / "x.parquet", rows_per_group=0)
