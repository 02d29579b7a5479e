"""dolphin.scan: Sonar, the eigenvalue regime scanner (rolling correlation spectra, velocities, regime)."""

from dolphin.scan.config import GateConfig, RegimeConfig, ScanConfig
from dolphin.scan.gate import GateResult, InputCheck, bar_checksum
from dolphin.scan.record import ATTACK, VETO, ScanRecord, WindowFeatures, decode_record, encode_record
from dolphin.scan.sonar import ScanCounters, Sonar, scan_matrix

__all__ = [
    "ATTACK",
    "VETO",
    "GateConfig",
    "GateResult",
    "InputCheck",
    "RegimeConfig",
    "ScanConfig",
    "ScanCounters",
    "ScanRecord",
    "Sonar",
    "WindowFeatures",
    "bar_checksum",
    "decode_record",
    "encode_record",
    "scan_matrix",
]
