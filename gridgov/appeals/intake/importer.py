"""Importing a 12345 platform export (CSV or XLSX) row by row through the intake pipeline.

Small steps, each testable alone: `read_table` (file → header + rows, encoding detected),
`resolve_mapping` (our fields → the file's columns, Chinese defaults), `row_to_input` (one
row → what AppealRegisterInput validates: code values and dates normalised), `import_rows`
(good rows registered 500 at a time through batch.appeal_register_many, which decides each as
appeal_register would; each bad one reported with its reason),
`write_report` (the row-by-row report, CSV next to the input).
"""

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from gridgov import csvfiles
from gridgov.appeals.intake.batch import appeal_register_many
from gridgov.appeals.models import Appeal, Channel, Kind
from gridgov.appeals.serializers import AppealRegisterInput
from gridgov.appeals.workflow import AppealError
from gridgov.areas.locate import BadPoint

SHANGHAI = ZoneInfo("Asia/Shanghai")


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, header, mapping)."""


class RowError(ValueError):
    pass


# Our field → the column names 12345 exports use for it, first match wins.
DEFAULT_COLUMNS = {
    "external_id": ("工单编号", "工单号", "受理编号", "编号"),
    "received_at": ("来电时间", "受理时间", "登记时间", "创建时间"),
    "text": ("诉求内容", "问题描述", "来电内容", "内容"),
    "address_text": ("地址", "事发地址", "问题地址", "事发地点"),
    "lng": ("经度",),
    "lat": ("纬度",),
    "crs": ("坐标系",),
    "appellant_name": ("来电人", "联系人", "诉求人", "姓名"),
    "appellant_phone": ("联系电话", "来电号码", "电话"),
    "channel": ("渠道", "来源渠道", "来源"),
    "kind": ("诉求类型", "诉求性质"),
    "category_code": ("分类编码", "诉求分类编码"),
}
FIELDS = tuple(DEFAULT_COLUMNS)

KIND_WORDS = {
    "咨询": Kind.CONSULTATION,
    "建议": Kind.SUGGESTION,
    "求助": Kind.HELP,
    "投诉": Kind.COMPLAINT,
    "举报": Kind.REPORT,
}
# Checked in order, by substring: the exports spell channels many ways ("12345热线", "市民热线电话").
CHANNEL_WORDS = (
    (("网格",), Channel.GRID_REPORT),
    (("信访",), Channel.PETITION),
    (("信箱", "书记", "市长"), Channel.LEADER_MAILBOX),
    (("媒体", "报纸", "电视", "广播", "舆情"), Channel.MEDIA),
    (("12315", "12328", "12319", "12369", "12333", "归并"), Channel.MERGED_HOTLINE),
    (("app", "小程序", "随手拍", "码上办", "微信", "公众号", "客户端"), Channel.APP),
    (("网站", "网络", "网上", "web"), Channel.WEB),
    (("12345", "电话", "热线", "来电", "phone"), Channel.PHONE),
)
CRS_WORDS = {
    "gps": "wgs84",
    "高德": "gcj02",
    "腾讯": "gcj02",
    "火星": "gcj02",
    "百度": "bd09",
    "天地图": "wgs84",
    "国家2000": "wgs84",
}
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
)


# --- reading ----------------------------------------------------------------------------------


@dataclass
class Table:
    header: list
    rows: list  # [(row_number as the spreadsheet shows it, {column: value})]
    encoding: str = ""
    errors: list = dataclasses.field(default_factory=list)  # [(row_number, reason)]: rows that cannot be read


def decode(raw):
    try:
        return csvfiles.decode(raw)
    except csvfiles.CsvError as exc:
        raise ImportFileError(str(exc)) from None


def cell_value(value):
    """A cell as text: Excel keeps long ticket numbers as floats (2.0261120E+13), dates as datetimes."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, date)):
        return value
    return str(value).strip()


def read_csv(path):
    text, encoding = decode(Path(path).read_bytes())
    try:
        header, records = csvfiles.read_table(text)
    except csvfiles.CsvError as exc:
        raise ImportFileError(f"{Path(path).name}: {exc}") from None
    if not header:
        raise ImportFileError("文件为空 / the file is empty")
    rows, errors = [], []
    for line, record in records:
        # A row wider or narrower than the header has its cells under the wrong columns.
        problem = csvfiles.width_problem(header, record)
        if problem:
            errors.append((line, problem))
        else:
            rows.append((line, dict(zip(header, (cell_value(c) for c in record)))))
    return Table(header, rows, encoding, errors)


