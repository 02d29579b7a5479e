"""Errors of the data plane.

* DataError
  + DataFormatError    a file that cannot be parsed at all (names the file and the line)
  + UnknownColumnsError  a header with columns the format does not know
  + CatalogError       the catalog cannot serve a request (unknown dataset, bad range)

Row-level problems are not exceptions: the row goes to quarantine with its reason.
"""

from __future__ import annotations

__all__ = ["CatalogError", "DataError", "DataFormatError", "UnknownColumnsError"]


class DataError(Exception):
    """Base of the data-plane errors."""


class DataFormatError(DataError):
    """A file cannot be parsed at all; the message names the file and, where known, the line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class UnknownColumnsError(DataFormatError):
    """The header names columns that no known format has."""

    def __init__(self, source: str, unknown: list[str], expected: list[str]) -> None:
        self.unknown = unknown
        super().__init__(
            source,
            f"unknown column(s) {unknown}; the detected format has {expected}",
            line=1,
        )


class CatalogError(DataError):
    """The catalog cannot serve a request."""
