"""import_appeals: a 12345 export (CSV in UTF-8 or GBK, XLSX) row by row through the pipeline."""

import csv
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from gridgov.appeals.intake import importer
from gridgov.appeals.models import Appeal
from gridgov.areas import coords

pytestmark = pytest.mark.django_db

HEADER = [
    "工单编号",
    "来电时间",
    "诉求内容",
    "地址",
    "经度",
    "纬度",
    "坐标系",
    "来电人",
    "联系电话",
    "渠道",
    "诉求类型",
    "分类编码",
]


def when(days_ago=2, hours=9):
    return timezone.localtime(timezone.now() - timedelta(days=days_ago)).replace(hour=hours, minute=0, second=0)


def export_rows():
    glng, glat = coords.wgs84_to_gcj02(116.415, 39.91)
    t = when()
    return [
        [
            "BJ-001",
            f"{t:%Y-%m-%d %H:%M:%S}",
            "小区门口垃圾桶满了好几天没人清运，味道很大",
            "甲街道某小区",
            "116.405",
            "39.91",
            "WGS84",
            "张三",
            "13812345678",
            "12345热线",
            "投诉",
            "",
        ],
        [
            "BJ-002",
            f"{t:%Y-%m-%d %H:%M:%S}",
            "",
            "甲街道某小区",
            "116.405",
            "39.91",
            "",
            "李四",
            "",
            "12345热线",
            "",
            "",
        ],
        [
            "BJ-003",
            f"{t:%Y-%m-%d %H:%M:%S}",
            "楼道堆物很多，影响通行",
            "",
            "东经116度",
            "39.91",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        ["BJ-004", "昨天下午", "晚上施工噪音扰民", "", "", "", "", "", "", "", "", ""],
        [
            "BJ-001",
            f"{t:%Y-%m-%d %H:%M:%S}",
            "小区门口垃圾桶满了好几天没人清运，味道很大",
            "",
            "116.405",
            "39.91",
            "",
            "张三",
            "",
            "",
            "",
            "",
        ],
        [
            "BJ-006",
            f"{t:%Y年%m月%d日} 10:30",
            "晚上施工很吵，请求帮忙",
            "甲一第2网格",
            f"{glng:.7f}",
            f"{glat:.7f}",
            "GCJ-02",
            "欧阳娜娜",
            "13912345678，010-68123456",
            "网格上报",
            "求助",
            "010104",
        ],
    ]


def write_csv(path, rows, encoding="utf-8", header=HEADER):
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def run(path, *args):
    out, err = StringIO(), StringIO()
    call_command("import_appeals", str(path), *args, stdout=out, stderr=err)
    return out.getvalue()


def read_report(tmp_path):
    reports = sorted(tmp_path.glob("*.report-*.csv"))
    assert reports, "no report written next to the input"
    with open(reports[-1], encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_good_bad_and_duplicate_rows(city, catalogue, tmp_path):
    path = write_csv(tmp_path / "export.csv", export_rows())
    out = run(path)
    assert "新建 2" in out and "已存在 1" in out and "错误 3" in out
    assert Appeal.objects.count() == 2

    first = Appeal.objects.get(external_id="BJ-001")
    assert first.source_system == "12345" and first.state == "dispatched" and first.channel == "phone"
    assert first.appellant_name == "张三" and first.kind == "complaint" and first.grid_code == "110101001001001"
    assert timezone.localtime(first.received_at).hour == 9
    sixth = Appeal.objects.get(external_id="BJ-006")
    assert sixth.channel == "grid_report" and sixth.kind == "help" and sixth.category.code == "010104"
    assert sixth.appellant_phone == "13912345678，010-68123456"
    assert sixth.position_input["crs"] == "gcj02" and sixth.grid_code == "110101001001002"
    assert timezone.localtime(sixth.received_at).strftime("%H:%M") == "10:30"

    report = read_report(tmp_path)
    by_row = {r["行号"]: r for r in report}
    assert len(report) == 6
    assert by_row["2"]["状态"] == "已导入" and by_row["2"]["系统工单编号"] == first.ticket_no
    assert by_row["3"]["状态"] == "错误" and "text" in by_row["3"]["原因"]
    assert by_row["4"]["状态"] == "错误" and "lng" in by_row["4"]["原因"]
    assert by_row["5"]["状态"] == "错误" and "昨天下午" in by_row["5"]["原因"]
    assert by_row["6"]["状态"] == "已存在（跳过）" and by_row["6"]["系统工单编号"] == first.ticket_no
    assert "第3行" in out and "第5行" in out  # bad rows named in the summary too

    again = run(path)
    assert "新建 0" in again and "已存在 3" in again and Appeal.objects.count() == 2


def test_gbk_csv(city, catalogue, tmp_path):
    path = write_csv(tmp_path / "gbk.csv", export_rows()[:1], encoding="gbk")
    out = run(path)
    assert "编码 gbk" in out and "新建 1" in out
    assert Appeal.objects.get().text == "小区门口垃圾桶满了好几天没人清运，味道很大"


def test_xlsx_with_excel_types(city, catalogue, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["受理时间", "工单号", "问题描述", "经度", "纬度", "联系人", "诉求类型"])
    ws.append(
        [when().replace(tzinfo=None), 2026112000123.0, "小区门口垃圾桶满了没人清运", 116.405, 39.91, "王五", "投诉"]
    )
    ws.append([when().replace(tzinfo=None), 2026112000124.0, None, 116.405, 39.91, "赵六", "咨询"])
    ws.append([None] * 7)  # blank rows are skipped
    ws.append(["2026-13-45 25:00", 2026112000125.0, "楼道堆物", 116.405, 39.91, "", "建议"])
    path = tmp_path / "export.xlsx"
    wb.save(path)
    out = run(path)
    assert "新建 1" in out and "错误 2" in out
    appeal = Appeal.objects.get()
    assert appeal.external_id == "2026112000123" and appeal.appellant_name == "王五"
    rows = {r["行号"]: r["状态"] for r in read_report(tmp_path)}
    assert rows == {"2": "已导入", "3": "错误", "5": "错误"}


def test_map_option_dry_run_and_bad_files(city, catalogue, tmp_path):
    rows = [["X1", "小区门口垃圾桶满了没人清运", "116.405", "39.91"]]
    path = write_csv(tmp_path / "custom.csv", rows, header=["单号", "反映问题", "lng", "lat"])
    with pytest.raises(CommandError, match="text"):
        run(path)
    args = ["--map", "text=反映问题", "--map", "external_id=单号", "--map", "lng=lng", "--map", "lat=lat"]
    out = run(path, *args, "--dry-run")
    assert "校验通过 1" in out and Appeal.objects.count() == 0
    out = run(path, *args, "--source-system", "web")
    assert Appeal.objects.get().source_system == "web"
    with pytest.raises(CommandError, match="no column"):
        run(path, "--map", "text=不存在的列")
    with pytest.raises(CommandError, match="unknown field"):
        run(path, "--map", "colour=反映问题")
    with pytest.raises(CommandError, match="external id"):
        run(path, "--map", "text=反映问题")
    (tmp_path / "bad.txt").write_text("x")
    with pytest.raises(CommandError, match="unsupported format"):
        run(tmp_path / "bad.txt")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("2026-11-20 09:05:00", (2026, 11, 20, 9, 5)),
        ("2026/11/20 9:05", (2026, 11, 20, 9, 5)),
        ("2026年11月20日 09:05", (2026, 11, 20, 9, 5)),
        ("2026年11月20日9时5分", (2026, 11, 20, 9, 5)),
        ("20261120090500", (2026, 11, 20, 9, 5)),
        ("2026-11-20", (2026, 11, 20, 0, 0)),
        (datetime(2026, 11, 20, 9, 5), (2026, 11, 20, 9, 5)),
    ],
)
def test_parse_datetime_is_beijing_time(raw, expected):
    dt = importer.parse_datetime(raw)
    assert (dt.year, dt.month, dt.day, dt.hour, dt.minute) == expected and dt.utcoffset() == timedelta(hours=8)


