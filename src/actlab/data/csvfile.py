"""CSV files as a :class:`~actlab.data.base.Dataset`: checked before a byte is parsed, read by
pyarrow one block at a time, with the plain-Python reader kept as the reference."""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actlab.data.base import TASKS, Dataset, available_memory
from actlab.errors import ActlabError, suggest

# Values treated as missing in CSV files (compared case-insensitively, after stripping spaces).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"})
# A target of integers with at most this many distinct values is read as class labels.
MAX_INTEGER_CLASSES = 20

# --------------------------------------------------------------------------------------------------
# -- CSV
#
# The reader is pyarrow's streaming CSV reader (a core dependency). Measured on a 93 MB, 200k x 50
# file (45 float, 4 text, 1 integer column) on the shared, loaded 2-core machine: the old hand
# parser (csv module into lists of str) took 12 s and 1.0 GB (issue 14's figures);
# pandas.read_csv(engine="pyarrow") 1.7 s and 437 MB peak RSS (plus 0.55 s to import pandas);
# pyarrow.csv.read_csv 0.6-1.1 s but 306 MB, as it keeps many parsed blocks in flight;
# pyarrow.csv.open_csv (one block at a time) 0.96 s and 182 MB. So: open_csv, each block's
# numeric columns copied out as float64 pieces and the block dropped, text columns kept as Arrow
# strings and encoded once at the end (pyarrow.compute unique/index_in: a dictionary encoding;
# the one-hot block is then one fancy assignment). The whole load_csv: 1.1-1.4 s, 245 MB peak
# RSS including the 60 MB interpreter (benchmarks/load_csv.py).
#
# Behaviour is the old reader's, which stays as ``_read_rows``: it is the reference the tests
# compare the fast path against, and it produces the exact message (row number, field counts,
# UTF-8 reason) whenever pyarrow refuses a file; a file pyarrow refuses but the csv module
# accepts (a quoted newline, say) is loaded from its rows through the same encoding steps.


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _check_path(path: Path) -> None:
    if not path.exists():
        raise ActlabError(
            f"CSV file '{path}' does not exist; check the path (relative to {Path.cwd()})"
        )
    if path.is_dir():
        raise ActlabError(f"'{path}' is a directory; --csv needs a CSV file")
    _check_csv_file(path)


# What cannot be a CSV file is refused before a byte is parsed: a device (/dev/zero never ends), a
# FIFO (blocks), a compressed or binary file (recognised by its first bytes), or a file bigger
# than the memory left (the reader's peak is ~2.6x the file: 245 MB for 93 MB, see above).
_NOT_FILES = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
              (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed (gunzip it first)"),
    (b"PK\x03\x04", "a zip archive (an .xlsx or .zip: export or unzip it as CSV first)"),
    (b"BZh", "bzip2-compressed (bunzip2 it first)"),
    (b"\xfd7zXZ\x00", "xz-compressed (unxz it first)"),
    (b"(\xb5/\xfd", "zstd-compressed (unzstd it first)"),
    (b"PAR1", "a Parquet file (read it with pandas and save it as CSV)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"),
)
CSV_MEMORY_FACTOR = 3  # bytes of memory per byte of file the reader may need at its peak


