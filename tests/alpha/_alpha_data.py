"""Real 1-minute bars for signal tests, read from the shared gzipped CSVs (until the catalog lands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPOT_1M = "binance_spot_1m_2021-04"


def log_returns_panel(shared_data: Path, n_assets: int = 12) -> tuple[list[str], np.ndarray]:
    """(symbols, log returns [bars, assets]) of BTCUSDT first plus the next n_assets-1 symbols
    alphabetically, aligned on open_time_ms (inner join)."""
    folder = shared_data / SPOT_1M
    files = sorted(folder.glob("*.csv.gz"))
    btc = folder / "BTCUSDT.csv.gz"
    chosen = [btc] + [f for f in files if f != btc][: n_assets - 1]
    closes = []
    for f in chosen:
        df = pd.read_csv(f, usecols=["open_time_ms", "close"]).set_index("open_time_ms")["close"]
        closes.append(df.rename(f.name.split(".")[0]))
    panel = pd.concat(closes, axis=1, join="inner").sort_index()
    r = np.log(panel.to_numpy(dtype=np.float64))
    return list(panel.columns), np.diff(r, axis=0)
