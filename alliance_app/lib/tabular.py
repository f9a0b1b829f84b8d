"""Every CSV and Excel download is written here, row by row, from one kind of table.

A text cell that starts with = + - @, a tab or a carriage return is read as a formula by
spreadsheet programs (OWASP, "CSV Injection"); such a cell gets a leading apostrophe, the
spreadsheet's own mark for "this is text", in both formats. Only text is touched: numbers stay
numbers (a change of -5.0 is a number, not a formula) and dates stay dates.

Rows are written in order and never held together: CSV streams in pieces, and Excel goes through
xlsxwriter's constant-memory mode, which keeps only the current row and so needs each row whole
before the next.
"""

import csv
import io
import itertools
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO

import xlsxwriter

Cell = str | int | float | Decimal | date | datetime | None

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "yyyy-mm-dd"
# A streamed CSV goes out in pieces of about this many characters rather than line by line.
CSV_PIECE = 64 * 1024


@dataclass(frozen=True)
class Table:
    """A header and its rows; the rows may be a generator that reads the database as it goes."""

    header: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def safe_text(text: str) -> str:
    """The text as a spreadsheet will show it and never run it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_stream(table: Table) -> Iterator[str]:
    """The table as CSV (RFC 4180), in pieces for a streaming response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in itertools.chain([table.header], table.rows):
        writer.writerow(["" if value is None else str(value) for value in map(_cell, row)])
        if buffer.tell() >= CSV_PIECE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def excel_file(table: Table, sheet: str) -> IO[bytes]:
    """The table as one worksheet in a temporary .xlsx file, opened for reading at its start."""
    # Not a `with`: the caller's FileResponse reads the file and closes it.
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    workbook = xlsxwriter.Workbook(
        handle,
        {
            "constant_memory": True,
            # Each cell is written with its own type below; should a generic write() ever creep
            # in, xlsxwriter must still not take a string for a formula, a link or a number.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    worksheet = workbook.add_worksheet(sheet)
    date_format = workbook.add_format({"num_format": DATE_FORMAT})
    for number, row in enumerate(itertools.chain([table.header], table.rows)):
        if number == worksheet.xls_rowmax:
            # xlsxwriter would drop the rest without a word.
            raise ValueError(f"an Excel sheet holds at most {worksheet.xls_rowmax:,} rows")
        for column, value in enumerate(map(_cell, row)):
            match value:
                case str():
                    worksheet.write_string(number, column, value)
                case date():
                    worksheet.write_datetime(number, column, value, date_format)
                case int() | float() | Decimal():
                    worksheet.write_number(number, column, float(value))
    workbook.close()
    handle.seek(0)
    return handle


def _cell(value: Cell) -> Cell:
    """The value as both formats write it: text made safe, a moment as text, the rest as is."""
    match value:
        # An empty text is an empty cell, in Excel as in CSV.
        case "":
            return None
        case str():
            return safe_text(value)
        # Excel has no time zones: a moment stays ISO 8601 text with its offset, in both formats.
        case datetime():
            return value.isoformat()
        case bool():
            raise TypeError("a yes/no cell has no agreed spelling in CSV and Excel")
        case None | int() | float() | Decimal() | date():
            return value
    raise TypeError(f"no spreadsheet cell for a {type(value).__name__}")
