"""Test support: real 1-minute closes from the shared data (Binance spot, April 2021)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def real_closes(shared_data: Path, n_assets: int, n_bars: int) -> tuple[list[str], np.ndarray]:
    """(symbols, closes (n_bars, n_assets)) from the first files, on their shared clock."""
    files = sorted((shared_data / "binance_spot_1m_2021-04").glob("*.csv.gz"))[:n_assets]
    cols = {}
    for f in files:
        df = pd.read_csv(f, usecols=["open_time_ms", "close"], nrows=n_bars + 200)
        cols[f.name.split(".")[0]] = df.set_index("open_time_ms")["close"]
    frame = pd.DataFrame(cols).sort_index().ffill().dropna().iloc[:n_bars]
    return list(frame.columns), frame.to_numpy(dtype=np.float64)