def test_value_mappings():
    assert importer.parse_channel("市民热线电话") == "phone" and importer.parse_channel("12345热线") == "phone"
    assert (
        importer.parse_channel("微信小程序") == "app" and importer.parse_channel("12315消费者热线") == "merged_hotline"
    )
    assert (
        importer.parse_channel("市长信箱") == "leader_mailbox" and importer.parse_channel("网格员上报") == "grid_report"
    )
    assert importer.parse_kind("投诉") == "complaint" and importer.parse_kind("举报类") == "report"
    assert importer.parse_crs("高德") == "gcj02" and importer.parse_crs("百度坐标") == "bd09"
    with pytest.raises(importer.RowError):
        importer.parse_channel("飞鸽传书")
    with pytest.raises(importer.RowError):
        importer.parse_kind("表扬")
    with pytest.raises(importer.RowError, match="external id"):
        importer.row_to_input(
            {"诉求内容": "x", "工单编号": ""}, {"text": "诉求内容", "external_id": "工单编号"}, "12345"
        )
    assert importer.decode("工单".encode("gbk")) == ("工单", "gbk")
    assert importer.decode("\ufeff工单".encode()) == ("工单", "utf-8")


# --- broken files, ragged rows, formulas in the report (#11) ---------------------------------


def test_an_oversized_cell_names_row_and_column_and_imports_nothing(city, catalogue, tmp_path):
    rows = export_rows()[:1] + [["BJ-007", "", "x" * 140_000, "", "116.405", "39.91", "", "", "", "", "", ""]]
    path = write_csv(tmp_path / "big.csv", rows)
    with pytest.raises(CommandError) as exc:
        run(path)
    message = str(exc.value)
    assert "big.csv" in message and "第 3 行" in message and "「诉求内容」" in message and "131072" in message
    assert Appeal.objects.count() == 0 and not list(tmp_path.glob("*.report-*.csv"))


