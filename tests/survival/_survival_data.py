"""Real BTC derivatives history (shared/data/btc_derivs) as numpy arrays (test support)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def dvol_daily(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(shared / "btc_derivs" / "deribit_dvol_btc_daily.csv")
    return df["date_ms"].to_numpy(np.int64) * 1_000_000, df["dvol_close"].to_numpy(np.float64)


def funding_8h_frac(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """BTCUSDT funding per 8 h as a plain fraction (the file is in PERCENT)."""
    df = pd.read_csv(shared / "btc_derivs" / "binance_btcusdt_funding_8h_pct.csv")
    return df["funding_time_ms"].to_numpy(np.int64) * 1_000_000, df["funding_rate_pct"].to_numpy(np.float64) / 100.0
