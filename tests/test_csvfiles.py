"""gridgov.csvfiles: the one way the platform reads and writes CSV for people."""

import csv
import io
import re
from pathlib import Path

import pytest

from gridgov import csvfiles

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")'])
def test_formula_like_text_is_written_as_text(value):
    buf = io.StringIO()
    csvfiles.writer(buf).writerow([value, "正常文字", "", 12, -3.5])
    [row] = csv.reader(io.StringIO(buf.getvalue()))
    assert row == ["'" + value, "正常文字", "", "12", "-3.5"]  # numbers the platform writes stay numbers


def test_writerows_escapes_too():
    buf = io.StringIO()
    csvfiles.writer(buf).writerows([["=a"], ["b"]])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["'=a"], ["b"]]


def test_read_table_names_an_over_long_cell_and_restores_the_csv_limit():
    before = csv.field_size_limit()
    with pytest.raises(csvfiles.CsvError, match="第 3 行起的记录中，「b」的单元格超过 131072 个字符"):
        csvfiles.read_table("a,b\n1,2\n3," + "x" * 200_000 + "\n")
    assert csv.field_size_limit() == before
    header, records = csvfiles.read_table(" a ,b\n1," + "x" * 1000 + "\n\n,\n2,3,4\n")
    assert header == ["a", "b"] and [line for line, _ in records] == [2, 5]
    assert csvfiles.width_problem(header, records[0][1]) is None
    assert "表头 2 列，本行 3 列" in csvfiles.width_problem(header, records[1][1])


def test_only_csvfiles_writes_csv():
    # Every CSV the platform writes for people goes through csvfiles.writer (formula escaping).
    offenders = []
    for top in ("gridgov", "maps", "mobile_api"):
        for path in (ROOT / top).rglob("*.py"):
            if path == ROOT / "gridgov" / "csvfiles.py":
                continue
            if re.search(r"csv\.writer\(|DictWriter|from csv import", path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
