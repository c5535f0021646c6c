"""Load the demo city (fixtures/democity.py): boundaries, catalogue and demo accounts."""

import time

from django.core.management.base import BaseCommand, CommandError

from fixtures.democity import load_city, plan_city
from gridgov.areas.models import Grid


class Command(BaseCommand):
    help = "生成并导入演示城市（区、街道、社区、网格、部门、诉求分类、职责清单、演示账号）"

    def add_arguments(self, parser):
        parser.add_argument("--grids", type=int, default=600, help="number of grids (default 600)")
        parser.add_argument("--seed", type=int, default=1, help="random seed: same seed, same city (default 1)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when grids are already loaded")
        parser.add_argument("--no-users", action="store_true", help="boundaries and catalogue only")

    def handle(self, *args, grids, seed, if_empty, no_users, **options):
        if grids < 1:
            raise CommandError("--grids must be at least 1")
        have = Grid.objects.current().count()
        if have and if_empty:
            self.stdout.write(f"已有 {have} 个网格，未导入演示城市 / {have} grids already loaded: nothing to do")
            return
        t0 = time.perf_counter()
        try:
            city = plan_city(grids, seed)
            planned_s = time.perf_counter() - t0
            summary = load_city(city, users=not no_users, actor="load_demo_city")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        c, made = summary["counts"], summary["created"]
        self.stdout.write(
            self.style.SUCCESS(
                f"演示城市 / demo city (seed {seed}): {c['district']} 区, {c['street']} 街道, {c['community']} 社区, "
                f"{c['grid']} 网格; {c['departments']} 部门, {c['leaf_categories']} 三级分类, {c['rules']} 条职责清单, "
                f"{c['users']} 个演示账号"
            )
        )
        self.stdout.write(
            "新建 / created: "
            + ", ".join(f"{k} {v}" for k, v in made.items())
            + f"  ({planned_s:.1f} s plan, {summary['seconds']['load']:.1f} s load)"
        )
        if not no_users:
            self.stdout.write("演示账号 / demo logins: python manage.py demo_logins")
