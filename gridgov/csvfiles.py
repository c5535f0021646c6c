"""CSV files that people make and open in a spreadsheet: read with a bound on each cell and a
clear message where a file is broken; written so that a spreadsheet shows each cell as text
instead of running it as a formula. Every CSV the platform reads or writes goes through here.
"""

import csv
import io

# Python's csv module refuses longer cells (its default field_size_limit). No appeal, address or
# name comes near it: a cell this long is nearly always a stray quote that swallowed the rest of
# the file, so it is reported where it starts rather than raised from deep inside the reader.
MAX_CELL_CHARS = 128 * 1024
# What makes Excel / WPS / LibreOffice read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CsvError(ValueError):
    """The file cannot be read as CSV; the message names the row and column (中文 / English)."""


def decode(raw):
    """(text, "utf-8" | "gbk"): UTF-8 (with or without BOM) if it decodes, else GB18030, the
    superset of GBK that Excel on a Chinese Windows writes."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding), "utf-8" if encoding == "utf-8-sig" else "gbk"
        except UnicodeDecodeError:
            continue
    raise CsvError("无法识别文件编码（应为 UTF-8 或 GBK） / the file is neither UTF-8 nor GBK")


def read_table(text):
    """A CSV text → (header, [(line, cells)]): the header stripped, blank records skipped, each
    record numbered by the line it ends on (Excel's row for one-line records). CsvError for an
    over-long cell or a malformed file. Rows of another width than the header are returned as
    they are: whether that is an error is the caller's rule (see `width_problem`)."""
    old = csv.field_size_limit()
    # Reading with a limit above the file's size leaves the check to us, with the row and column
    # the csv module cannot tell. The import commands read one file at a time in one thread.
    csv.field_size_limit(max(old, len(text) + 1))
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header, records, start = None, [], 1
        try:
            for cells in reader:
                for i, cell in enumerate(cells):
                    if len(cell) > MAX_CELL_CHARS:
                        raise CsvError(_too_long(start, header, i))
                if header is None:
                    header = [h.strip() for h in cells]
                elif any(c.strip() for c in cells):
                    records.append((reader.line_num, cells))
                start = reader.line_num + 1
        except csv.Error as exc:
            raise CsvError(f"第 {start} 行起 CSV 格式错误 / malformed CSV from line {start}: {exc}") from None
    finally:
        csv.field_size_limit(old)
    return header or [], records


def _too_long(line, header, index):
    column = f"「{header[index]}」" if header and index < len(header) else f"第 {index + 1} 列"
    return (
        f"第 {line} 行起的记录中，{column}的单元格超过 {MAX_CELL_CHARS} 个字符，多半是引号没有闭合 / "
        f"line {line}, column {index + 1}: a cell longer than {MAX_CELL_CHARS} characters (an unclosed quote?)"
    )


def width_problem(header, cells):
    """A message if the row has more or fewer cells than the header has columns, else None."""
    if len(cells) == len(header):
        return None
    return (
        f"列数不符：表头 {len(header)} 列，本行 {len(cells)} 列（分隔符或引号有误？），未导入 / "
        f"{len(cells)} cells for {len(header)} columns: row not imported"
    )


def spreadsheet_text(value):
    """A text cell as a spreadsheet should show it: one starting like a formula gets a leading
    single quote (OWASP's advice), so '=HYPERLINK(…)' in an appeal is shown, never run.
    Only text is escaped: numbers the platform writes (row numbers, counts, a negative
    coordinate) stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, fh, **options):
        self._writer = csv.writer(fh, **options)

    def writerow(self, row):
        return self._writer.writerow([spreadsheet_text(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(fh, **options):
    """csv.writer for files people open: every text cell through `spreadsheet_text`."""
    return _SafeWriter(fh, **options)
