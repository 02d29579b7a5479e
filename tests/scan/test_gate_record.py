"""Zero-trust gate, regime rule, scan record (Arrow/Parquet and framed stream) and config checks."""

from __future__ import annotations

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
    """Real closes: ATTACK with every input verified; each unverified input alone flips it to VETO."""
    sonar = Sonar(spot.shape[1], _cfg())
    _warm(sonar, spot, 120)
    t = 120
    ts = (t + 1) * MIN
    mask = np.isfinite(spot[t])
    ok = sonar.update(ts, spot[t], mask, now_ns=ts + 1_000_000_000, checksum=bar_checksum(ts, spot[t], mask),
                      crossed_boundary=True)
    assert ok.regime == ATTACK, ok
    assert ok.failed_inputs == () and ok.veto_reasons == ()

    t += 1
    ts = (t + 1) * MIN
    stale = sonar.update(ts, spot[t], mask, now_ns=ts + 60_000_000_000)
    assert stale.regime == VETO and stale.failed_inputs == ("bar.fresh",)
    t += 1
    ts = (t + 1) * MIN
    unsigned = sonar.update(ts, spot[t], mask, now_ns=ts, crossed_boundary=True)
    assert unsigned.regime == VETO and unsigned.failed_inputs == ("bar.checksum",)
    t += 1
    ts = (t + 1) * MIN
    corrupt = sonar.update(ts, spot[t], mask, now_ns=ts, checksum=bar_checksum(ts, spot[t] * 1.0001, mask),
                           crossed_boundary=True)
    assert corrupt.regime == VETO and corrupt.failed_inputs == ("bar.checksum",)
    t += 1
    ts = (t + 1) * MIN
    extra = sonar.update(ts, spot[t], mask, now_ns=ts, extra_inputs=[InputCheck("exf.funding", False, "stale")])
    assert extra.regime == VETO and extra.failed_inputs == ("exf.funding",)
    assert sonar.counters.checksum_failures == 2 and sonar.counters.stale_inputs == 1


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
