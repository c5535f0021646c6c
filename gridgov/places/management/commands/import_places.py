"""Import places (roads, compounds, buildings, points of interest) into the registry."""

from django.core.management.base import BaseCommand, CommandError

from gridgov.areas.management.commands.import_areas import who_runs_this
from gridgov.places.models import Place
from gridgov.places.services import CRS_CHOICES, BadPlaces, places_import, read_places


class Command(BaseCommand):
    help = (
        "导入地名地址（CSV：name,kind,lng,lat,address[,aliases,grid_code]；或 GeoJSON）/ import places "
        "for the geocoder; the same name and kind within 50 m updates the stored place"
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help=".csv or .geojson")
        # Required on purpose, as for import_areas: GCJ-02 read as WGS-84 moves every place by
        # hundreds of metres, silently.
        parser.add_argument("--crs", required=True, choices=CRS_CHOICES)
        parser.add_argument("--name-field", default="name")
        parser.add_argument("--kind-field", default="kind")
        parser.add_argument(
            "--default-kind",
            default=Place.Kind.POI,
            choices=Place.Kind.values,
            help="kind of rows without one (default poi; lines in GeoJSON are roads)",
        )
        parser.add_argument(
            "--skip-bad",
            action="store_true",
            help="import the good rows and list the bad ones (default: refuse the file)",
        )
        parser.add_argument("--dry-run", action="store_true", help="read and check, write nothing")

    def handle(self, *args, path, crs, name_field, kind_field, default_kind, skip_bad, dry_run, **opts):
        try:
            rows, problems = read_places(path, name_field=name_field, kind_field=kind_field, default_kind=default_kind)
        except BadPlaces as exc:
            raise CommandError(str(exc)) from None
        for where, message in problems[:20]:
            self.stderr.write(f"  {where}: {message}")
        if len(problems) > 20:
            self.stderr.write(f"  … and {len(problems) - 20} more")
        if problems and not skip_bad:
            raise CommandError(
                f"{len(problems)} 行有误，未导入任何地名（修正后重试，或加 --skip-bad 只导入正确的行）/ "
                f"{len(problems)} bad rows: nothing imported (fix them, or --skip-bad)"
            )
        if dry_run:
            self.stdout.write(f"{len(rows)} places read, {len(problems)} bad; nothing written (--dry-run)")
            return
        try:
            counts = places_import(rows, crs=crs, source=str(path), actor=who_runs_this())
        except BadPlaces as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                "地名导入完成 / places imported: "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
                + (f", skipped {len(problems)} bad" if problems else "")
            )
        )
