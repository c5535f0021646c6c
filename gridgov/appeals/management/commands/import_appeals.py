import getpass

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gridgov.appeals.intake import importer

SHOWN_ERRORS = 50


def who_runs_this():
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return ""


class Command(BaseCommand):
    help = (
        "导入12345平台导出的工单（CSV 为 UTF-8 或 GBK，或 XLSX），逐行校验、每500行一批登记，坏行报告原因，重复导入不会重复建单 / "
        "import a 12345 export through the intake pipeline: each row checked alone, good rows registered 500 at a "
        "time; idempotent per external id"
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV (UTF-8 or GBK) or XLSX")
        parser.add_argument("--format", choices=["csv", "xlsx"], help="default: from the file name")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help=f"read FIELD from COLUMN (repeatable); fields: {', '.join(importer.FIELDS)}",
        )
        parser.add_argument("--source-system", default="12345", help="the id space of the external ids")
        parser.add_argument("--dry-run", action="store_true", help="validate every row, register nothing")
        parser.add_argument("--report", help="where to write the row-by-row report (default: next to the input)")

    def handle(self, *args, **opts):
        try:
            table = importer.read_table(opts["path"], opts["format"])
            mapping = importer.resolve_mapping(table.header, importer.parse_map_options(opts["map"]))
        except (importer.ImportFileError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{len(table.rows)} 行，编码 {table.encoding}；列映射：" + "，".join(f"{f}←{c}" for f, c in mapping.items())
        )
        # tqdm redraws with '\r'; Django's OutputWrapper would add a newline to every redraw.
        out = getattr(self.stderr, "_out", self.stderr)

        def progress(rows):
            return tqdm(rows, desc="导入", unit="行", file=out, disable=opts["verbosity"] == 0)

        results = importer.import_rows(
            table,
            mapping,
            source_system=opts["source_system"],
            actor=f"import_appeals:{who_runs_this()}",
            dry_run=opts["dry_run"],
            progress=progress,
        )
        report = importer.write_report(results, opts["report"] or importer.report_path(opts["path"]))
        counts = importer.summarise(results)
        errors = [r for r in results if r.status == "error"]
        if opts["verbosity"] > 0:
            shown = errors if opts["verbosity"] > 1 else errors[:SHOWN_ERRORS]
            for r in shown:
                self.stdout.write(f"  第{r.row}行 {r.external_id}：{r.reason}")
            if len(shown) < len(errors):
                self.stdout.write(f"  ……另有 {len(errors) - len(shown)} 行错误，见报告")
        summary = (
            f"共 {counts['total']} 行：新建 {counts['created']}，已存在 {counts['existing']}，"
            f"错误 {counts['error']}" + (f"，校验通过 {counts['valid']}（试运行，未导入）" if opts["dry_run"] else "")
        )
        style = self.style.WARNING if counts["error"] else self.style.SUCCESS
        self.stdout.write(style(summary))
        self.stdout.write(f"逐行报告 / report: {report}")
