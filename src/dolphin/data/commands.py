"""`dolphin data ingest | inspect | validate`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="market-data catalog: ingest, inspect, validate")
    p.set_defaults(func=lambda cfg, args: p.print_help())
