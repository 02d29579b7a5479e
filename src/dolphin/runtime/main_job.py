"""`dolphin run`: the main job on the embedded default."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the main job on the embedded default")
    p.set_defaults(func=lambda cfg, args: print("dolphin run: nothing wired yet"))
