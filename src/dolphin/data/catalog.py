"""The cold store: a Parquet catalog partitioned by dataset / venue / symbol / UTC date.

Layout: ``<root>/<dataset>/<venue>/<symbol>/<YYYY-MM-DD>.parquet``, one file per day, rows
sorted by ``ts_ns``. Writes are atomic and durable (temporary file, fsync, rename, fsync of the
folder) and idempotent: rows whose
key is already stored with identical values are counted as already present; rows whose key
is stored with different values are returned as conflicts (the caller quarantines them).

A partition that cannot be read (corrupt, truncated by a crash of another tool) raises
:class:`CatalogError` naming the file, on write and on read; it is never overwritten.

Not thread-safe for concurrent writers of the same partition (one ingest process at a time).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dolphin.data.errors import CatalogError
from dolphin.data.schema import SCHEMAS, dataset_kind
from dolphin.data.validate import key_columns

__all__ = ["Catalog", "PartitionInfo", "WriteResult"]

_DAY_NS = 86_400_000_000_000
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class PartitionInfo:
    dataset: str
    venue: str
    symbol: str
    date: str
    rows: int
    first_ns: int
    last_ns: int
    bytes: int


@dataclass
class WriteResult:
    rows_written: int = 0  # new keys
    rows_already_present: int = 0
    conflict_rows: list[int] = field(default_factory=list)  # indices into the input table (not stored)
    partitions: list[Path] = field(default_factory=list)
    rows_replaced: int = 0  # stored rows replaced by the input's (only with ``replace_if``)


def _day(ts_ns: np.ndarray) -> np.ndarray:
    return ts_ns // _DAY_NS


def _date_str(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


class Catalog:
    """Parquet cold store rooted at ``root`` (created on first write).

    ``fsync=False`` skips the fsync calls (writes stay atomic, but a power loss may lose the last
    ones): only for scratch catalogs. The fsyncs cost about a third of the ingest throughput of
    1-minute bar files (one day file per fsync).
    """

    def __init__(self, root: str | Path, *, row_group_size: int = 262_144, fsync: bool = True) -> None:
        self.root = Path(root)
        self.row_group_size = row_group_size
        self.fsync = fsync

    # ----------------------------------------------------------------- paths
    def _dir(self, dataset: str, venue: str, symbol: str) -> Path:
        for label, value in (("dataset", dataset), ("venue", venue), ("symbol", symbol)):
            if not _NAME_RE.match(value):
                raise CatalogError(f"bad {label} name {value!r}: letters, digits and _ only")
        return self.root / dataset / venue / symbol

    def schema(self, dataset: str) -> pa.Schema:
        return SCHEMAS[dataset_kind(dataset)]

    # ----------------------------------------------------------------- write
    def write(
        self, dataset: str, venue: str, symbol: str, table: pa.Table, *,
        replace_if: Callable[[pa.Table], np.ndarray] | None = None,
    ) -> WriteResult:  # fmt: skip
        """Merge ``table`` (catalog schema; an extra ``_line`` column is ignored) into the store.

        A row whose key is stored with other values is a conflict: the stored row wins, and the
        row's index is returned in ``conflict_rows``. With ``replace_if`` (given the stored rows in
        conflict, it returns a mask of those that may be replaced) such a stored row is replaced by
        the new one instead (``rows_replaced``); each day file is rewritten in one atomic rename.
        Only for data that is recomputed from other stored data (bars built from stored trades).
        """
        schema = self.schema(dataset)
        base = self._dir(dataset, venue, symbol)
        data = table.drop_columns([c for c in table.column_names if c not in schema.names])
        try:
            data = data.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, KeyError) as exc:
            raise CatalogError(f"table does not fit the {dataset} schema: {exc}") from None
        result = WriteResult()
        if data.num_rows == 0:
            return result
        created = not base.is_dir()
        base.mkdir(parents=True, exist_ok=True)
        ts = data.column("ts_ns").to_numpy()
        days = _day(ts)
        keys = key_columns(dataset_kind(dataset))
        try:
            self._write_days(data, days, keys, schema, dataset, base, result, replace_if)
        finally:
            if result.partitions and self.fsync:
                _fsync_dir(base)
                if created:  # the new symbol folder's name, and its parents' if new too
                    for d in (base.parent, base.parent.parent, self.root):
                        _fsync_dir(d)
        return result

    def _write_days(
        self, data: pa.Table, days: np.ndarray, keys: tuple[str, ...], schema: pa.Schema, dataset: str, base: Path,
        result: WriteResult, replace_if: Callable[[pa.Table], np.ndarray] | None = None,
    ) -> None:  # fmt: skip
        for day in np.unique(days):
            idx = np.flatnonzero(days == day)
            part = data.take(pa.array(idx))
            path = base / f"{_date_str(int(day))}.parquet"
            n_replaced = 0
            if path.exists():
                old = _read_partition(path, schema)
                new, present, conflicts, old_conflicts = _merge_new(old, part, keys)
                result.rows_already_present += present
                conflicts_a = np.asarray(conflicts, dtype=np.int64)
                old_conflicts_a = np.asarray(old_conflicts, dtype=np.int64)
                replace = np.zeros(len(conflicts_a), dtype=bool)
                if replace_if is not None and len(conflicts_a):
                    replace = np.asarray(replace_if(old.take(pa.array(old_conflicts_a))), dtype=bool)
                result.conflict_rows.extend(int(idx[j]) for j in conflicts_a[~replace])
                n_new = new.num_rows
                if replace.any():  # the stored rows out, the new ones in: one file, one rename
                    drop = np.zeros(old.num_rows, dtype=bool)
                    drop[old_conflicts_a[replace]] = True
                    old = old.filter(pa.array(~drop))
                    new = pa.concat_tables([new, part.take(pa.array(conflicts_a[replace]))])
                    n_replaced = int(replace.sum())
                if new.num_rows == 0:
                    continue
                merged = pa.concat_tables([old, new])
            else:
                merged = part
                n_new = part.num_rows
            order = pc.sort_indices(merged, sort_keys=_sort_keys(dataset_kind(dataset)))
            merged = merged.take(order)
            self._atomic_write(merged, path)
            result.rows_written += n_new
            result.rows_replaced += n_replaced
            result.partitions.append(path)

    def _atomic_write(self, table: pa.Table, path: Path) -> None:
        """Temporary file, fsync, rename. The caller fsyncs the folder once after its renames
        (:meth:`write` does, before it returns), which makes the new names durable."""
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        try:
            pq.write_table(
                table, tmp, row_group_size=self.row_group_size, compression="zstd",
                use_dictionary=False, write_statistics=True,
            )  # fmt: skip
            if self.fsync:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ----------------------------------------------------------------- read
    def files(self, dataset: str, venue: str, symbol: str) -> list[Path]:
        base = self._dir(dataset, venue, symbol)
        return sorted(base.glob("*.parquet")) if base.is_dir() else []

    def _files_in_range(
        self, dataset: str, venue: str, symbol: str, start_ns: int | None, end_ns: int | None
    ) -> list[Path]:
        """The day files that can hold rows of ``[start_ns, end_ns)`` (pruned by file name)."""
        files = self.files(dataset, venue, symbol)
        if start_ns is not None:
            first_day = _date_str(int(start_ns // _DAY_NS))
            files = [f for f in files if f.stem >= first_day]
        if end_ns is not None:
            last_day = _date_str(int((end_ns - 1) // _DAY_NS))
            files = [f for f in files if f.stem <= last_day]
        return files

    def read(
        self,
        dataset: str,
        venue: str,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Rows with ``start_ns <= ts_ns < end_ns`` (open bounds when None), sorted by time."""
        schema = self.schema(dataset)
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise CatalogError(f"empty range: end_ns {end_ns} < start_ns {start_ns}")
        files = self._files_in_range(dataset, venue, symbol, start_ns, end_ns)
        cols = columns or schema.names
        if not files:
            return schema.empty_table().select(cols)
        table = pa.concat_tables([_read_partition(f, schema) for f in files])
        if start_ns is not None or end_ns is not None:
            ts = table.column("ts_ns")
            mask = pa.array(np.ones(table.num_rows, dtype=bool))
            if start_ns is not None:
                mask = pc.and_(mask, pc.greater_equal(ts, start_ns))
            if end_ns is not None:
                mask = pc.and_(mask, pc.less(ts, end_ns))
            table = table.filter(mask)
        return table.select(cols)

    def read_many(
        self,
        dataset: str,
        venue: str,
        symbols: list[str],
        start_ns: int | None = None,
        end_ns: int | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Rows of several symbols in one multi-threaded read, with a ``symbol`` column.

        Same range rule as :meth:`read`; rows are grouped by file, not sorted across symbols.
        """
        import pyarrow.dataset as pads

        schema = self.schema(dataset)
        cols = list(columns or schema.names)
        base = self.root / dataset / venue
        files = [str(f) for sym in symbols for f in self._files_in_range(dataset, venue, sym, start_ns, end_ns)]
        if not files:
            empty = schema.empty_table().select(cols)
            return empty.append_column("symbol", pa.array([], pa.string()))
        part = pads.DirectoryPartitioning(pa.schema([("symbol", pa.string())]))
        try:
            d = pads.dataset(files, schema=schema.append(pa.field("symbol", pa.string())), format="parquet",
                             partitioning=part, partition_base_dir=str(base))  # fmt: skip
        except (pa.ArrowInvalid, OSError):
            for f in files:  # name the bad partition
                _read_partition(Path(f), schema)
            raise
        flt = None
        if start_ns is not None:
            flt = pads.field("ts_ns") >= start_ns
        if end_ns is not None:
            cond = pads.field("ts_ns") < end_ns
            flt = cond if flt is None else flt & cond
        try:
            return d.to_table(columns=cols + ["symbol"], filter=flt)
        except (pa.ArrowInvalid, OSError) as exc:
            for f in files:  # name the bad partition
                _read_partition(Path(f), schema)
            raise CatalogError(f"cannot read {dataset}/{venue}: {exc}") from None


    # ----------------------------------------------------------------- listing
    def datasets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))

    def venues(self, dataset: str) -> list[str]:
        d = self.root / dataset
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def symbols(self, dataset: str, venue: str) -> list[str]:
        d = self.root / dataset / venue
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def partitions(self) -> Iterator[PartitionInfo]:
        for dataset in self.datasets():
            for venue in self.venues(dataset):
                for symbol in self.symbols(dataset, venue):
                    for f in self.files(dataset, venue, symbol):
                        try:
                            md = pq.ParquetFile(f).metadata
                            lo, hi = _ts_range(f, md)
                        except (pa.ArrowInvalid, OSError) as exc:
                            raise _corrupt(f, exc) from None
                        yield PartitionInfo(dataset, venue, symbol, f.stem, md.num_rows, lo, hi, f.stat().st_size)


def _corrupt(path: Path, exc: BaseException) -> CatalogError:
    return CatalogError(
        f"catalog partition {path} cannot be read ({type(exc).__name__}: {exc}); it was left untouched: "
        "move it aside and re-ingest the sources of that day"
    )


def _read_partition(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        return pq.read_table(path, schema=schema)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _corrupt(path, exc) from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ts_range(path: Path, md: pq.FileMetaData) -> tuple[int, int]:
    lo, hi = None, None
    for rg in range(md.num_row_groups):
        col = md.row_group(rg).column(0)  # ts_ns is the first column of every schema
        st = col.statistics
        if st is None or not st.has_min_max:
            t = pq.read_table(path, columns=["ts_ns"]).column(0)
            return int(pc.min(t).as_py()), int(pc.max(t).as_py())
        lo = st.min if lo is None else min(lo, st.min)
        hi = st.max if hi is None else max(hi, st.max)
    return int(lo or 0), int(hi or 0)


def _sort_keys(kind: str) -> list[tuple[str, str]]:
    if kind == "trades":
        return [("ts_ns", "ascending"), ("trade_id", "ascending")]
    if kind == "depth":
        return [("ts_ns", "ascending"), ("last_update_id", "ascending")]
    return [("ts_ns", "ascending")]


def _rows_equal(a: pa.Table, b: pa.Table) -> np.ndarray:
    """Row-wise equality of two equally long tables of one schema (nulls equal nulls)."""
    eq = np.ones(a.num_rows, dtype=bool)
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        same = pc.fill_null(pc.equal(x, y), False)
        both_null = pc.and_(pc.is_null(x), pc.is_null(y))
        eq &= np.asarray(pc.or_(same, both_null).to_numpy(zero_copy_only=False), dtype=bool)
    return eq


def _merge_new(
    old: pa.Table, new: pa.Table, keys: tuple[str, ...]
) -> tuple[pa.Table, int, list[int], list[int]]:
    """Split ``new`` into rows to add, the count already present, the conflicting row indices, and
    the indices of the stored rows they conflict with (same order)."""
    if len(keys) == 1 and pa.types.is_integer(new.schema.field(keys[0]).type):
        old_k = old.column(keys[0]).to_numpy()
        new_k = new.column(keys[0]).to_numpy()
        order = np.argsort(old_k, kind="stable")
        pos = np.searchsorted(old_k, new_k, sorter=order)
        pos = np.minimum(pos, len(old_k) - 1)
        matched = old_k[order[pos]] == new_k if len(old_k) else np.zeros(len(new_k), dtype=bool)
        hits = np.flatnonzero(matched)
        old_idx = order[pos[hits]]
    else:

        def keyset(t: pa.Table) -> list[tuple]:
            return list(zip(*[t.column(k).to_pylist() for k in keys]))

        old_index = {k: i for i, k in enumerate(keyset(old))}
        new_keys = keyset(new)
        hits = np.array([j for j, k in enumerate(new_keys) if k in old_index], dtype=np.int64)
        old_idx = np.array([old_index[new_keys[j]] for j in hits], dtype=np.int64)
    if not len(hits):
        return new, 0, [], []
    same = _rows_equal(new.take(pa.array(hits)), old.take(pa.array(old_idx)))
    drop = np.zeros(new.num_rows, dtype=bool)
    drop[hits] = True
    conflicts, stored = [int(j) for j in hits[~same]], [int(i) for i in old_idx[~same]]
    return new.filter(pa.array(~drop)), int(same.sum()), conflicts, stored
