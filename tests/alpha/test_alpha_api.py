"""The public surface of the Oracle plane and the capture reader: every exported name exists."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "dolphin.alpha.ars",
    "dolphin.alpha.book",
    "dolphin.alpha.config",
    "dolphin.alpha.features",
    "dolphin.alpha.ladder",
    "dolphin.alpha.nev",
    "dolphin.alpha.oracle",
    "dolphin.alpha.rawdepth",
    "dolphin.alpha.signals",
    "dolphin.alpha.ticks",
    "dolphin.data.binance_capture",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_documented(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__doc__
    assert len(set(mod.__all__)) == len(mod.__all__)
    for export in mod.__all__:
        obj = getattr(mod, export)
        if callable(obj) and not isinstance(obj, type(int | str)):
            assert getattr(obj, "__doc__", None), f"{name}.{export} has no docstring"
