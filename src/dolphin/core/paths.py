"""Where things live: the repository root, the shipped sample data, the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["console_width", "repo_root", "sample_data_dir", "shared_data_dir"]


def repo_root() -> Path:
    """The checkout root (the folder holding pyproject.toml), or the current directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def sample_data_dir() -> Path:
    """Real sample data shipped inside the repository (see data/sample/README.md)."""
    return repo_root() / "data" / "sample"


def shared_data_dir() -> Path:
    """The developers' shared real market data (``../shared/data`` beside the checkout).

    Override with ``DOLPHIN_SHARED_DATA``. Raises FileNotFoundError with the looked-up path
    when it is not there, so a test that needs it fails loudly instead of skipping.
    """
    env = os.environ.get("DOLPHIN_SHARED_DATA")
    path = Path(env) if env else repo_root().parent / "shared" / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"shared market data not found at {path} (set DOLPHIN_SHARED_DATA to its location)"
        )
    return path


def console_width() -> int | None:
    """Terminal width for rich output: the terminal's own, or 120 when not a terminal (CI, pipes)."""
    import sys

    return None if sys.stdout.isatty() else 120
