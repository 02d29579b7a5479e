"""dolphin.scan: Sonar, the eigenvalue regime scanner (rolling correlation spectra, velocities, regime).

Submodules load lazily so that importing the config tree does not import numba.
"""

from __future__ import annotations

import importlib
from typing import Any

# The config tree's root must load before dolphin.scan.config (core.config imports ScanConfig):
# importing it here makes every import order safe.
import dolphin.core.config  # noqa: F401

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

_WHERE = {
    "ATTACK": "record", "VETO": "record", "ScanRecord": "record", "WindowFeatures": "record",
    "decode_record": "record", "encode_record": "record",
    "GateConfig": "config", "RegimeConfig": "config", "ScanConfig": "config",
    "GateResult": "gate", "InputCheck": "gate", "bar_checksum": "gate",
    "ScanCounters": "sonar", "Sonar": "sonar", "scan_matrix": "sonar",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"dolphin.scan.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'dolphin.scan' has no attribute {name!r}")
