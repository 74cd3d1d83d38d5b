"""CSV for people who open it in a spreadsheet: cells that a spreadsheet would run as a formula are
neutralised, and a long export is produced line by line (for a StreamingHttpResponse), never held whole."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

# Spreadsheets run a cell starting with one of these as a formula (OWASP's "CSV injection"); tab and
# carriage return can hide one behind a first character.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet shows it, never runs it: text starting with = + - @ (or a tab or carriage
    return) gets a leading '. Numbers and dates pass unchanged (a negative number is a number)."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


class _Line:
    """The file-like object csv.writer wants, returning each line instead of storing it."""

    def write(self, line: str) -> str:
        return line


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The header and each row as one CSV line, every cell made safe, one line at a time."""
    writer = csv.writer(_Line())
    yield writer.writerow(list(header))
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])
