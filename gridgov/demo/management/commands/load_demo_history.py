"""Load the demo history (fixtures/demohistory.py): places, ~90 days of appeals, planted hotspots;
then compute the hotspots (what beat does hourly), so that the demo's maps show them at once."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fixtures.demohistory import load_history
from gridgov.appeals.models import Category
from gridgov.areas.models import Grid


class Command(BaseCommand):
    help = "生成演示历史诉求（约90天，含热点和重复诉求）/ load about 90 days of demo appeals on the demo city"

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90, help="days of history up to now (default 90)")
        parser.add_argument(
            "--per-day", type=int, default=None, help="appeals a day on average (default 0.7 per grid, at least 30)"
        )
        parser.add_argument("--seed", type=int, default=1, help="same seed, same city and time: same history")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when any appeal exists")
        parser.add_argument("--no-hotspots", action="store_true", help="do not compute hotspots afterwards")

    def handle(self, *args, days, per_day, seed, if_empty, no_hotspots=False, **options):
        if days < 1 or (per_day is not None and per_day < 1):
            raise CommandError("--days and --per-day must be at least 1")
        if if_empty and not (Grid.objects.current().exists() and Category.objects.filter(level=3).exists()):
            # `make run` on a city that is not the demo city (or has no catalogue yet): not an error.
            self.stdout.write("没有网格或诉求分类，未生成演示历史 / no grids or categories: nothing to do")
            return
        try:
            s = load_history(days=days, per_day=per_day, seed=seed, if_empty=if_empty, actor="load_demo_history")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if "skipped" in s:
            self.stdout.write(f"未生成演示历史 / nothing to do: {s['skipped']}")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"演示历史 / demo history (seed {seed}): {s['appeals']} 件诉求, {days} 天, 约 {s['per_day']}/天; "
                f"{s['events']} 条流转记录, {s['assignments']} 条派单, {s['long_term']} 件挂账"
            )
        )
        self.stdout.write("状态 / states: " + ", ".join(f"{k} {v}" for k, v in s["states"].items()))
        self.stdout.write("渠道 / channels: " + ", ".join(f"{k} {v:.1%}" for k, v in s["channels"].items()))
        self.stdout.write("类型 / kinds: " + ", ".join(f"{k} {v:.1%}" for k, v in s["kinds"].items()))
        found = {} if no_hotspots else self._hotspots(s["hotspots"])
        self.stdout.write("热点（预置）/ planted hotspots:")
        for h in s["hotspots"]:
            self.stdout.write(
                f"  {h['grid_code']} {h['category']} {h['category_name']} @ {h['place'] or '—'}: "
                f"{h['count']} 件 since {h['since'][:10]} ({h['per_day']}/天, 常态 {h['baseline_per_day']}/天)"
                + (f"; 检出 / found: {found[h['plant']] or '—'}" if found else "")
            )
        clusters = s["clusters"]
        self.stdout.write(
            f"重复诉求群 / duplicate clusters: {len(clusters)}, "
            f"{sum(c['size'] for c in clusters)} 件, {sum(c['merged'] for c in clusters)} 件已并单"
        )
        for c in clusters[:5]:
            self.stdout.write(
                f"  {c['lead_ticket']} {c['category_name']} @ {c['place'] or c['grid_code']}: {c['size']} 件"
            )
        if len(clusters) > 5:
            self.stdout.write(f"  … ({len(clusters) - 5} more)")
        sec = s["seconds"]
        self.stdout.write(f"({sec['generate']:.1f} s generate, {sec['write']:.1f} s write, {sec['total']:.1f} s total)")

    def _hotspots(self, plants):
        """Recompute hotspots and whistle suggestions now; for each plant, what was found."""
        from gridgov.whistles import compute, rules
        from gridgov.whistles.models import Hotspot

        summary = compute.hotspots_recompute(actor="load_demo_history")
        made = rules.suggestions_make()
        self.stdout.write(
            f"热点 / hotspots: {summary['hot']} 个热点网格, {summary['spots']} 个聚集点, {len(made)} 条吹哨建议 "
            f"({summary['seconds']['total']:.1f} s)"
        )
        level = settings.WHISTLE_CATEGORY_LEVEL
        found = {}
        for h in plants:
            key = compute.category_group(h["category"][: 2 * level]).key
            rows = Hotspot.objects.filter(grid_code=h["grid_code"], active=True).order_by("kind", "window_days")
            found[h["plant"]] = ", ".join(
                f"{x.statistics['bin_name']} {x.window_days} 天"
                if x.kind == Hotspot.Kind.GRID_GI
                else f"聚集点 {x.statistics['count']} 件 {x.window_days} 天"
                for x in rows
                if (x.kind == Hotspot.Kind.GRID_GI and x.category_key == key)
                or (x.kind == Hotspot.Kind.DBSCAN and x.category_key == h["category"])
            )
        return found
