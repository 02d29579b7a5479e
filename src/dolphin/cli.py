"""The `dolphin` command: the composition root.

Each plane contributes a subcommand module exposing ``register(subparsers)``; the module
list below is the only place they are wired together.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from dolphin import __version__
from dolphin.core.config import ConfigError, DolphinConfig, load_config

# One line per plane; each module defines register(subparsers) -> None.
COMMAND_MODULES: list[str] = [
    "dolphin.data.commands",
    "dolphin.grid.commands",
    "dolphin.alpha.commands",
    "dolphin.scan.commands",
    "dolphin.runtime.main_job",
    "dolphin.survival.commands",
    "dolphin.execution.commands",
    "dolphin.runtime.paper_commands",
    "dolphin.research.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dolphin", description="dolphin trading system")
    parser.add_argument("--version", action="version", version=f"dolphin {__version__}")
    parser.add_argument("-c", "--config", default=None, help="TOML config file (default: built-in defaults)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cfg: DolphinConfig = load_config(args.config)
    except ConfigError as exc:
        print(f"dolphin: configuration error: {exc}", file=sys.stderr)
        return 2
    from dolphin.data.errors import DataError

    try:
        return int(args.func(cfg, args) or 0)
    except ConfigError as exc:  # e.g. a command-line override or a data set that disagrees with the config
        print(f"dolphin: configuration error: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:  # CatalogError and the data-format errors: one line, no traceback
        print(f"dolphin: data error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dolphin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
