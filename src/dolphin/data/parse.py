"""CSV/ZIP/gzip parsing into typed Arrow tables, row by row accountable.

Every data line of a file ends up either in the typed table (with its 1-based source line
in ``_line``) or in the list of rejects with a reason; nothing is dropped silently. A file
that cannot be parsed at all raises :class:`DataFormatError` naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dolphin.data.errors import DataFormatError
from dolphin.data.formats import SourceFormat, detect_format
from dolphin.data.schema import DECIMAL, SCHEMAS

__all__ = ["Rejects", "ParsedFile", "read_source_bytes", "parse_file", "parse_bytes"]

_NUMERIC_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NONFINITE_RE = r"(?i)^[+-]?(nan|inf|infinity)$"
_INT_RE = r"^[+-]?\d+$"
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


@dataclass
class Rejects:
    """Rows that failed, with 1-based source line, reason code, detail and raw text."""

    lines: list[np.ndarray] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    details: list[list[str | None]] = field(default_factory=list)
    raws: list[list[str | None]] = field(default_factory=list)

    def add(self, lines: np.ndarray, reason: str, details: list[str | None], raws: list[str | None]) -> None:
        if len(lines):
            self.lines.append(np.asarray(lines, dtype=np.int64))
            self.reasons.append(reason)
            self.details.append(details)
            self.raws.append(raws)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for lines, reason in zip(self.lines, self.reasons):
            out[reason] = out.get(reason, 0) + len(lines)
        return out

    def __len__(self) -> int:
        return int(sum(len(x) for x in self.lines))

    def to_table(self, source: str) -> pa.Table:
        from dolphin.data.schema import QUARANTINE

        if not self.lines:
            return QUARANTINE.empty_table()
        lines = np.concatenate(self.lines)
        reasons = [r for lines_, r in zip(self.lines, self.reasons) for _ in range(len(lines_))]
        details = [d for ds in self.details for d in ds]
        raws = [r for rs in self.raws for r in rs]
        order = np.argsort(lines, kind="stable")
        return pa.table(
            {
                "source": pa.array([source] * len(lines), pa.string()),
                "line": pa.array(lines[order], pa.int64()),
                "reason": pa.array([reasons[i] for i in order], pa.string()),
                "detail": pa.array([details[i] for i in order], pa.string()),
                "raw": pa.array([raws[i] for i in order], pa.string()),
            },
            schema=QUARANTINE,
        )


@dataclass
class ParsedFile:
    """A parsed file: the typed table per symbol (with ``_line``), and the rejects."""

    source: str
    fmt: SourceFormat
    tables: dict[str | None, pa.Table]  # symbol (None: from the file name) -> typed table
    rejects: Rejects
    rows_total: int
    ts_unit: str
    rounded_values: int = 0  # values with more than 18 decimals, rounded half-even
    # The source rows as read (string columns) and their 1-based lines, for quarantine ``raw`` text.
    source_rows: pa.Table | None = field(default=None, repr=False)
    source_lines: np.ndarray | None = field(default=None, repr=False)
    _line_index: tuple | None = field(default=None, repr=False, compare=False)

    def raw_text(self, lines: np.ndarray) -> list[str | None] | None:
        """The source text of the given lines (fields joined by commas; None for a line not found),
        or None when this source has no one-row-per-line text (captures' depth, Bybit, Tardis books)."""
        src = self.source_lines
        if self.source_rows is None or src is None or not len(src):
            return None
        if self._line_index is None:
            sorted_ = bool(np.all(src[1:] > src[:-1]))
            order = None if sorted_ else np.argsort(src, kind="stable")
            srt = src if order is None else src[order]
            if not sorted_ and np.any(srt[1:] == srt[:-1]):
                self._line_index = (None, None)  # several rows per line: no line text
            else:
                self._line_index = (srt, order)
        srt, order = self._line_index
        if srt is None:
            return None
        lines = np.asarray(lines, dtype=np.int64)
        pos = np.minimum(np.searchsorted(srt, lines), len(srt) - 1)
        found = srt[pos] == lines
        rows = pos if order is None else order[pos]
        out: list[str | None] = [None] * len(lines)
        for j, t in zip(np.flatnonzero(found), _raw_rows(self.source_rows, rows[found])):
            out[j] = t
        return out


def read_source_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of a .csv, .csv.gz or .zip (first .csv member, or its only member) file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataFormatError(str(p), f"cannot read: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataFormatError(str(p), f"corrupt gzip stream: {exc}") from None
    if raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if not members and len(zf.namelist()) == 1:
                    members = zf.namelist()
                if not members:
                    raise DataFormatError(str(p), f"zip holds no .csv member (has {zf.namelist()})")
                return zf.read(members[0])
        except zipfile.BadZipFile as exc:
            raise DataFormatError(str(p), f"corrupt zip archive: {exc}") from None
    return raw


def _first_line(data: bytes, source: str) -> str:
    end = data.find(b"\n")
    head = data if end < 0 else data[:end]
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(source, "not UTF-8 text (binary or corrupt file)", line=1) from None


def _read_strings(data: bytes, columns: list[str], has_header: bool, source: str, threads: bool):
    invalid: list[tuple[int | None, str, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=columns, skip_rows=1 if has_header else 0, use_threads=threads,
                block_size=1 << 22,
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataFormatError(source, f"cannot parse as CSV: {exc}") from None
    return table, invalid


def _classify(col: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(ok mask, non-finite mask) for a string column to be read as decimal or int (int64 range)."""
    if kind == "int":
        ok = _int_ok(col)
    else:
        ok = pc.match_substring_regex(col, _NUMERIC_RE).to_numpy(zero_copy_only=False)
    nonfinite = pc.match_substring_regex(col, _NONFINITE_RE).to_numpy(zero_copy_only=False)
    return ok.astype(bool), nonfinite.astype(bool)


_INT64_MAX = "9223372036854775807"
_INT64_MIN_ABS = "9223372036854775808"


def _int_ok(col: pa.Array) -> np.ndarray:
    """Mask of the strings that are integers within int64 (vectorised: digit count, then a
    string comparison for 19-digit values, which orders like the numbers at equal length)."""
    ok = pc.match_substring_regex(col, _INT_RE)
    digits = pc.replace_substring_regex(pc.utf8_trim_whitespace(col), r"^[+-]?0*", "")
    n = pc.utf8_length(digits)
    limit = pc.if_else(pc.starts_with(col, "-"), pa.scalar(_INT64_MIN_ABS), pa.scalar(_INT64_MAX))
    fits = pc.or_(pc.less(n, 19), pc.and_(pc.equal(n, 19), pc.less_equal(digits, limit)))
    return np.asarray(pc.fill_null(pc.and_(ok, fits), False).to_numpy(zero_copy_only=False), dtype=bool)


def _strip_plus(col: pa.Array) -> pa.Array:
    """``"+2"`` -> ``"2"`` (Arrow's integer cast refuses a leading plus sign)."""
    return pc.replace_substring_regex(col, r"^\+", "")


def _fits_scaled(ints: np.ndarray, mult: int) -> np.ndarray:
    """Mask of the values whose product with ``mult`` stays within int64."""
    bound = np.iinfo(np.int64).max // mult
    return (ints <= bound) & (ints >= -bound)


def _symbols(col: pa.Array) -> pa.Array:
    """Vectorised :func:`dolphin.data.formats.normalise_symbol`: ASCII letters and digits, upper case."""
    return pc.utf8_upper(pc.replace_substring_regex(col, r"[^A-Za-z0-9]", ""))


def _hash_id(value: str) -> int:
    """A stable 63-bit integer for a non-numeric trade id (e.g. a UUID)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big") >> 1


def _try_cast(col: pa.Array, typ: pa.DataType) -> pa.Array | None:
    """The column cast to ``typ`` when every value converts cleanly, else None (slow path)."""
    if col.null_count:
        return None
    try:
        return pc.cast(col, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _to_decimal(col: pa.Array, ok: np.ndarray, scale: int | None) -> tuple[pa.Array, np.ndarray, int]:
    """Cast the ok strings to decimal128(38,18).

    Returns (array with nulls where not ok, in-range mask, number of values rounded). Values
    with more than 18 decimals are float artefacts of converted sources (Binance publishes at
    most 8): they are rounded half-even to 18 decimals and counted, never rejected. Only a value
    of 1e20 or more (after rounding) is out of range, and only that value is rejected.
    """
    masked = pc.if_else(pa.array(ok), col, pa.scalar(None, pa.string()))
    in_range = np.ones(len(col), dtype=bool)
    rounded = 0
    try:
        dec = pc.cast(masked, DECIMAL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            wide = pc.cast(masked, pa.decimal128(38, 24))
            dec = pc.cast(pc.round(wide, ndigits=18, round_mode="half_to_even"), DECIMAL)
            rounded = int(pc.sum(pc.not_equal(pc.cast(dec, pa.decimal128(38, 24)), wide)).as_py() or 0)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            dec, in_range, rounded = _to_decimal_mixed(masked, ok)
    if scale:
        dec, scaled_ok, n_rounded = _scale_down(dec, scale)
        in_range &= scaled_ok
        rounded += n_rounded
    return dec, in_range, rounded


# Plain decimals that decimal128(38, 18) holds as written (<= 20 integer digits, <= 18 decimals):
# Arrow casts these; only the others (exponents, more digits) need Python's Decimal.
_PLAIN_DEC_RE = r"^[+-]?(\d{1,20}(\.\d{0,18})?|\.\d{1,18})$"
# Python's default context has 28 significant digits: quantizing 1e10 or more to 18 places
# overflows it. 60 digits hold every decimal128(38, 18) value (and 1e20 rounded up) exactly.
_DEC_CONTEXT_PREC = 60
_DEC_LIMIT = 10**20  # decimal128(38, 18) holds |value| < 1e20


def _to_decimal_mixed(masked: pa.Array, ok: np.ndarray) -> tuple[pa.Array, np.ndarray, int]:
    """Arrow for the plain values, Python's Decimal for the rest, each value judged alone."""
    n = len(masked)
    plain = np.asarray(pc.fill_null(pc.match_substring_regex(masked, _PLAIN_DEC_RE), False)
                       .to_numpy(zero_copy_only=False), dtype=bool)  # fmt: skip
    try:
        fast = pc.cast(pc.if_else(pa.array(plain), masked, pa.scalar(None, pa.string())), DECIMAL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # pragma: no cover - the regex admits castable text
        plain[:] = False
        fast = pa.nulls(n, DECIMAL)
    slow_idx = np.flatnonzero(ok & ~plain)
    in_range = np.ones(n, dtype=bool)
    if not len(slow_idx):
        return fast, in_range, 0
    vals, slow_ok, rounded = _to_decimal_slow(masked.take(pa.array(slow_idx)).to_pylist())
    in_range[slow_idx] = slow_ok
    where = np.zeros(n, dtype=bool)
    where[slow_idx] = True
    return pc.replace_with_mask(fast, pa.array(where), vals), in_range, rounded


def _round_each(values: list, exact) -> tuple[pa.Array, np.ndarray, int]:
    """Each non-null value as ``exact(value, ctx)`` (a Decimal), rounded half-even to 18
    decimals, judged alone: one that is not a number, or is 1e20 or more before or after rounding,
    is out of range (False in the mask, null). Returns (array, in-range mask, number rounded)."""
    from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

    ctx = Context(prec=_DEC_CONTEXT_PREC, rounding=ROUND_HALF_EVEN)
    q, limit = Decimal("1e-18"), Decimal(_DEC_LIMIT)
    in_range = np.ones(len(values), dtype=bool)
    out: list[Decimal | None] = []
    rounded = 0
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            d = exact(v, ctx)
            if abs(d) >= limit:
                raise InvalidOperation
            r = d.quantize(q, context=ctx)
            if abs(r) >= limit:  # 99999999999999999999.9999999999999999995 rounds up to 1e20
                raise InvalidOperation
            rounded += r != d
            out.append(r)
        except InvalidOperation:
            in_range[i] = False
            out.append(None)
    return pa.array(out, DECIMAL), in_range, rounded


def _to_decimal_slow(values: list[str | None]) -> tuple[pa.Array, np.ndarray, int]:
    """Each value rounded half-even to 18 decimals; a value of 1e20 or more is out of range (False)."""
    from decimal import Decimal

    return _round_each(values, lambda v, ctx: Decimal(v))


def _scale_down(dec: pa.Array, scale: int) -> tuple[pa.Array, np.ndarray, int]:
    """Percent -> fraction: ``value / scale``, exact to the 18th decimal, rounded half-even beyond
    (counted); judged per value (a value that does not fit is False in the mask, never an exception)."""
    return _round_each(dec.to_pylist(), lambda v, ctx: ctx.divide(v, scale))


def _ts_scale(values: np.ndarray, unit: str) -> tuple[int, str]:
    if unit == "ns":
        return 1, "ns"
    if unit == "ms":
        return 1_000_000, "ms"
    if unit == "us":
        return 1_000, "us"
    sample = values[: min(len(values), 1000)]
    big = np.median(np.abs(sample)) if len(sample) else 0
    return (1_000, "us") if big >= 1e15 else (1_000_000, "ms")


def parse_bytes(data: bytes, source: str, *, fmt: SourceFormat | None = None) -> ParsedFile:
    """Parse decompressed CSV bytes into typed tables (see module doc)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(source, "not UTF-8 text (binary or corrupt file)", line=line) from None
    first = _first_line(data, source)
    if first.lstrip().startswith("{"):
        return _finish(*_bybit_json_rows(data, source), source)
    if "asks[0].price" in first:
        return _finish(*_tardis_snapshot_rows(data, source), source)
    detected, columns, has_header = detect_format(source, first)
    fmt = fmt or detected
    table, invalid = _read_strings(data, columns, has_header, source, threads=True)
    if invalid and any(n is None for n, _, _ in invalid):
        table, invalid = _read_strings(data, columns, has_header, source, threads=False)
    header_lines = 1 if has_header else 0
    n_rows = table.num_rows
    bad_lines = np.array(sorted(n for n, _, _ in invalid if n is not None), dtype=np.int64)
    total_lines = n_rows + len(invalid)
    all_lines = np.arange(header_lines + 1, header_lines + 1 + total_lines, dtype=np.int64)
    if len(bad_lines):
        line_of_row = all_lines[~np.isin(all_lines, bad_lines)]
    else:
        line_of_row = all_lines
    rejects = Rejects()
    inv_sorted = sorted(invalid, key=lambda x: x[0] or 0)
    if inv_sorted:
        rejects.add(
            np.array([n or 0 for n, _, _ in inv_sorted]),
            "column_count",
            [f"expected {len(columns)} columns, got {k}" for _, _, k in inv_sorted],
            [t for _, t, _ in inv_sorted],
        )
    if not n_rows and not invalid:
        raise DataFormatError(source, "no data rows", line=header_lines + 1)
    return _finish(fmt, table, line_of_row, rejects, total_lines, source)


def _finish(
    fmt: SourceFormat, table: pa.Table, line_of_row: np.ndarray, rejects: Rejects, total_rows: int, source: str
) -> ParsedFile:
    out, keep, ts_unit, rounded = _convert(table, fmt, line_of_row, rejects)
    out = out.append_column("_line", pa.array(line_of_row, pa.int64())).filter(pa.array(keep))
    tables: dict[str | None, pa.Table]
    if fmt.symbol_column:
        # Rows without a symbol were rejected in _convert: every kept row has a non-empty one.
        syms = _symbols(table.column(fmt.symbol_column).combine_chunks().filter(pa.array(keep)))
        syms = np.asarray(syms.to_numpy(zero_copy_only=False), dtype=object)
        tables = {}
        for s in sorted(set(syms)):
            tables[s] = out.filter(pa.array(syms == s))
    else:
        tables = {None: out}
    return ParsedFile(source, fmt, tables, rejects, total_rows, ts_unit, rounded, table, line_of_row)


_DEPTH_COLS = ("symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty", "pu")


def _depth_string_table(rows: list[tuple[str, ...]]) -> pa.Table:
    cols = list(zip(*rows)) if rows else [() for _ in _DEPTH_COLS]
    return pa.table({name: pa.array(list(c), pa.string()) for name, c in zip(_DEPTH_COLS, cols)})


def _bybit_json_rows(data: bytes, source: str):
    """Bybit ``orderbook.<depth>.<SYM>`` JSON lines (snapshot + delta) -> the depth layout.

    One row per level; a line that is not a valid order-book message is one rejected row.
    Bybit's ``u`` increases by one per message, so the chain is checked like Binance spot.
    """
    import dataclasses
    import json

    from dolphin.data.formats import FORMATS

    fmt = dataclasses.replace(next(f for f in FORMATS if f.name == "binance_depth"), name="bybit_orderbook_json")
    rows: list[tuple[str, ...]] = []
    lines_of: list[int] = []
    rejects = Rejects()
    text = data.decode("utf-8").splitlines()
    for lineno, line in enumerate(text, start=1):
        if not line.strip():
            rejects.add(np.array([lineno]), "empty_line", [None], [""])
            continue
        try:
            msg = json.loads(line)
            kind = {"snapshot": "snap", "delta": "set"}[msg["type"]]
            d = msg["data"]
            sym, u, ts = str(d["s"]), str(int(d["u"])), str(int(msg["ts"]))
            levels = [("b", px, q) for px, q in d.get("b", [])] + [("a", px, q) for px, q in d.get("a", [])]
        except (ValueError, KeyError, TypeError) as exc:
            rejects.add(np.array([lineno]), "unparseable", [f"not an order-book message: {exc!r}"[:200]], [line[:500]])
            continue
        for side, px, q in levels:
            rows.append((sym, ts, u, u, side, kind, str(px), str(q), "-1"))
            lines_of.append(lineno)
    if not rows and not len(rejects):
        raise DataFormatError(source, "no data rows", line=1)
    return fmt, _depth_string_table(rows), np.array(lines_of, dtype=np.int64), rejects, len(rows) + len(rejects)


def _tardis_snapshot_rows(data: bytes, source: str):
    """Tardis ``book_snapshot_N`` (one wide row per snapshot) -> depth snapshot rows, one per level.

    Tardis has no exchange update ids: the event time (us) stands in, and chain gaps are not checked.
    """
    import dataclasses

    from dolphin.data.formats import FORMATS

    fmt = dataclasses.replace(next(f for f in FORMATS if f.name == "binance_depth"), name="tardis_book_snapshot",
                              ts_unit="us", chained_ids=False)  # fmt: skip
    header = [c.strip() for c in _first_line(data, source).split(",")]
    table, invalid = _read_strings(data, header, True, source, threads=False)
    rejects = Rejects()
    if invalid:
        rejects.add(np.array([n or 0 for n, _, _ in invalid]), "column_count",
                    [f"expected {len(header)} columns, got {k}" for _, _, k in invalid], [t for _, t, _ in invalid])  # fmt: skip
    known = {"exchange", "symbol", "timestamp", "local_timestamp"}
    levels = []
    for c in header:
        if c in known:
            continue
        side, _, rest = c.partition("[")
        idx, _, what = rest.partition("].")
        if side not in ("asks", "bids") or what not in ("price", "amount") or not idx.isdigit():
            from dolphin.data.errors import UnknownColumnsError

            raise UnknownColumnsError(source, [c], sorted(known) + ["asks[i].price", "asks[i].amount", "bids[i].price",
                                                                     "bids[i].amount"])  # fmt: skip
        if what == "price":
            levels.append((side, int(idx)))
    cols = {c: table.column(c).to_pylist() for c in table.column_names}
    bad = {n for n, _, _ in invalid if n is not None}
    data_lines = [n for n in range(2, 2 + table.num_rows + len(invalid)) if n not in bad]
    rows: list[tuple[str, ...]] = []
    lines_of: list[int] = []
    for r in range(table.num_rows):
        ts = cols["timestamp"][r]
        for side, i in levels:
            px, q = cols[f"{side}[{i}].price"][r], cols[f"{side}[{i}].amount"][r]
            if px == "" and q == "":
                continue  # fewer levels than the layout holds
            rows.append((cols["symbol"][r], ts, ts, ts, side[0], "snap", px, q, "-1"))
            lines_of.append(data_lines[r])
    return fmt, _depth_string_table(rows), np.array(lines_of, dtype=np.int64), rejects, len(rows) + len(rejects)


def _raw_rows(table: pa.Table, idx: np.ndarray) -> list[str]:
    if not len(idx):
        return []
    sub = table.take(pa.array(idx))
    cols = [sub.column(i).to_pylist() for i in range(sub.num_columns)]
    return [",".join(vals) for vals in zip(*cols)]


def _convert(
    table: pa.Table, fmt: SourceFormat, line_of_row: np.ndarray, rejects: Rejects
) -> tuple[pa.Table, np.ndarray, str, int]:
    """Typed columns per the target schema; rows failing conversion are rejected with reasons."""
    schema = SCHEMAS[fmt.kind]
    n = table.num_rows
    keep = np.ones(n, dtype=bool)
    arrays: dict[str, pa.Array] = {}
    ts_unit = ""
    ts_mult = 1
    rounded = 0

    def reject(mask: np.ndarray, reason: str, detail) -> None:
        idx = np.flatnonzero(mask & keep)
        if not len(idx):
            return
        rejects.add(line_of_row[idx], reason, [detail(i) for i in idx], _raw_rows(table, idx))
        keep[idx] = False

    if n:
        empty = np.ones(n, dtype=bool)
        for c in table.columns:
            empty &= pc.equal(pc.utf8_length(c), 0).to_numpy(zero_copy_only=False)
        idx = np.flatnonzero(empty)
        rejects.add(line_of_row[idx], "empty_line", [None] * len(idx), [""] * len(idx))
        keep[idx] = False

    if fmt.symbol_column and fmt.symbol_column in table.column_names:
        # A row names its own symbol: one with none (empty, or only punctuation) is rejected here,
        # never filed under the file name's symbol (that would merge it into another symbol's rows).
        sym_col = table.column(fmt.symbol_column).combine_chunks()
        no_symbol = pc.equal(pc.utf8_length(_symbols(sym_col)), 0).to_numpy(zero_copy_only=False)
        reject(np.asarray(no_symbol, dtype=bool), "unparseable",
               lambda i: f"{fmt.symbol_column}={sym_col[int(i)].as_py()!r}: empty symbol")  # fmt: skip

    for fld in schema:
        src = fmt.fields.get(fld.name)
        if src is None or src not in table.column_names:
            arrays[fld.name] = pa.nulls(n, fld.type)
            continue
        col = table.column(src).combine_chunks()

        def value(i: int, _c=col) -> str:
            return f"{src}={_c[int(i)].as_py()!r}"

        if fld.type == DECIMAL:
            fast = _try_cast(col, DECIMAL) if not fmt.scale.get(fld.name) else None
            if fast is not None:  # every value is a plain decimal with <= 18 places: no row to reject
                arrays[fld.name] = fast
                continue
            ok, nonfinite = _classify(col, "dec")
            reject(nonfinite, "nan_or_inf", value)
            reject(~ok & ~nonfinite, "unparseable", value)
            dec, in_range, n_rounded = _to_decimal(col, ok & keep, fmt.scale.get(fld.name))
            reject(~in_range, "unparseable", lambda i, _v=value: _v(i) + " (|value| >= 1e20)")
            rounded += n_rounded
            arrays[fld.name] = dec
        elif fld.type == pa.int64():
            if fld.name == "prev_update_id":  # -1 / empty mean "none"; anything else must be an int64
                ok, _ = _classify(col, "int")
                none = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0).to_numpy(zero_copy_only=False)
                reject(~ok & ~none, "unparseable", value)
                text = pc.if_else(pa.array(ok), _strip_plus(col), pa.scalar(None, pa.string()))
                vals = pc.cast(text, pa.int64())
                arrays[fld.name] = pc.if_else(pc.less(vals, 0), pa.scalar(None, pa.int64()), vals)
                continue
            fast = _try_cast(col, pa.int64())
            if fast is None:  # Arrow's cast refuses "+2", which the integer rule (and Python) accept
                fast = _try_cast(_strip_plus(col), pa.int64())
            if fast is None and fld.name in fmt.hashed_ids:
                fast = pa.array([_hash_id(v) for v in col.to_pylist()], pa.int64())
            if fast is not None:
                ints = fast.to_numpy()
            else:
                ok, _ = _classify(col, "int")
                reason = "unparseable_timestamp" if fld.name == "ts_ns" else "unparseable"
                reject(~ok, reason, value)
                text = pc.if_else(pa.array(ok & keep), _strip_plus(col), pa.scalar("0"))
                ints = pc.cast(text, pa.int64()).to_numpy()
            if fld.name in ("ts_ns", "local_ts_ns"):
                if fld.name == "ts_ns":
                    ts_mult, ts_unit = _ts_scale(ints[keep], fmt.ts_unit)
                # (local_ts_ns follows ts_ns in the schema and shares its unit.) A value whose
                # nanoseconds overflow int64 would wrap around to an arbitrary date: rejected.
                reject(~_fits_scaled(ints, ts_mult), "unparseable_timestamp", value)
                ints = np.where(keep, ints, 0) * ts_mult
            arrays[fld.name] = pa.array(ints, pa.int64())
        elif fld.type == pa.bool_():
            low = pc.utf8_lower(pc.utf8_trim_whitespace(col))
            if fld.name in fmt.bool_values:
                true_set, false_set = (set(v) for v in fmt.bool_values[fld.name])
            elif fld.name == "is_bid":
                true_set, false_set = {"b", "bid", "bids", "buy"}, {"a", "ask", "asks", "sell"}
            elif fld.name == "is_snapshot":
                true_set, false_set = {"snap", "snapshot"}, {"set", "update", "diff"}
            else:
                true_set, false_set = _TRUE, _FALSE
            is_t = pc.is_in(low, pa.array(sorted(true_set))).to_numpy(zero_copy_only=False)
            is_f = pc.is_in(low, pa.array(sorted(false_set))).to_numpy(zero_copy_only=False)
            reject(~(is_t | is_f), "unparseable", value)
            arrays[fld.name] = pa.array(is_t, pa.bool_())
        else:  # pragma: no cover - schemas hold only the types above
            raise TypeError(f"unsupported field type {fld.type}")
    typed = pa.table([arrays[f.name] for f in schema], schema=schema)
    return typed, keep, ts_unit or fmt.ts_unit, rounded


def parse_file(path: str | Path, *, fmt: SourceFormat | None = None) -> ParsedFile:
    """Parse a .csv / .csv.gz / .zip file (format detected from its name and header)."""
    return parse_bytes(read_source_bytes(path), str(path), fmt=fmt)
