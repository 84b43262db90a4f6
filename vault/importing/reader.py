"""Reading import files: which format a file is, and its data rows as records, each with
the line it starts on.

CSV: UTF-8 (a BOM is allowed), comma separated, RFC 4180 quoting, a header on line 1
whose columns are checked here. JSONL (``.jsonl`` / ``.ndjson``): one JSON object per
line. Bytes that are not UTF-8, malformed CSV or JSON, a wrong number of fields and
unknown keys reject the row (:class:`RowError`) and say so without its values; a file
that cannot be read at all raises :class:`ImportFileError`. What the values mean is
:mod:`vault.importing.validation`'s business.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Final, NoReturn

from vault.importing.errors import ImportFileError
from vault.importing.models import Record, RowError

__all__ = ["count_rows", "file_format", "records", "reject_constant"]

_FORMATS: Final = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of invalid UTF-8
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")


def file_format(path: Path, fmt: str | None) -> str:
    """``csv`` or ``jsonl``: ``fmt`` when given, else what the file name's suffix says."""
    if fmt is not None:
        wanted = fmt.strip().lower()
        if wanted == "ndjson":
            wanted = "jsonl"
        if wanted not in ("csv", "jsonl"):
            raise ImportFileError("unknown import format; use csv or jsonl")
        return wanted
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            f"{path.name}: unknown file type; name it .csv, .jsonl or .ndjson, or give the format"
        )
    return found


def records(
    path: Path,
    fmt: str,
    columns: Sequence[str],
    required: Callable[[set[str]], list[str]],
) -> Iterator[Record | RowError]:
    """Data rows of the file, in order, each with the line it starts on."""
    with _opened(path) as handle:
        try:
            if fmt == "csv":
                yield from _csv_records(handle, path.name, columns, required)
            else:
                yield from _jsonl_records(handle, columns)
        except OSError:
            raise ImportFileError(f"{path.name}: reading failed") from None


def count_rows(path: Path, fmt: str) -> int:
    """How many rows :func:`records` yields (records and rejected rows alike), counted in a
    quick first pass that splits rows and parses nothing: a progress bar's total. A file
    that cannot be read raises :class:`ImportFileError` as :func:`records` would."""
    with _opened(path) as handle:
        try:
            if fmt != "csv":
                rows = 0
                for number, raw in enumerate(handle, start=1):
                    line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
                    rows += bool(line.strip())
                return rows
            reader = csv.reader(_physical_lines(handle), strict=True)
            rows = -1  # the header
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return max(rows, 0)
                except csv.Error:
                    rows += 1  # a malformed record: a rejected row
                    continue
                if rows < 0 or any(cell.strip() for cell in cells):
                    rows += 1
        except OSError:
            raise ImportFileError(f"{path.name}: reading failed") from None


def _opened(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path.name}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path.name}: is a directory, not a file") from None
    except PermissionError:
        raise ImportFileError(f"{path.name}: permission denied") from None
    except OSError:
        raise ImportFileError(f"{path.name}: cannot be opened") from None


def _physical_lines(handle: IO[bytes]) -> Iterator[str]:
    """Each line as text; bytes that are not UTF-8 become lone surrogates, caught per cell."""
    first = True
    for raw in handle:
        if first:
            raw = raw.removeprefix(codecs.BOM_UTF8)  # noqa: PLW2901 - the BOM is not data
            first = False
        yield raw.decode("utf-8", "surrogateescape")


def _csv_records(
    handle: IO[bytes],
    name: str,
    allowed: Sequence[str],
    required: Callable[[set[str]], list[str]],
) -> Iterator[Record | RowError]:
    # The reader is fed one physical line at a time, so ``line_num`` counts file lines and
    # the line a record starts on is one past where the previous record ended.
    reader = csv.reader(_physical_lines(handle), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{name}: the file is empty; line 1 must be a header") from None
    except csv.Error:
        raise ImportFileError(f"{name}: line 1: the header is not well-formed CSV") from None
    columns = _check_header(name, header, allowed, required)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(start, _csv_problem(exc))
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) != len(columns):
            yield RowError(start, f"record: has {len(cells)} fields; the header has {len(columns)}")
            continue
        broken = [
            col for col, cell in zip(columns, cells, strict=True) if _UNDECODABLE.search(cell)
        ]
        if broken:
            yield RowError(start, f"{broken[0]}: is not valid UTF-8")
            continue
        values = {col: cell for col, cell in zip(columns, cells, strict=True) if cell.strip()}
        yield Record(start, values, is_csv=True)


def _csv_problem(exc: csv.Error) -> str:
    # The csv module's messages carry no cell values, but they are not for end users.
    if "field larger than field limit" in str(exc):
        return f"record: a field is longer than {csv.field_size_limit()} characters"
    return "record: is not well-formed CSV (check the quotes)"


def _check_header(
    name: str,
    header: Sequence[str],
    allowed: Sequence[str],
    required: Callable[[set[str]], list[str]],
) -> list[str]:
    if any(_UNDECODABLE.search(h) for h in header):
        raise ImportFileError(f"{name}: line 1: the header is not valid UTF-8")
    columns = [h.strip().lower() for h in header]
    if not any(columns):
        raise ImportFileError(f"{name}: line 1: the header is empty")
    if "" in columns:
        raise ImportFileError(f"{name}: line 1: header column {columns.index('') + 1} has no name")
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        if len(unknown) == len(columns):
            # Probably no header at all: the first row would be data, so name nothing.
            raise ImportFileError(
                f"{name}: line 1: no known column in the header (is it missing?); "
                f"expected some of: {', '.join(allowed)}"
            )
        raise ImportFileError(f"{name}: line 1: unknown column(s): {_names(unknown)}")
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        raise ImportFileError(f"{name}: line 1: column(s) given twice: {', '.join(doubled)}")
    missing = required(set(columns))
    if missing:
        raise ImportFileError(f"{name}: line 1: missing column(s): {', '.join(missing)}")
    return columns


def _names(keys: Sequence[str]) -> str:
    """Unknown column names, shown only when they look like names (never like data)."""
    shown = list(dict.fromkeys(k for k in keys if _COLUMN_NAME.match(k)))
    hidden = len(keys) - sum(1 for k in keys if _COLUMN_NAME.match(k))
    if hidden:
        shown.append(f"{hidden} whose name looks like data (not shown)")
    return ", ".join(shown)


def reject_constant(_: str) -> NoReturn:
    """For ``json.loads``: NaN and Infinity are refused like any other invalid JSON."""
    raise ValueError("NaN and Infinity are not JSON")


def _jsonl_records(handle: IO[bytes], allowed: Sequence[str]) -> Iterator[Record | RowError]:
    for number, raw in enumerate(handle, start=1):
        line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield RowError(number, "record: is not valid UTF-8")
            continue
        try:
            value = json.loads(text, parse_constant=reject_constant)
        except (ValueError, RecursionError):
            yield RowError(number, "record: is not valid JSON")
            continue
        if not isinstance(value, dict):
            yield RowError(number, "record: must be a JSON object")
            continue
        unknown = [k for k in value if k not in allowed]
        if unknown:
            yield RowError(number, f"record: unknown key(s): {_names(unknown)}")
            continue
        yield Record(number, {k: v for k, v in value.items() if v is not None}, is_csv=False)