def test_a_stray_quote_is_reported_where_it_starts(city, catalogue, tmp_path):
    # An unclosed quote in row 3 swallows the rest of the file into one cell.
    path = write_csv(tmp_path / "quote.csv", export_rows()[:1])
    with open(path, "a", encoding="utf-8", newline="") as fh:
        fh.write('BJ-008,,"楼道堆物\r\n' + "BJ-009,,晚上施工噪音扰民,,116.405,39.91,,,,,,\r\n" * 4000)
    with pytest.raises(CommandError, match=r"第 3 行起.*「诉求内容」.*引号"):
        run(path)
    assert Appeal.objects.count() == 0


def test_the_command_exits_non_zero_without_a_traceback(tmp_path):
    import subprocess
    import sys

    from tests.realtime.daphne import ROOT

    path = write_csv(tmp_path / "big.csv", [["BJ-1", "", "x" * 200_000] + [""] * 9])
    r = subprocess.run(
        [sys.executable, "manage.py", "import_appeals", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr and "单元格超过" in r.stderr, r.stderr[-1000:]


def test_rows_of_the_wrong_width_are_reported_not_imported(city, catalogue, tmp_path):
    good = export_rows()[0]
    wide = ["BJ-010", *good[1:], "多出来的一列"]
    narrow = ["BJ-011", *good[1:-2]]
    path = write_csv(tmp_path / "ragged.csv", [good, wide, narrow])
    out = run(path)
    assert "新建 1" in out and "错误 2" in out
    assert list(Appeal.objects.values_list("external_id", flat=True)) == ["BJ-001"]
    by_row = {r["行号"]: r for r in read_report(tmp_path)}
    assert by_row["3"]["状态"] == "错误" and "表头 12 列，本行 13 列" in by_row["3"]["原因"]
    assert by_row["4"]["状态"] == "错误" and "本行 10 列" in by_row["4"]["原因"]
    assert "第3行" in out and "第4行" in out


def test_xlsx_cells_right_of_the_header_are_reported(city, catalogue, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["工单号", "问题描述", "经度", "纬度"])
    ws.append(["X-1", "小区门口垃圾桶满了没人清运", 116.405, 39.91])
    ws.append(["X-2", "楼道堆物", 116.405, 39.91, "没有表头的一格"])
    path = tmp_path / "wide.xlsx"
    wb.save(path)
    out = run(path)
    assert "新建 1" in out and "错误 1" in out
    rows = {r["行号"]: (r["状态"], r["原因"]) for r in read_report(tmp_path)}
    assert rows["2"][0] == "已导入" and rows["3"][0] == "错误" and "列数不符" in rows["3"][1]


def test_the_report_writes_formula_like_cells_as_text(city, catalogue, tmp_path):
    # (cells are read stripped, so a leading tab or CR never reaches the report: tests/test_csvfiles.py)
    ids = ['=HYPERLINK("http://evil.example/","点我")', "+1+1", "-1+1", "@SUM(A1)", "BJ-012"]
    rows = [[ext, "", "", "", "", "", "", "", "", "", "", ""] for ext in ids]  # no text: each an error row
    path = write_csv(tmp_path / "formulas.csv", rows)
    run(path)
    report = read_report(tmp_path)
    assert [r["外部工单编号"] for r in report] == ["'" + ext for ext in ids[:-1]] + ["BJ-012"]
    assert [r["行号"] for r in report] == [str(n) for n in range(2, 7)]  # numbers stay numbers