def _check_csv_file(path: Path) -> None:
    """Refuse what cannot be a CSV file, with one line saying what it is."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ActlabError(f"cannot read CSV file '{path}': {exc.strerror}") from None
    for test, kind in _NOT_FILES:
        if test(st.st_mode):
            raise ActlabError(f"'{path}' is {kind}, not a file; --csv needs a CSV file on disk")
    if not stat.S_ISREG(st.st_mode):
        raise ActlabError(f"'{path}' is not a regular file; --csv needs a CSV file on disk")
    free = available_memory()
    if free is not None and st.st_size * CSV_MEMORY_FACTOR > free:
        raise ActlabError(
            f"CSV file '{path}' is {st.st_size / 2**20:,.0f} MB; reading it needs about "
            f"{CSV_MEMORY_FACTOR}x that, more than the {free / 2**20:,.0f} MB of memory available; "
            "use a sample of its rows, or a machine with more memory"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise ActlabError(f"cannot read CSV file '{path}': {exc.strerror}") from None
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ActlabError(f"'{path}' is {what}, not a CSV text file")
    if b"\x00" in head:
        raise ActlabError(
            f"'{path}' holds binary data (a NUL byte in its first {len(head)} bytes), not CSV "
            "text; give a CSV file saved as UTF-8 text"
        )


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The plain-Python reader: header and rows of str (the reference, and the error path)."""
    _check_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ActlabError(
            f"CSV file '{path}' is not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ActlabError(f"cannot read CSV file '{path}': {exc.strerror}") from None
    if not text.strip():
        raise ActlabError(f"CSV file '{path}' is empty; it needs a header row and data rows")
    reader = csv.reader(io.StringIO(text), _sniff(text[:65536]))
    try:
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:  # a field longer than csv.field_size_limit(), a stray NUL...
        raise ActlabError(
            f"CSV file '{path}' cannot be read as CSV near line {reader.line_num}: {exc} "
            f"(a cell may hold at most {csv.field_size_limit():,} characters); check that it is "
            "a CSV file and that its quotes are balanced"
        ) from None
    if not rows:  # only separators and blanks: ",", ";;"
        raise ActlabError(f"CSV file '{path}' has no values; it needs a header row and data rows")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise ActlabError(f"CSV file '{path}' has a header but no data rows")
    _check_header(path, header)
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ActlabError(
                f"CSV file '{path}': a data row has {len(row)} fields but the header has "
                f"{len(header)} "
                f"(row {line} of the file, counting the header as row 1); fix or remove that row"
            )
    return header, body


def _sniff(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _check_header(path: Path, header: list[str]) -> None:
    for i, h in enumerate(header):
        if not h:
            raise ActlabError(
                f"CSV file '{path}': column {i + 1} has an empty name; give every column a header"
            )
    dupes = [h for h, c in Counter(header).items() if c > 1]
    if dupes:
        raise ActlabError(
            f"CSV file '{path}': column name {dupes[0]!r} appears more than once; rename it"
        )


def _case_variants(word: str) -> list[str]:
    cases = ({c.lower(), c.upper()} for c in word)
    return sorted({"".join(spelling) for spelling in itertools.product(*cases)})


# MISSING spelled in every letter case, for the reader's exact-match null test. "" is left out on
# purpose: an empty cell makes the column text, so the whitespace rules below decide (a row of
# empty cells is skipped, as the plain reader does).
_NULL_SPELLINGS = sorted({v for m in MISSING if m for v in _case_variants(m)})


class _Column:
    """One column: ``numbers`` (float64 pieces in row order, NaN where missing; kept in the
    reader's blocks so that no concatenated copy ever exists) or text ``levels`` + ``codes``."""

    __slots__ = ("codes", "levels", "missing", "numbers")

    def __init__(self) -> None:
        self.numbers: list[np.ndarray] | None = None
        self.levels: list[str] = []
        self.codes: np.ndarray | None = None
        self.missing: np.ndarray | None = None  # bool mask, None when nothing is missing

    def take(self, keep: np.ndarray) -> None:
        """Keep the rows where ``keep`` is True (text levels no longer used are forgotten)."""
        if self.numbers is not None:
            self.numbers = [np.concatenate(self.numbers)[keep]]
        else:
            assert self.codes is not None
            self.levels, self.codes = _compact(self.levels, self.codes[keep])
        self.missing = None


def _text_column(levels: list[str], codes: np.ndarray, *, keep_text: bool = False) -> _Column:
    """Classify a text column the way the plain reader does: a column whose every non-missing
    value parses with float() is numeric; otherwise (or with ``keep_text``: the target) text."""
    col = _Column()
    stripped = [v.strip() for v in levels]
    if len(set(stripped)) < len(stripped):  # " a" and "a" are one value, as the plain reader has it
        stripped, merge = _encode(stripped)
        codes = merge[codes]
    miss = np.array([v.lower() in MISSING for v in stripped], dtype=bool)
    if miss.any():
        col.missing = miss[codes]
        if not col.missing.any():
            col.missing = None
    numbers = [None if m else _as_float(v) for v, m in zip(stripped, miss, strict=True)]
    if keep_text:
        pass
    elif all(x is not None for x, m in zip(numbers, miss, strict=True) if not m) and not miss.all():
        table = np.array([math.nan if x is None else x for x in numbers], dtype=np.float64)
        col.numbers = [table[codes]]
        return col
    col.levels, col.codes = stripped, np.asarray(codes, dtype=np.int64)
    return col


def _read_columns(path: Path, target: str) -> tuple[list[str], list[_Column]]:
    """Header (stripped names) and one ``_Column`` per column, read with pyarrow."""
    import pyarrow as pa  # not pyarrow.compute: importing it alone takes 0.3-0.75 s
    import pyarrow.csv as pacsv

    _check_path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as exc:
        raise ActlabError(f"cannot read CSV file '{path}': {exc.strerror}") from None
    dialect = _sniff(head.decode("utf-8-sig", errors="replace"))

    # No invalid_row_handler: a Python callback run on Arrow's read-ahead thread made the
    # process abort at exit ("terminate called without an active exception", 4 of 16 runs with
    # torch loaded, 0 of 20 without the callback). A line of spaces only (the one case it
    # served) now fails here and goes to the plain reader, which skips it.
    parse = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quotechar or False,
        double_quote=bool(dialect.doublequote),
        escape_char=dialect.escapechar or False,
    )

    def is_number(t: Any) -> bool:
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t))

    as_text: dict[str, Any] = {}
    while True:  # each pass turns at least one more column into text: ends within the width
        convert = pacsv.ConvertOptions(
            null_values=_NULL_SPELLINGS, strings_can_be_null=False, column_types=as_text
        )
        fields: list[Any] = []
        reader = None
        try:
            reader = pacsv.open_csv(path, parse_options=parse, convert_options=convert)
            fields = list(reader.schema)
            names = [f.name.strip() for f in fields]
            if not all(names) or len(set(names)) < len(names):
                raise pa.ArrowInvalid("header")  # the plain reader names the problem
            # Numbers and plain strings are taken as typed; dates, booleans and the target are
            # re-read as text (the target's spelling matters: '1' and '1.0' are two labels), and
            # undecodable bytes go to the plain reader for its UTF-8 message.
            if any(pa.types.is_binary(f.type) for f in fields):
                raise pa.ArrowInvalid("not UTF-8")
            retype = {
                f.name: pa.string() for f, h in zip(fields, names, strict=True)
                if f.name not in as_text
                and (h == target or not (pa.types.is_string(f.type) or is_number(f.type)))
            }
            if retype:
                as_text.update(retype)
                continue
            numeric = [is_number(f.type) for f in fields]
            chunks: list[list[Any]] = [[] for _ in fields]
            for batch in reader:  # one block at a time: the numbers leave Arrow as they come
                for i, arr in enumerate(batch.columns):
                    if numeric[i]:
                        chunks[i].append(_numbers(arr))
                    else:
                        chunks[i].append(arr)
                del batch
            break
        except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
            failed = re.search(r"In CSV column #(\d+): CSV conversion error", str(exc))
            at = int(failed.group(1)) if failed else len(fields)
            column = fields[at].name if at < len(fields) else None
            if column is not None and column not in as_text:  # text further down the file
                as_text[column] = pa.string()
                continue
            return _plain_columns(path, target)  # its message, or the file read by it
        finally:
            # An abandoned streaming reader keeps its read-ahead thread; destroyed at interpreter
            # exit it aborts the process ("terminate called without an active exception", seen
            # in 2 of 12 runs of a non-UTF-8 file). Closing it joins the thread.
            if reader is not None:
                reader.close()
    n = sum(len(c[0]) if numeric[0] else len(c) for c in chunks[0])
    if n == 0:
        raise ActlabError(f"CSV file '{path}' has a header but no data rows")
    texts: dict[int, tuple[list[str], np.ndarray]] = {}
    for i in range(len(fields)):
        if not numeric[i]:
            texts[i] = _dictionary(pa.chunked_array(chunks[i], type=pa.string()))
            chunks[i] = []
    if len(texts) == len(fields):  # rows of empty cells only are skipped, as by the plain reader
        blank = np.logical_and.reduce(
            [np.array([not v.strip() for v in lv], dtype=bool)[cd] for lv, cd in texts.values()]
        )
        if blank.all():
            raise ActlabError(f"CSV file '{path}' has a header but no data rows")
        if blank.any():
            keep = ~blank
            texts = {i: _compact(lv, cd[keep]) for i, (lv, cd) in texts.items()}
    columns: list[_Column] = []
    for i in range(len(fields)):
        if i in texts:
            columns.append(_text_column(*texts.pop(i), keep_text=names[i] == target))
            continue
        col = _Column()
        col.numbers = [values for values, _ in chunks[i]]
        if any(nulls is not None for _, nulls in chunks[i]):
            col.missing = np.concatenate([
                np.zeros(len(values), bool) if nulls is None else nulls
                for values, nulls in chunks[i]
            ])
        chunks[i] = []
        columns.append(col)
    return names, columns


