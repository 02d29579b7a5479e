"""The zero-trust gate in front of ATTACK.

Every input a scan used is checked and named: fresh within its deadband, complete enough,
and checksummed when it crossed a process boundary. One failed check means VETO whatever
the maths says; the gate returns *which* inputs failed and why (expected failures are data).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "GateResult",
    "InputCheck",
    "bar_checksum",
    "check_checksum",
    "check_complete",
    "check_fresh",
    "evaluate_gate",
]


@dataclass(frozen=True, slots=True)
class InputCheck:
    """The verdict on one input of a scan; ``reason`` is empty when ``ok``."""

    name: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class GateResult:
    """All checks of one scan; ``passed`` only when every check is ok."""

    checks: tuple[InputCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[InputCheck, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def failed_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.ok)


def check_fresh(name: str, age_ns: int, deadband_ns: int) -> InputCheck:
    """Fresh when 0 <= age <= deadband (a negative age is a clock fault, not freshness)."""
    if age_ns < 0:
        return InputCheck(name, False, f"from the future: age {age_ns} ns < 0")
    if age_ns > deadband_ns:
        return InputCheck(name, False, f"stale: age {age_ns / 1e9:.3f} s > deadband {deadband_ns / 1e9:.3f} s")
    return InputCheck(name, True)


def check_complete(name: str, have: int, total: int, min_frac: float) -> InputCheck:
    """Complete when have / total >= min_frac (and total > 0)."""
    if total <= 0:
        return InputCheck(name, False, "empty: no inputs at all")
    frac = have / total
    if frac < min_frac:
        return InputCheck(name, False, f"incomplete: {have}/{total} = {frac:.3f} < {min_frac:.3f}")
    return InputCheck(name, True)


def check_checksum(name: str, crossed_boundary: bool, expected: int | None, actual: int) -> InputCheck:
    """An input that crossed a process boundary must carry a checksum equal to the recomputed one."""
    if not crossed_boundary:
        return InputCheck(name, True)
    if expected is None:
        return InputCheck(name, False, "unverified: crossed a process boundary without a checksum")
    if int(expected) != int(actual):
        return InputCheck(name, False, f"checksum mismatch: got {int(expected):#010x}, computed {int(actual):#010x}")
    return InputCheck(name, True)


def check_records(name: str, failed: Sequence[str]) -> InputCheck:
    """Per-record checksums of an input assembled from other processes' records (e.g. the
    scale-out workers' returns): any record that failed its checksum fails the input."""
    if not failed:
        return InputCheck(name, True)
    return InputCheck(name, False, f"{len(failed)} records failed their checksum: {', '.join(list(failed)[:5])}")


def bar_checksum(ts_ns: int, closes: np.ndarray, mask: np.ndarray) -> int:
    """CRC-32 of one bar row as it travels between processes (timestamp, float64 closes, mask bytes)."""
    crc = zlib.crc32(int(ts_ns).to_bytes(8, "little", signed=True))
    crc = zlib.crc32(np.ascontiguousarray(closes, dtype=np.float64).tobytes(), crc)
    return zlib.crc32(np.ascontiguousarray(mask, dtype=np.bool_).tobytes(), crc)


def evaluate_gate(checks: Iterable[InputCheck]) -> GateResult:
    return GateResult(tuple(checks))
