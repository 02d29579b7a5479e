"""Every name in the survival modules' __all__ exists (the public surface is explicit)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "dolphin.survival.acb", "dolphin.survival.clock", "dolphin.survival.config", "dolphin.survival.controller",
    "dolphin.survival.events", "dolphin.survival.formal", "dolphin.survival.kernels", "dolphin.survival.layers",
    "dolphin.survival.layers.base", "dolphin.survival.layers.builtin", "dolphin.survival.posture",
    "dolphin.survival.replay", "dolphin.survival.sizer", "dolphin.survival.commands",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_all_names_resolve(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__all__, name
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.{attr}"