def _plain_columns(path: Path, target: str) -> tuple[list[str], list[_Column]]:
    """``_read_columns`` done by the plain reader (slow; exact messages for malformed files)."""
    header, body = _read_rows(path)
    raw = [_encode([row[i] for row in body]) for i in range(len(header))]
    return header, [
        _text_column(levels, codes, keep_text=h == target)
        for h, (levels, codes) in zip(header, raw, strict=True)
    ]


def _numbers(arr: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """An Arrow integer or float array as float64 (a copy, so the block can go) and its null
    mask (None without nulls). Read from the buffers: Array.to_numpy imports pandas (0.5-1.5 s)."""
    n, offset = len(arr), arr.offset
    code = _ARROW_NUMBERS.get(str(arr.type))
    if code is None:  # pragma: no cover - the CSV reader infers int64 or double
        values = np.array(arr.to_pylist(), dtype=np.float64)
    else:
        dtype = np.dtype(code)
        values = np.frombuffer(arr.buffers()[1], dtype, count=n, offset=offset * dtype.itemsize)
        values = values.astype(np.float64)
    if not arr.null_count:
        return values, None
    bits = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), bitorder="little")
    nulls = bits[offset : offset + n] == 0
    values[nulls] = math.nan
    return values, nulls


_ARROW_NUMBERS = {"int8": "<i1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "uint8": "<u1",
                  "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "float": "<f4",
                  "double": "<f8", "halffloat": "<f2"}


