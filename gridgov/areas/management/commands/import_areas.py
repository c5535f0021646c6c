import getpass

from django.core.management.base import BaseCommand, CommandError

from gridgov.areas.importer import BadFile, ImportRejected, areas_import, report_text
from gridgov.areas.models import LEVELS


def who_runs_this():
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return ""


class Command(BaseCommand):
    help = (
        "导入一层边界（GeoJSON、Shapefile、GeoPackage），全部成功或全部不变 / import one level of "
        "boundaries, all or nothing; the validation report is printed and kept in ImportRun.report"
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="GeoJSON, Shapefile (.shp) or GeoPackage (.gpkg)")
        parser.add_argument("--level", required=True, choices=list(LEVELS))
        # Required on purpose: a wrong guess between WGS-84 and GCJ-02 moves every boundary
        # by hundreds of metres, silently.
        parser.add_argument("--crs", required=True, help="wgs84 | gcj02 | bd09 | EPSG:n (e.g. cgcs2000 = wgs84)")
        parser.add_argument("--name-field", default="name")
        parser.add_argument("--code-field", help="without it, codes are assigned under the parent")
        parser.add_argument("--parent-field", help="parent code from the file instead of spatial lookup")
        parser.add_argument("--layer", help="layer name (GeoPackage with several layers)")
        parser.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")

    def handle(self, *args, **opts):
        # tqdm redraws with '\r'; Django's OutputWrapper would add a newline to every redraw.
        progress = getattr(self.stderr, "_out", self.stderr) if opts["verbosity"] > 0 else None
        try:
            run = areas_import(
                opts["path"],
                opts["level"],
                opts["crs"],
                name_field=opts["name_field"],
                code_field=opts["code_field"],
                parent_field=opts["parent_field"],
                layer=opts["layer"],
                dry_run=opts["dry_run"],
                actor=who_runs_this(),
                progress=progress,
            )
        except BadFile as exc:
            raise CommandError(str(exc)) from None
        except ImportRejected as exc:
            self.stdout.write(report_text(exc.report))
            raise CommandError(str(exc)) from None
        self.stdout.write(report_text(run.report, run))
        if run.pk:
            self.stdout.write(self.style.SUCCESS(f"导入完成 / import done: ImportRun #{run.pk}"))
