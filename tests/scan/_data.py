"""Test-support: real bars from the shared data (ingested into a catalog once) and references."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dolphin.core.paths import shared_data_dir
from dolphin.scan import kernels as K
from dolphin.data.sample import catalog_of
from dolphin.data.schema import bar_interval_ns
from dolphin.scan.source import ScanBars, CatalogSource


@lru_cache(maxsize=8)
def real_bars(dataset: str) -> ScanBars:
    """A shared real bar set (e.g. ``binance_spot_1m_2021-04``) through the catalog, on its own bar grid."""
    import tempfile

    cache = Path(tempfile.gettempdir()) / "dolphin-test-catalogs"
    cat = catalog_of(Path(shared_data_dir()) / dataset, cache)
    (ds,) = [d for d in cat.datasets() if d.startswith("bars_")]
    (venue,) = cat.venues(ds)
    bars = CatalogSource(cat, venue, ds.removeprefix("bars_")).load()
    assert bar_interval_ns(ds) > 0
    return bars


def reference_spectrum(
    closes: np.ndarray, mask: np.ndarray, t: int, w: int, *, min_coverage: float = 0.9, alpha: float = 0.05,
    min_return_var: float = 1e-18,
) -> tuple[np.ndarray, int]:
    """numpy eigvalsh of the from-scratch correlation of the window ending at bar t.

    Returns (all N_eff eigenvalues, ascending, after the stated singular shrinkage, N_eff).
    """
    ret, valid = K.log_returns(closes[: t + 1], mask[: t + 1])
    c, eligible = K.correlation_from_scratch(ret[t - w + 1 : t + 1], valid[t - w + 1 : t + 1], min_coverage, min_return_var)
    n_eff = int(eligible.sum())
    a = alpha if n_eff >= w else 0.0
    return (1 - a) * np.linalg.eigvalsh(c) + a, n_eff


def reference_lambda_max(
    closes: np.ndarray, mask: np.ndarray, t: int, w: int, *, min_coverage: float = 0.9, alpha: float = 0.05,
    min_return_var: float = 1e-18,
) -> tuple[float, int]:
    """lambda_max by numpy eigvalsh on the from-scratch correlation of the window ending at bar t.

    Returns (lambda_max after the stated singular shrinkage, N_eff).
    """
    ev, n_eff = reference_spectrum(closes, mask, t, w, min_coverage=min_coverage, alpha=alpha,
                                   min_return_var=min_return_var)
    return (float(ev[-1]) if ev.size else float("nan")), n_eff