def _dictionary(text: Any) -> tuple[list[str], np.ndarray]:
    """Distinct values and each row's index into them (Arrow's dictionary encoding)."""
    encoded = text.dictionary_encode().chunks
    if not encoded:
        return [], np.zeros(0, np.int64)
    levels = encoded[0].dictionary.to_pylist()
    if all(c.dictionary.equals(encoded[0].dictionary) for c in encoded[1:]):  # one shared table
        return levels, np.concatenate([_numbers(c.indices)[0] for c in encoded]).astype(np.int64)
    return _encode(text.to_pylist())  # pragma: no cover - pyarrow shares one dictionary today


def _compact(levels: list[str], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Forget the levels that ``codes`` no longer uses."""
    used, codes = np.unique(codes, return_inverse=True)
    return [levels[i] for i in used], codes.reshape(-1)


def _encode(values: list[str]) -> tuple[list[str], np.ndarray]:
    levels, codes = np.unique(np.array([v.strip() for v in values], dtype=object),
                              return_inverse=True)
    return [str(v) for v in levels], codes.reshape(-1)
def _malloc_trim() -> Callable[[], Any]:
    """glibc's malloc_trim(0), or a no-op elsewhere. The parsed numbers live in many small
    blocks that glibc keeps after they are freed; handing them back while X fills lowered the peak
    RSS of loading the 93 MB benchmark file from 314 MB to 245 MB."""
    try:
        import ctypes

        return functools.partial(ctypes.CDLL("libc.so.6").malloc_trim, 0)
    except (OSError, AttributeError):
        return lambda: None


def notes(task_note: str, dropped_rows: int, column_note: str = "") -> list[str]:
    """The loader's decisions in words, for the console and the reports."""
    out = [task_note] if task_note else []
    if dropped_rows:
        out.append(f"{dropped_rows} row(s) with missing values left out (--drop-missing)")
    if column_note:
        out.append(column_note)
    return out


def _rows_text(rows: np.ndarray) -> str:
    """'file lines 3, 4, 9 ...': where the first five rows are in the file (the header is line 1;
    a quoted field spanning lines would shift them, which is rare enough to only say so here)."""
    first = ", ".join(str(int(r) + 2) for r in rows[:5])
    more = " ..." if len(rows) > 5 else ""
    return "file line" + ("s " if len(rows) > 1 else " ") + first + more


def _constant(c: _Column) -> bool:
    """One distinct value in every row that has one (missing cells aside)."""
    if c.numbers is not None:
        values = [p[~np.isnan(p)] for p in c.numbers]
        values = [v for v in values if len(v)]
        if not values:
            return True
        lo = min(float(v.min()) for v in values)
        hi = max(float(v.max()) for v in values)
        return lo == hi
    return len([v for v in c.levels if v.strip().lower() not in MISSING]) <= 1


def _id_like(c: _Column, n: int) -> bool:
    """A text column with a value for (almost) every row: an identifier, not a category."""
    return c.numbers is None and len(c.levels) > 100 and len(c.levels) > n // 2


def _take_columns(p: Path, header: list[str], columns: list[_Column], target: str,
                  drop: Sequence[str]) -> tuple[list[str], list[_Column]]:  # fmt: skip
    """``header`` and ``columns`` without the ``drop`` columns (each must exist, not the target)."""
    for name in drop:
        if name == target:
            raise ActlabError(
                f"--drop-columns names the target '{target}'; drop feature columns only"
            )
        if name not in header:
            by_lower = {h.lower(): h for h in header}
            hint = (f"; did you mean '{by_lower[name.lower()]}'?" if name.lower() in by_lower
                    else suggest(name, header))  # fmt: skip
            raise ActlabError(
                f"--drop-columns: no column '{name}' in CSV file '{p}'{hint} "
                f"(columns: {', '.join(header)})"
            )
    keep = [i for i, h in enumerate(header) if h not in set(drop)]
    return [header[i] for i in keep], [columns[i] for i in keep]


def _problems(p: Path, header: list[str], columns: list[_Column], target: str,
              drop_missing: bool) -> tuple[list[str], list[str], list[str]]:  # fmt: skip
    """Every problem of the data at once: (problems with their fixes, columns to drop, constant
    feature columns). Missing values (unless ``drop_missing``), identifier-like text columns,
    constant feature columns (listed with the others; alone they are only a note) and a target
    with one value."""
    n = len(columns[0].missing) if columns[0].missing is not None else None
    if n is None:
        c0 = columns[0]
        n = len(c0.codes) if c0.codes is not None else sum(len(x) for x in c0.numbers or [])
    problems: list[str] = []
    to_drop: list[str] = []
    gaps = [(h, np.flatnonzero(c.missing)) for h, c in zip(header, columns, strict=True)
            if c.missing is not None]
    if gaps and not drop_missing:
        incomplete = np.logical_or.reduce([c.missing for h, c in zip(header, columns, strict=True)
                                           if c.missing is not None])  # fmt: skip
        parts = [f"column '{h}' has {len(rows)} missing value(s) ({_rows_text(rows)})"
                 for h, rows in gaps]  # fmt: skip
        more = f" and {len(parts) - 5} more column(s)" if len(parts) > 5 else ""
        where = parts[0] if len(gaps) == 1 else (
            f"{len(gaps)} columns have missing values: " + ", ".join(parts[:5]) + more)
        # dropping a column is a fix for a few gappy columns, not for gaps spread everywhere
        named = ",".join(h for h, _ in gaps if h != target) if len(gaps) <= 3 else ""
        problems.append(
            f"{where}. actlab does not guess values: fill them in, "
            + (f"drop the column(s) with --drop-columns {named}, or " if named else "or ")
            + f"leave out the {int(incomplete.sum())} incomplete row(s) with --drop-missing"
        )
    for h, c in zip(header, columns, strict=True):
        if h != target and _id_like(c, n):
            problems.append(
                f"column '{h}' is text with {len(c.levels)} distinct values in {n} rows (an "
                f"identifier?): one-hot encoding it would not generalise; drop it "
                f"(--drop-columns {h})"
            )
            to_drop.append(h)
    constant = [h for h, c in zip(header, columns, strict=True) if h != target and _constant(c)]
    y_col = columns[header.index(target)]
    values = [v for v in (y_col.levels or []) if v.strip().lower() not in MISSING]
    if y_col.codes is not None and len(values) < 2:
        problems.append(
            f"target column '{target}' has "
            + (f"the same value {values[0]!r} in every row" if values else "no values")
            + ": there is nothing to learn; choose another --target or add rows with other values"
        )
    if problems and constant:
        problems.append(
            f"constant column(s) {', '.join(repr(h) for h in constant)}: one value in every row "
            f"carries no information; drop them (--drop-columns {','.join(constant)})"
        )
        to_drop += constant
    return problems, to_drop, constant


def load_csv(
    path: str | os.PathLike[str],
    target: str,
    *,
    task: str | None = None,
    drop_missing: bool = False,
    drop_columns: Sequence[str] = (),
) -> Dataset:
    """Read a CSV file: ``target`` is the column to predict, every other column is a feature.

    Numeric columns are used as they are; text columns are one-hot encoded (``column=value``). The
    task is inferred from the target unless given: text, or few distinct integers (at most 20),
    means classification; ``Dataset.task_note`` says which rule decided. Missing values (see
    ``MISSING``) are an error naming every affected column, unless ``drop_missing``: then the
    incomplete rows are dropped and counted in ``Dataset.dropped_rows``. ``drop_columns`` are left
    out before anything else is checked. Every problem of the data (missing values, identifier-like
    text columns, constant columns, a target with one value) is reported in one error, each with its
    fix; constant columns alone are only a note (``Dataset.column_note``).
    """
    if task is not None and task not in TASKS:
        raise ActlabError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    p = Path(path)
    header, columns = _read_columns(p, target)
    if target not in header:
        by_lower = {h.lower(): h for h in header}
        hint = (
            f"; did you mean '{by_lower[target.lower()]}'?"
            if target.lower() in by_lower
            else suggest(target, header)
        )
        raise ActlabError(
            f"target column '{target}' is not in CSV file '{p}'{hint} (columns: "
            f"{', '.join(header)})"
        )
    header, columns = _take_columns(p, header, columns, target, tuple(drop_columns))
    problems, to_drop, constant = _problems(p, header, columns, target, drop_missing)
    if problems:
        fix = ""
        flags = [f"--drop-columns {','.join(dict.fromkeys(to_drop))}"] if to_drop else []
        if any("missing value" in x for x in problems):
            flags.append("--drop-missing")
        if flags and not any(x.startswith("target column") for x in problems):
            fix = f" To drop what cannot be used, add: {' '.join(flags)}"
        # one line (the CLI's errors are one line each; a terminal wraps it), numbered
        listed = " ".join(f"({i}) {x.rstrip('.')}." for i, x in enumerate(problems, 1))
        raise ActlabError(f"CSV file '{p}' has {len(problems)} problem(s): {listed}{fix}")
    column_note = ""
    if drop_columns:
        column_note = f"column(s) left out: {', '.join(drop_columns)} (--drop-columns)"
    if constant:
        column_note += ("; " if column_note else "") + (
            f"constant column(s) {', '.join(constant)} carry no information "
            f"(--drop-columns {','.join(constant)} leaves them out)"
        )
    gaps = [(h, np.flatnonzero(c.missing)) for h, c in zip(header, columns, strict=True)
            if c.missing is not None]
    dropped = 0
    if gaps:
        incomplete = np.logical_or.reduce([c.missing for c in columns if c.missing is not None])
        dropped = int(incomplete.sum())
        if not drop_missing:
            parts = [f"column '{h}' has {len(rows)} missing value(s) (rows {_rows_text(rows)}"
                     for h, rows in gaps]
            if len(gaps) == 1:
                where = f"{parts[0]} of '{p}')"
            else:
                where = (f"{len(gaps)} columns have missing values in '{p}': "
                         + ", ".join(part + ")" for part in parts))
            raise ActlabError(
                f"{where}; actlab does not guess values: fill them in, drop the column, or drop "
                f"the {dropped} incomplete row(s) with --drop-missing"
            )
        if dropped == len(incomplete):
            raise ActlabError(
                f"every row of '{p}' has a missing value (columns "
                f"{', '.join(repr(h) for h, _ in gaps)}), so --drop-missing leaves nothing: "
                "drop the emptiest columns from the file instead"
            )
        for c in columns:
            c.take(~incomplete)
    index = header.index(target)
    y_col = columns.pop(index)
    features = header[:index] + header[index + 1:]
    assert y_col.codes is not None or y_col.numbers is not None
    y, y_task, classes, note = _target(y_col, target, task)
    if not columns:
        raise ActlabError(f"CSV file '{p}' has no feature columns besides the target '{target}'")
    n = len(y)
    widths: list[int] = []
    for h, c in zip(features, columns, strict=True):
        if c.numbers is not None:
            if not all(np.isfinite(piece).all() for piece in c.numbers):
                raise ActlabError(
                    f"column '{h}' contains inf or NaN; replace those values with numbers"
                )
            widths.append(1)
            continue
        if len(c.levels) > 100 and len(c.levels) > n // 2:
            raise ActlabError(
                f"column '{h}' is text with {len(c.levels)} distinct values in {n} rows "
                "(an identifier?); "
                "one-hot encoding it would not generalise: drop the column"
            )
        widths.append(len(c.levels))
    # Column-major, filled one column at a time and each source freed as it is copied: the peak
    # holds the parsed columns plus X, never a third copy.
    X = np.zeros((n, sum(widths)), dtype=np.float64, order="F")
    names: list[str] = []
    at = 0
    trim = _malloc_trim()
    trim()
    for j, (h, c, width) in enumerate(zip(features, columns, widths, strict=True)):
        if j % 8 == 7:
            trim()
        if c.numbers is not None:
            row = 0
            while c.numbers:
                piece = c.numbers.pop(0)
                X[row : row + len(piece), at] = piece
                row += len(piece)
            names.append(h)
        else:
            assert c.codes is not None
            order = sorted(range(width), key=c.levels.__getitem__)
            rank = np.empty(width, dtype=np.int64)
            rank[order] = np.arange(width)
            X[np.arange(n), at + rank[c.codes]] = 1.0
            names.extend(f"{h}={c.levels[i]}" for i in order)
        c.numbers = c.codes = None
        at += width
    return Dataset(X, y, y_task, tuple(names), classes, p.stem, target, str(p),
                   task_note=note, dropped_rows=dropped, column_note=column_note)


def _target(
    col: _Column, name: str, task: str | None
) -> tuple[np.ndarray, str, tuple[str, ...], str]:
    """Class ids or values, the task, class names, and why that task (empty if given)."""
    assert col.codes is not None  # the target is always read as text
    distinct = col.levels
    if len(distinct) < 2:
        raise ActlabError(
            f"target column '{name}' has the same value {distinct[0]!r} in every row; there is "
            "nothing to learn: "
            "choose another --target or add rows with other values"
        )
    numbers = [_as_float(v) for v in distinct]
    example = next((v for v, x in zip(distinct, numbers, strict=True)
                    if x is None or not math.isfinite(x)), None)  # fmt: skip
    numeric = example is None
    note = ""
    if task is None:
        integral = numeric and all(float(x).is_integer() for x in numbers)  # type: ignore[arg-type]
        k = len(distinct)
        if not numeric:
            task, why = "classification", f"its values are not all numbers (e.g. {example!r})"
        elif integral and k <= MAX_INTEGER_CLASSES:
            task = "classification"
            why = (f"it holds {k} distinct whole numbers (at most {MAX_INTEGER_CLASSES} are "
                   "read as class labels)")
        elif integral:
            task = "regression"
            why = (f"it holds {k} distinct whole numbers (more than {MAX_INTEGER_CLASSES} are "
                   "read as a quantity)")
        else:
            task, why = "regression", "it holds numbers with fractions"
        other = "regression" if task == "classification" else "classification"
        note = (f"task inferred from target '{name}': {task}, because {why}; "
                f"pass --task {other} to override")
    if task == "regression":
        if not numeric:
            raise ActlabError(
                f"target column '{name}' has the non-numeric value {example!r}, so it cannot be "
                "a regression "
                "target; use --task classification or pick a numeric column"
            )
        table = np.array(numbers, dtype=np.float64)
        return table[col.codes], "regression", (), note
    if numeric:  # "1" and "1.0" are one class; sort numerically and label as "1" rather than "1.0"
        keys = sorted({float(v) for v in distinct})
        pos = {k: i for i, k in enumerate(keys)}
        table = np.array([pos[float(v)] for v in distinct], dtype=np.int64)
        labels = tuple(str(int(k)) if k.is_integer() else repr(k) for k in keys)
        return table[col.codes], "classification", labels, note
    order = sorted(distinct)
    index = {v: i for i, v in enumerate(order)}
    table = np.array([index[v] for v in distinct], dtype=np.int64)
    return table[col.codes], "classification", tuple(order), note
