"""Ingestion: source file -> parse -> validate -> catalog, with a quarantine file per source.

Every data line of a source is accounted for: ``rows_total == rows_accepted +
rows_quarantined``, where accepted rows are either written or already present in the
catalog with identical values.

Failures: :func:`ingest_file` never raises for a bad source. A file that cannot be read or
parsed, or any unexpected exception while it is ingested (a corrupt catalog partition, a bug),
ends up in ``report.error`` with the file named; the rows written before the failure are counted
in the report (they are valid; a later re-ingest finds them present). :func:`ingest_paths` goes on
with the next file. Each run writes its own quarantine file (the source name, a digest of its
path and a UTC timestamp), atomically, so a re-ingest never overwrites an earlier run's rejects.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dolphin.data.capture_ingest import is_capture_file, parse_capture
from dolphin.data.catalog import Catalog
from dolphin.data.errors import DataError, DataFormatError
from dolphin.data.formats import symbol_from_name, venue_from_path
from dolphin.data.parse import ParsedFile, Rejects, parse_file
from dolphin.data.schema import bar_interval_ns
from dolphin.data.validate import Gap, typed_raw, validate_table

__all__ = ["IngestReport", "check_file", "check_source", "discover_sources", "ingest_file", "ingest_paths"]

_INTERVAL_RE = re.compile(r"(?:^|[-_/])(\d+[smhd])(?:[-_/.]|$)")
_SOURCE_SUFFIXES = (".csv", ".gz", ".zip", ".data")  # .gz: gzipped CSV or a raw websocket capture


@dataclass
class IngestReport:
    """What happened to one source file."""

    source: str
    format: str = ""
    venue: str = ""
    datasets: dict[str, list[str]] = field(default_factory=dict)  # dataset -> symbols
    rows_total: int = 0
    rows_written: int = 0
    rows_already_present: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    gaps: list[tuple[str, Gap]] = field(default_factory=list)  # (symbol, gap)
    rounded_values: int = 0
    quarantine_file: str | None = None
    error: str | None = None

    @property
    def rows_accepted(self) -> int:
        return self.rows_written + self.rows_already_present

    @property
    def ok(self) -> bool:
        return self.error is None


def discover_sources(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into the source files they hold (sorted); files are taken as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(_SOURCE_SUFFIXES)))
        elif p.exists():
            out.append(p)
        else:
            raise DataFormatError(str(p), "no such file or folder")
    return out


def _bar_dataset(path: Path, table: pa.Table) -> tuple[str, int]:
    m = _INTERVAL_RE.search(path.name) or _INTERVAL_RE.search(path.parent.name)
    if m:
        spec = m.group(1)
    else:
        ts = table.column("ts_ns").to_numpy()
        if len(ts) < 2:
            raise DataFormatError(str(path), "cannot tell the bar size: no interval in the name and < 2 rows")
        step = int(np.median(np.diff(np.sort(ts))))
        spec = {5_000_000_000: "5s", 60_000_000_000: "1m", 300_000_000_000: "5m", 3_600_000_000_000: "1h"}.get(step)
        if spec is None:
            raise DataFormatError(str(path), f"cannot tell the bar size from the median step {step} ns")
    return f"bars_{spec}", bar_interval_ns(spec)



def _dataset_for(parsed: ParsedFile, path: Path, table: pa.Table) -> tuple[str, int | None]:
    kind = parsed.fmt.kind
    if kind == "bars":
        return _bar_dataset(path, table)
    if kind == "series":
        name = re.sub(r"[^a-z0-9_]", "_", parsed.fmt.fields["value"].lower())
        return f"series_{name}", None
    return kind, None


def _validate_parsed(
    parsed: ParsedFile, path: Path, gap_tolerance_bars: float
) -> dict[str, tuple[str, pa.Table, list[Gap], int | None]]:
    by_symbol: dict[str, list[pa.Table]] = {}
    for sym, table in parsed.tables.items():
        if sym:
            symbol = sym
        elif parsed.fmt.symbol_column:  # parse rejects rows without a symbol: never the file name's
            raise DataFormatError(str(path), f"rows without a {parsed.fmt.symbol_column} reached validation")
        elif parsed.fmt.kind == "series":  # a factor series is named after its file
            symbol = re.sub(r"[^A-Z0-9_]", "_", path.name.split(".")[0].upper())
        else:
            symbol = symbol_from_name(path)
        by_symbol.setdefault(symbol, []).append(table)
    out = {}
    for symbol, tables in by_symbol.items():  # tables that resolve to one symbol are validated as one
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables).sort_by("_line")  # file order
        dataset, bar_ns = _dataset_for(parsed, path, table)
        accepted, gaps = validate_table(
            table, parsed.fmt.kind, parsed.rejects, bar_ns=bar_ns, gap_tolerance_bars=gap_tolerance_bars,
            chained_ids=parsed.fmt.chained_ids, raw_text=parsed.raw_text,
            sequenced_ids="trade_id" not in parsed.fmt.hashed_ids,
        )
        out[symbol] = (dataset, accepted, gaps, bar_ns)
    return out


def check_source(
    path: str | Path, *, gap_tolerance_bars: float = 1.0
) -> list[tuple[ParsedFile, dict[str, tuple[str, pa.Table, list[Gap], int | None]]]]:
    """Parse and validate one source without writing.

    A CSV/ZIP source gives one part; a raw websocket capture gives one part per dataset
    (depth, trades, quotes). Each part is (parsed, {symbol: (dataset, accepted, gaps, bar_ns)}).
    """
    path = Path(path)
    if is_capture_file(path):
        parts = list(parse_capture(path).values())
        if not parts:
            raise DataFormatError(str(path), "capture holds no message", line=1)
    else:
        parts = [parse_file(path)]
    return [(p, _validate_parsed(p, path, gap_tolerance_bars)) for p in parts]


def check_file(
    path: str | Path,
    *,
    gap_tolerance_bars: float = 1.0,
) -> tuple[ParsedFile, dict[str, tuple[str, pa.Table, list[Gap], int | None]]]:
    """Parse and validate a CSV/ZIP source without writing: (parsed, {symbol: (dataset, accepted, gaps, bar_ns)})."""
    path = Path(path)
    parsed = parse_file(path)
    return parsed, _validate_parsed(parsed, path, gap_tolerance_bars)


def _quarantine_path(quarantine_dir: Path, source: Path) -> Path:
    """A new file per run: ``<name>.<path digest>.<UTC time to the microsecond>[-n].parquet``."""
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source.name)
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000)) + f"{now // 1000 % 1_000_000:06d}Z"
    path = quarantine_dir / f"{stem}.{digest}.{stamp}.parquet"
    k = 1
    while path.exists():
        path = quarantine_dir / f"{stem}.{digest}.{stamp}-{k}.parquet"
        k += 1
    return path


def _write_quarantine(table: pa.Table, quarantine_dir: Path, source: Path) -> Path:
    """Write the rejects atomically (temporary file, fsync, then a hard link under the final name,
    which fails instead of replacing a file another process created under that name meanwhile)."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    path = _quarantine_path(quarantine_dir, source)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        base, k = path, 1
        while True:
            try:
                os.link(tmp, path)  # atomic and exclusive: never overwrites another run's file
                break
            except FileExistsError:
                path = base.with_name(f"{base.stem}-{k}{base.suffix}")
                k += 1
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(quarantine_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def ingest_file(
    catalog: Catalog,
    path: str | Path,
    *,
    quarantine_dir: str | Path,
    venue: str | None = None,
    gap_tolerance_bars: float = 1.0,
) -> IngestReport:
    """Ingest one source file; never raises for a bad file.

    Any failure is reported in ``report.error`` naming the file: a format error (nothing written)
    or an unexpected error while writing (the rows written before it are counted).
    """
    path = Path(path)
    report = IngestReport(source=str(path))
    quarantine: list[pa.Table] = []
    try:
        _ingest(catalog, path, report, quarantine, venue, gap_tolerance_bars)
    except DataError as exc:
        report.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file must not abort a batch; reported, not hidden
        report.error = f"{path}: unexpected {type(exc).__name__} while ingesting: {exc}"
    if report.error and report.rows_written:
        report.error += f" ({report.rows_written} rows were written before the failure)"
    if quarantine:
        try:
            report.quarantine_file = str(_write_quarantine(pa.concat_tables(quarantine), Path(quarantine_dir), path))
        except Exception as exc:  # noqa: BLE001
            msg = f"{path}: cannot write the quarantine file in {quarantine_dir}: {type(exc).__name__}: {exc}"
            report.error = f"{report.error}; {msg}" if report.error else msg
    return report


def _ingest(
    catalog: Catalog, path: Path, report: IngestReport, quarantine: list[pa.Table], venue: str | None,
    gap_tolerance_bars: float,
) -> None:  # fmt: skip
    parts = check_source(path, gap_tolerance_bars=gap_tolerance_bars)
    report.format = "+".join(p.fmt.name for p, _ in parts)
    fmt0 = parts[0][0].fmt
    report.venue = venue or ("EXTERNAL" if fmt0.kind == "series" else venue_from_path(path, fmt=fmt0))
    reasons = report.reasons
    for parsed, per_symbol in parts:
        rejects: Rejects = parsed.rejects
        for symbol, (dataset, accepted, gaps, _) in per_symbol.items():
            report.datasets.setdefault(dataset, []).append(symbol)
            report.gaps.extend((symbol, g) for g in gaps)
            res = catalog.write(dataset, report.venue, symbol, accepted)
            report.rows_written += res.rows_written
            report.rows_already_present += res.rows_already_present
            if res.conflict_rows:
                idx = np.array(res.conflict_rows)
                lines = accepted.column("_line").to_numpy()[idx]
                raws = parsed.raw_text(lines)
                if raws is None:
                    raws = typed_raw(accepted, idx)
                rejects.add(lines, "conflicts_with_catalog",
                            [f"{dataset}/{report.venue}/{symbol}: key stored with other values; this row was not "
                             "stored" for _ in idx], raws)  # fmt: skip
        report.rows_total += parsed.rows_total
        report.rounded_values += parsed.rounded_values
        report.rows_quarantined += len(rejects)
        for k, v in rejects.counts().items():
            reasons[k] = reasons.get(k, 0) + v
        if len(rejects):
            quarantine.append(rejects.to_table(str(path)))


def ingest_paths(
    catalog: Catalog,
    paths: Iterable[str | Path],
    *,
    quarantine_dir: str | Path,
    venue: str | None = None,
    gap_tolerance_bars: float = 1.0,
    progress: Callable[[Path, IngestReport], None] | None = None,
) -> list[IngestReport]:
    """Ingest many files; a file that fails does not stop the others (its report has the error)."""
    reports = []
    for f in discover_sources(paths):
        rep = ingest_file(catalog, f, quarantine_dir=quarantine_dir, venue=venue, gap_tolerance_bars=gap_tolerance_bars)
        reports.append(rep)
        if progress:
            progress(f, rep)
    return reports
