"""Every name a grid module exports exists (an explicit, tested public surface)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "dolphin.grid.protocol",
    "dolphin.grid.records",
    "dolphin.grid.acb",
    "dolphin.grid.embedded",
    "dolphin.grid.shm",
    "dolphin.grid.hazelcast_backend",
    "dolphin.grid.member",
    "dolphin.grid.sink",
    "dolphin.grid.scaleout",
    "dolphin.grid.factory",
    "dolphin.grid.config",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__all__, name
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert missing == []
