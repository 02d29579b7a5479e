"""PLACEHOLDER signal source until the Oracle (``dolphin.alpha``) is wired by the lead.

Not dolphin's alpha: it fades a large z-scored k-bar move so that the execution plane has
real entries to work with in backtests. The candidate's `edge_bps` is a fixed configured
number, not an estimate. Replace with the Oracle's SignalSource at merge.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Sequence

from dolphin.execution.ports import Candidate

__all__ = ["ZMoveSignals"]


class ZMoveSignals:
    """Candidate when the k-bar log return is beyond `z` rolling standard deviations."""

    def __init__(self, lookback_bars: int, z: float, edge_bps: float, short_only: bool, window: int = 288) -> None:
        self.k = lookback_bars
        self.z = z
        self.edge_bps = edge_bps
        self.short_only = short_only
        self.window = window
        self._closes: dict[str, deque[float]] = {}
        self._rets: dict[str, deque[float]] = {}
        self._acc: dict[str, list[float]] = {}

    def on_bar(
        self, instrument_id: str, ts_ns: int, open_: float, high: float, low: float, close: float, volume: float
    ) -> Sequence[Candidate]:
        closes = self._closes.setdefault(instrument_id, deque(maxlen=self.k + 1))
        rets = self._rets.setdefault(instrument_id, deque())
        acc = self._acc.setdefault(instrument_id, [0.0, 0.0])  # running sum and sum of squares
        if closes:
            r = math.log(close / closes[-1])
            rets.append(r)
            acc[0] += r
            acc[1] += r * r
            if len(rets) > self.window:
                old = rets.popleft()
                acc[0] -= old
                acc[1] -= old * old
        closes.append(close)
        if len(closes) <= self.k or len(rets) < self.window // 2:
            return ()
        n = len(rets)
        mean = acc[0] / n
        var = max(0.0, (acc[1] - n * mean * mean) / max(1, n - 1))
        sd_k = math.sqrt(var * self.k)
        if sd_k <= 0.0:
            return ()
        move = math.log(close / closes[0])
        if move > self.z * sd_k:
            return (Candidate(instrument_id, -1, ts_ns, self.edge_bps, min(1.0, move / sd_k / (2 * self.z)), "fade_up"),)
        if move < -self.z * sd_k and not self.short_only:
            return (Candidate(instrument_id, 1, ts_ns, self.edge_bps, min(1.0, -move / sd_k / (2 * self.z)), "fade_down"),)
        return ()
