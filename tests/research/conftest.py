"""Fixtures of the research tests: the default configuration and the shipped real bars it names
(Binance USDT-M 5-minute perps of July 2023, read from the catalog), once per test module."""

from __future__ import annotations

import pytest

from dolphin.core.config import load_config
from dolphin.research.backtest import load_bars


@pytest.fixture(scope="module")
def cfg():
    return load_config(environ={})


@pytest.fixture(scope="module")
def bar_sets(cfg):
    return load_bars(cfg)