def read_xlsx(path):
    # openpyxl only for spreadsheet imports, a rare path.
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise ImportFileError(f"无法读取 XLSX 文件 / cannot read the XLSX file: {exc}") from None
    try:
        sheet = wb.worksheets[0]
        header, rows, errors = None, [], []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [cell_value(v) for v in values]
            if not any(c != "" for c in cells):
                continue
            if header is None:
                header = [str(c).strip() for c in cells]
                while header and header[-1] == "":
                    header.pop()
                continue
            # A sheet pads rows to its widest one; only a filled cell right of the header is wrong.
            while len(cells) > len(header) and cells[-1] == "":
                cells.pop()
            if len(cells) > len(header):
                errors.append((number, csvfiles.width_problem(header, cells)))
                continue
            rows.append((number, dict(zip(header, cells))))
    finally:
        wb.close()
    if header is None:
        raise ImportFileError("文件为空 / the file is empty")
    return Table(header, rows, "xlsx", errors)


def read_table(path, fmt=None):
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt == "csv":
        return read_csv(path)
    if fmt in ("xlsx", "xlsm"):
        return read_xlsx(path)
    raise ImportFileError(f"不支持的格式 / unsupported format {fmt!r}: use csv or xlsx")


# --- mapping ----------------------------------------------------------------------------------


def parse_map_options(options):
    """['text=问题描述', ...] → {'text': '问题描述'}."""
    out = {}
    for option in options or ():
        field, sep, column = option.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ImportFileError(f"--map 应为 字段=列名 / --map expects field=Column, got {option!r}")
        if field not in FIELDS:
            raise ImportFileError(f"未知字段 / unknown field {field!r}; fields: {', '.join(FIELDS)}")
        out[field] = column
    return out


def resolve_mapping(header, overrides=None):
    """Our field → the column it is read from. Explicit --map columns must exist; defaults
    are taken when present. Without a text column nothing can be imported."""
    overrides = overrides or {}
    mapping = {}
    for field in FIELDS:
        if field in overrides:
            if overrides[field] not in header:
                raise ImportFileError(f"文件中没有列 / no column {overrides[field]!r} in the file")
            mapping[field] = overrides[field]
            continue
        column = next((c for c in DEFAULT_COLUMNS[field] if c in header), None)
        if column is not None:
            mapping[field] = column
    if "text" not in mapping:
        raise ImportFileError("找不到诉求内容列，请用 --map text=列名 指定 / no text column: use --map text=Column")
    # Re-running a file must create nothing twice: every row needs the platform's ticket id.
    if "external_id" not in mapping:
        raise ImportFileError(
            "找不到工单编号列，请用 --map external_id=列名 指定 / no external id column: use --map external_id=Column"
        )
    return mapping


# --- one row ----------------------------------------------------------------------------------


def parse_datetime(value):
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time())
    else:
        s = re.sub(r"\s+", " ", str(value).strip())
        s = re.sub(r"(\d{4})年(\d{1,2})月(\d{1,2})日\s*", r"\1-\2-\3 ", s).strip()
        s = s.replace("时", ":").replace("分", ":").replace("秒", "").rstrip(":")
        for fmt in DATETIME_FORMATS:
            try:
                dt = datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
        else:
            raise RowError(f"无法识别的时间 / unreadable date {value!r}")
    # The export's times are Beijing time unless they say otherwise.
    return dt if timezone.is_aware(dt) else dt.replace(tzinfo=SHANGHAI)


def parse_kind(value):
    value = str(value).strip()
    if not value:
        return ""
    if value in Kind.values:
        return value
    for word, kind in KIND_WORDS.items():
        if word in value:
            return kind
    raise RowError(f"未知诉求类型 / unknown appeal kind {value!r} (咨询/建议/求助/投诉/举报)")


def parse_channel(value):
    value = str(value).strip()
    if not value:
        return ""
    if value in Channel.values:
        return value
    low = value.lower()
    for words, channel in CHANNEL_WORDS:
        if any(w in low for w in words):
            return channel
    raise RowError(f"未知渠道 / unknown channel {value!r}")


def parse_crs(value):
    value = str(value).strip()
    if not value:
        return ""
    low = value.lower()
    for word, crs in CRS_WORDS.items():
        if word in low:
            return crs
    return value  # wgs84 / GCJ-02 / BD-09 / CGCS2000 spellings: CRSField normalises them


