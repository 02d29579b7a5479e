"""Test support for the Oracle plane: real capture paths, a reference REST-snapshot source, and
helpers that write deliberately altered copies of the real captures (into tmp_path)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable, Iterator

from dolphin.alpha.book import BookBuilder, BookSnapshot, replay_into_builder
from dolphin.data.binance_capture import iter_capture

L2_DIR = "l2_binance_2024-08-08"


def l2_files(shared_data: Path) -> list[Path]:
    """Every real L2 capture that holds a REST snapshot (``*_YYYYMMDD.gz`` files in the L2 folder)."""
    files = sorted((shared_data / L2_DIR).glob("*.gz"))
    assert files, f"no L2 captures under {shared_data / L2_DIR}"
    return files


def read_lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        return fh.read().splitlines()


def write_lines(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(b"\n".join(lines) + b"\n")
    return path


def diff_line_indices(lines: list[bytes]) -> list[int]:
    """0-based indices of depth-diff lines."""
    return [i for i, ln in enumerate(lines) if b'@depth' in ln[:80]]


def snapshot_line_index(lines: list[bytes]) -> int:
    return next(i for i, ln in enumerate(lines) if b'"lastUpdateId"' in ln[:80])


class ReferenceSnapshotSource:
    """Stands in for Binance's REST depth endpoint during a replay of an altered capture.

    It replays the INTACT real capture with its own builder and, when asked, returns the book as of
    the first update id >= the requested one, cut to ``max_levels`` per side like the REST snapshot
    (``limit=1000``). ``delay_diffs`` more diffs are applied first to mimic the REST round trip.
    """

    def __init__(self, intact: Path, *, max_levels: int = 1000, delay_diffs: int = 0) -> None:
        self.builder = BookBuilder()
        self._it: Iterator = replay_into_builder(iter_capture(intact), self.builder)
        self.max_levels = max_levels
        self.delay_diffs = delay_diffs
        self.requests = 0

    def _advance_one_diff(self) -> bool:
        for msg, res in self._it:
            if res is not None and self.builder.is_synced:
                return True
        return False

    def request(self, min_update_id: int) -> BookSnapshot | None:
        self.requests += 1
        b = self.builder
        while not (b.is_synced and b.book.last_update_id >= min_update_id):
            if not self._advance_one_diff():
                return None
        for _ in range(self.delay_diffs):
            if not self._advance_one_diff():
                break
        snap = b.book.snapshot(self.max_levels)
        snap.grid = b.grid  # the requester may have refined its inferred grid
        return snap


def final_reference_book(intact: Path) -> BookBuilder:
    b = BookBuilder()
    for _ in replay_into_builder(iter_capture(intact), b):
        pass
    return b


Alteration = Callable[[list[bytes]], list[bytes]]
