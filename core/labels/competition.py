"""Read and validate the Clog Loss competition CSVs as they are published.

* ``train_metadata.csv``: ``filename,url,project_id,num_frames,crowd_score,tier1,micro,nano``
* ``test_metadata.csv``: ``filename,url,project_id,num_frames``
* ``train_labels.csv``: ``filename,stalled``

A file missing required columns (or unreadable) raises :class:`CsvError` naming the file and the
columns. Problems in single rows (a duplicate filename, a missing value, a crowd score that is NaN
or outside [0, 1], a label other than 0/1, ...) never stop the read: each becomes a
:class:`RowIssue` (file, line, filename, problem) and the good rows are kept. Of duplicate
filenames the first row is kept. Extra columns are ignored.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

SPLITS = ("train", "test")
METADATA_COLUMNS = ("filename", "url", "project_id", "num_frames")
CROWD_COLUMNS = ("crowd_score", "tier1", "micro", "nano")
LABEL_COLUMNS = ("filename", "stalled")

_TRUE = {"true", "1", "yes", "t", "y", "1.0"}
_FALSE = {"false", "0", "no", "f", "n", "0.0"}

T = TypeVar("T")


class CsvError(ValueError):
    """A CSV that cannot be used at all (unreadable, or required columns missing)."""


@dataclass(frozen=True)
class RowIssue:
    """One rejected (or not fully applied) row: where it is, which stack it names, what is wrong.

    Used for problems found reading a CSV here and for rows the database refuses (``db.vessels``).
    """

    file: str
    line: int | None
    filename: str | None
    problem: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.filename or '?'}: {self.problem}"


@dataclass(frozen=True)
class MetadataRow:
    """One row of a metadata CSV. The crowd fields are ``None`` in ``test_metadata.csv``."""

    filename: str
    url: str
    project_id: str
    num_frames: int
    crowd_score: float | None = None
    tier1: bool | None = None
    micro: bool | None = None
    nano: bool | None = None


@dataclass(frozen=True)
class LabelRow:
    """One row of a labels CSV: ``stalled`` is 1 (stalled) or 0 (flowing)."""

    filename: str
    stalled: int


@dataclass
class CsvResult(Generic[T]):
    """The good rows of a CSV (in file order) and the issues of the rejected ones."""

    path: Path
    rows: list[T] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    has_crowd: bool = False

    def by_filename(self) -> dict[str, T]:
        """The rows keyed by filename (unique: duplicates were rejected)."""
        return {row.filename: row for row in self.rows}


class _RowError(ValueError):
    """A problem with one value of one row."""


def _text(record: dict, column: str) -> str:
    value = (record.get(column) or "").strip()
    if not value:
        raise _RowError(f"missing {column}")
    return value


def _int(record: dict, column: str, *, minimum: int) -> int:
    value = _text(record, column)
    try:
        number = float(value)
    except ValueError:
        raise _RowError(f"{column} {value!r} is not a number") from None
    if not number.is_integer() or number < minimum:
        raise _RowError(f"{column} {value!r} is not an integer >= {minimum}")
    return int(number)


def _score(record: dict, column: str) -> float:
    value = _text(record, column)
    try:
        number = float(value)
    except ValueError:
        raise _RowError(f"{column} {value!r} is not a number") from None
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise _RowError(f"{column} {value!r} is not between 0 and 1")
    return number


def _bool(record: dict, column: str, expected: str = "true/false") -> bool:
    value = _text(record, column).lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _RowError(f"{column} {value!r} is not {expected}")


def _records(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row dict) for each data row; checks the header first."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise CsvError(f"{path}: cannot read: {err.strerror or err}") from err
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = [name.strip() for name in reader.fieldnames or []]
        except (csv.Error, UnicodeDecodeError) as err:
            raise CsvError(f"{path}: not a readable CSV: {err}") from err
        missing = [name for name in required if name not in header]
        if missing:
            raise CsvError(f"{path}: missing column(s) {', '.join(missing)} "
                           f"(expected {','.join(required)}; found {','.join(header) or 'nothing'})")
        reader.fieldnames = header
        try:
            for record in reader:
                yield reader.line_num, record
        except (csv.Error, UnicodeDecodeError) as err:
            raise CsvError(f"{path}: not a readable CSV near line {reader.line_num}: {err}") from err


def _read(path: str | Path, required: tuple[str, ...], parse: Callable[[dict], T],
          has_crowd: bool = False) -> CsvResult[T]:
    path = Path(path)
    result: CsvResult[T] = CsvResult(path=path, has_crowd=has_crowd)
    first_line: dict[str, int] = {}
    for line, record in _records(path, required):
        filename = (record.get("filename") or "").strip()
        if filename in first_line:
            result.issues.append(RowIssue(str(path), line, filename,
                                          f"duplicate filename (first on line {first_line[filename]}); row ignored"))
            continue
        try:
            row = parse(record)
        except _RowError as err:
            result.issues.append(RowIssue(str(path), line, filename, str(err)))
            continue
        first_line[filename] = line
        result.rows.append(row)
    return result


def _header(path: Path) -> list[str]:
    """The column names of ``path`` (empty if it cannot be read; ``_records`` then says why)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def read_metadata(path: str | Path) -> CsvResult[MetadataRow]:
    """Read ``train_metadata.csv`` or ``test_metadata.csv``.

    The crowd columns are required as a group: a file with any of them is a training metadata
    file and must have all four (``result.has_crowd``); without them the crowd fields are ``None``.
    """
    path = Path(path)
    has_crowd = any(name in CROWD_COLUMNS for name in _header(path))
    required = METADATA_COLUMNS + CROWD_COLUMNS if has_crowd else METADATA_COLUMNS

    def parse(record: dict) -> MetadataRow:
        crowd = {}
        if has_crowd:
            crowd = {"crowd_score": _score(record, "crowd_score"), "tier1": _bool(record, "tier1"),
                     "micro": _bool(record, "micro"), "nano": _bool(record, "nano")}
        return MetadataRow(filename=_text(record, "filename"), url=(record.get("url") or "").strip(),
                           project_id=_text(record, "project_id"),
                           num_frames=_int(record, "num_frames", minimum=1), **crowd)

    return _read(path, required, parse, has_crowd)


def read_labels(path: str | Path) -> CsvResult[LabelRow]:
    """Read ``train_labels.csv``: ``stalled`` must be 0 or 1 (``true``/``false`` accepted)."""

    def parse(record: dict) -> LabelRow:
        return LabelRow(filename=_text(record, "filename"), stalled=int(_bool(record, "stalled", "0 or 1")))

    return _read(path, LABEL_COLUMNS, parse)
