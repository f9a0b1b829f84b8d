"""The one writer of CSV and Excel downloads: formulas defused, types kept, rows whole, in order."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl
import pytest
from openpyxl.utils.escape import unescape

from alliance_app.lib.tabular import FORMULA_STARTS, Table, csv_stream, excel_file


def csv_rows(table: Table) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(csv_stream(table)))))


def excel_cells(table: Table) -> list[list]:
    with excel_file(table, "sheet") as handle:
        sheet = openpyxl.load_workbook(handle)["sheet"]
    return [list(row) for row in sheet.iter_rows()]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_text_that_a_spreadsheet_would_run_gets_an_apostrophe(start):
    table = Table(header=["label"], rows=[[f"{start}1+1"]])
    assert csv_rows(table)[1] == [f"'{start}1+1"]
    (cell,) = excel_cells(table)[1]
    # The file escapes a carriage return as _x000D_; openpyxl hands that on as it stands.
    assert (cell.data_type, unescape(cell.value)) == ("s", f"'{start}1+1")


def test_only_the_first_character_counts():
    table = Table(header=["label"], rows=[["Anna-Lena = mother"], ["'quoted"]])
    assert csv_rows(table)[1:] == [["Anna-Lena = mother"], ["'quoted"]]
    assert [row[0].value for row in excel_cells(table)[1:]] == ["Anna-Lena = mother", "'quoted"]


def test_numbers_stay_numbers_even_below_zero():
    table = Table(header=["a", "b", "c"], rows=[[-12, Decimal("-5.0"), 9.5]])
    assert csv_rows(table)[1] == ["-12", "-5.0", "9.5"]
    cells = excel_cells(table)[1]
    assert [(cell.data_type, cell.value) for cell in cells] == [("n", -12), ("n", -5), ("n", 9.5)]


def test_excel_never_reads_text_as_a_number_or_a_link():
    table = Table(header=["a", "b"], rows=[["0042", "https://evil.example/"]])
    cells = excel_cells(table)[1]
    assert [(cell.data_type, cell.value) for cell in cells] == [
        ("s", "0042"),
        ("s", "https://evil.example/"),
    ]
    assert cells[1].hyperlink is None


def test_a_date_is_an_excel_date_and_an_iso_date_in_csv():
    table = Table(header=["date"], rows=[[date(2026, 1, 5)]])
    assert csv_rows(table)[1] == ["2026-01-05"]
    (cell,) = excel_cells(table)[1]
    assert (cell.is_date, cell.value, cell.number_format) == (
        True,
        datetime(2026, 1, 5),
        "yyyy-mm-dd",
    )


def test_a_moment_is_iso_text_with_its_offset_in_both():
    moment = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    table = Table(header=["at"], rows=[[moment]])
    assert csv_rows(table)[1] == ["2026-01-05T09:30:00+00:00"]
    (cell,) = excel_cells(table)[1]
    assert (cell.data_type, cell.value) == ("s", "2026-01-05T09:30:00+00:00")


def test_nothing_and_empty_text_are_empty_cells():
    table = Table(header=["a", "b", "c"], rows=[[None, "", "x"]])
    assert csv_rows(table)[1] == ["", "", "x"]
    assert [cell.value for cell in excel_cells(table)[1]] == [None, None, "x"]


def test_a_yes_or_no_is_refused_rather_than_spelled_two_ways():
    with pytest.raises(TypeError):
        csv_rows(Table(header=["a"], rows=[[True]]))


def test_every_row_arrives_whole_and_in_order():
    rows = [[f"C-{n}", n, Decimal(n) / 10, date(2026, 1, 1 + n % 28)] for n in range(5000)]
    table = Table(header=["client", "n", "tenth", "date"], rows=iter(rows))
    expected = [
        [code, n, float(tenth), datetime.combine(day, datetime.min.time())]
        for code, n, tenth, day in rows
    ]
    assert [[cell.value for cell in row] for row in excel_cells(table)[1:]] == expected


def test_a_long_csv_streams_in_several_pieces():
    rows = [[f"client {n:05}", "x" * 40] for n in range(3000)]
    pieces = list(csv_stream(Table(header=["client", "note"], rows=iter(rows))))
    assert len(pieces) > 1
    assert list(csv.reader(io.StringIO("".join(pieces))))[1:] == rows