def row_to_input(raw, mapping, source_system):
    """One row as the API input it would be; RowError for what cannot even be read."""
    get = {field: raw.get(column, "") for field, column in mapping.items()}
    if get.get("external_id") in (None, ""):
        raise RowError("缺少工单编号（重复导入时无法识别） / no external id: the row could be imported twice")
    data = {"source_system": source_system}
    for field in ("external_id", "text", "address_text", "appellant_name", "appellant_phone", "category_code"):
        if get.get(field) not in (None, ""):
            data[field] = str(get[field]).strip()
    if get.get("received_at") not in (None, ""):
        data["received_at"] = parse_datetime(get["received_at"]).isoformat()
    for field in ("lng", "lat"):
        if get.get(field) not in (None, ""):
            data[field] = str(get[field]).strip()
    if get.get("crs"):
        data["crs"] = parse_crs(get["crs"])
    if get.get("kind"):
        data["kind"] = parse_kind(get["kind"])
    if get.get("channel"):
        data["channel"] = parse_channel(get["channel"])
    return {k: v for k, v in data.items() if v != ""}


def errors_text(errors):
    """DRF errors as one line: 'text: 该字段是必填项。; lng: …'."""
    parts = []
    for field, messages in errors.items():
        messages = messages if isinstance(messages, list) else [messages]
        label = "" if field == "non_field_errors" else f"{field}: "
        parts.append(label + " ".join(str(m) for m in messages))
    return "; ".join(parts)


def validate_row(raw, mapping, source_system, validate=None):
    """→ (register data, None) or (None, reason). `validate`: AppealRegisterInput.validator(text_input=True),
    when the caller checks many rows."""
    try:
        data = row_to_input(raw, mapping, source_system)
    except RowError as exc:
        return None, str(exc)
    data, errors = (validate or AppealRegisterInput.validator(text_input=True))(data)
    if data is None:
        return None, errors_text(errors)
    return data, None


# --- the import -------------------------------------------------------------------------------


@dataclass
class RowResult:
    row: int
    status: str  # created | existing | error | valid (dry run)
    external_id: str = ""
    ticket_no: str = ""
    reason: str = ""


STATUS_LABELS = {"created": "已导入", "existing": "已存在（跳过）", "error": "错误", "valid": "校验通过（未导入）"}


def import_rows(table, mapping, *, source_system, actor, dry_run=False, progress=None, chunk=500):
    """Each row alone: a bad row is reported and the next one goes on; a good row is kept even
    if a later one fails. Re-running a file creates nothing twice (source_system + external_id).
    Good rows are registered `chunk` at a time (batch.appeal_register_many, which decides for
    each row what appeal_register would)."""
    results: list[Any] = []
    seen: set[Any] = set()
    pending: list[Any] = []
    validate = AppealRegisterInput.validator(text_input=True)
    rows = table.rows if progress is None else progress(table.rows)

    def register_pending():
        outcomes = appeal_register_many([data for _, data in pending], actor=actor)
        for (result, _data), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, (AppealError, BadPoint)):
                result.status, result.reason = "error", str(outcome)
            elif isinstance(outcome, Exception):  # one broken row must not stop the file; it is reported
                result.status, result.reason = "error", f"{type(outcome).__name__}: {outcome}"
            else:
                appeal, created = outcome
                result.status, result.ticket_no = ("created" if created else "existing"), appeal.ticket_no
        pending.clear()

    for number, raw in rows:
        ext = str(raw.get(mapping.get("external_id", ""), "") or "").strip()
        data, reason = validate_row(raw, mapping, source_system, validate)
        if data is None:
            results.append(RowResult(number, "error", ext, reason=reason))
            continue
        if dry_run:
            key = (data.get("source_system", ""), ext)
            exists = bool(ext) and (
                key in seen or Appeal.objects.filter(source_system=key[0], external_id=ext).exists()
            )
            seen.add(key)
            results.append(RowResult(number, "existing" if exists else "valid", ext))
            continue
        results.append(RowResult(number, "error", ext, reason="not registered"))  # until its chunk is
        pending.append((results[-1], data))
        if len(pending) >= chunk:
            register_pending()
    if pending:
        register_pending()
    results += [RowResult(number, "error", reason=reason) for number, reason in table.errors]
    return sorted(results, key=lambda r: r.row)


def summarise(results):
    counts = {"total": len(results), "created": 0, "existing": 0, "valid": 0, "error": 0}
    for r in results:
        counts[r.status] += 1
    return counts


def report_path(path, now=None):
    now = timezone.localtime(now or timezone.now())
    p = Path(path)
    return p.with_name(f"{p.stem}.report-{now:%Y%m%d-%H%M%S}.csv")


def write_report(results, path):
    """The row-by-row report, UTF-8 with BOM so Excel opens it in Chinese; cells that look like
    formulas (an external id or a reason quoting the row) are written as text."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csvfiles.writer(fh)
        w.writerow(["行号", "状态", "外部工单编号", "系统工单编号", "原因"])
        for r in results:
            w.writerow([r.row, STATUS_LABELS.get(r.status, r.status), r.external_id, r.ticket_no, r.reason])
    return path
