"""Print the demo accounts that load_demo_city made: who to log in as, to see what."""

import unicodedata
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from fixtures.democity import DEMO_EMAIL_DOMAIN, DEMO_PASSWORD
from gridgov.accounts.models import Role
from gridgov.areas.models import LEVEL_BY_LENGTH

ROLE_ORDER: list[str] = [
    Role.ADMIN,
    Role.HOTLINE_CENTER,
    Role.OPERATOR,
    Role.LEADER,
    Role.STREET_OFFICE,
    Role.DEPARTMENT,
    Role.GRID_WORKER,
]
SHOWN_PER_ROLE = 3


def width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text, cols):
    return text + " " * max(0, cols - width(text))


class Command(BaseCommand):
    help = "列出演示账号（用户名、密码、角色、辖区） / list the demo logins"

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help=f"every account, not {SHOWN_PER_ROLE} per role")

    def handle(self, *args, all=False, **options):
        users = list(
            get_user_model()
            .objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}", is_active=True)
            .select_related("department")
        )
        if not users:
            self.stdout.write("没有演示账号 / no demo accounts: python manage.py load_demo_city")
            return
        codes = {c for u in users for c in [u.area_code, *u.grid_codes] if c}
        codes |= {u.department.district_code for u in users if u.department and u.department.district_code}
        names = self.area_names(codes)
        users.sort(key=lambda u: (ROLE_ORDER.index(u.role) if u.role in ROLE_ORDER else 99, u.username))
        rows, hidden = [], {}
        for role in ROLE_ORDER:
            mine = [u for u in users if u.role == role]
            shown = mine if all else mine[:SHOWN_PER_ROLE]
            hidden[role] = len(mine) - len(shown)
            for u in shown:
                rows.append(
                    [
                        u.username,
                        DEMO_PASSWORD,
                        Role(u.role).label,
                        self.scope(u, names),
                        f"{u.last_name}{u.first_name}",
                        u.phone,
                    ]
                )
            if hidden[role]:
                rows.append(["…", "", Role(role).label, f"另有 {hidden[role]} 个 / {hidden[role]} more", "", ""])
        head = ["用户名 username", "密码 password", "角色 role", "辖区 jurisdiction", "姓名 name", "手机 phone"]
        cols = [max(width(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        self.stdout.write("演示账号 / demo logins")
        for r in [head, ["-" * c for c in cols], *rows]:
            self.stdout.write("  ".join(pad(str(v), c) for v, c in zip(r, cols, strict=True)).rstrip())
        if any(hidden.values()):
            self.stdout.write("全部账号 / every account: python manage.py demo_logins --all")

    def area_names(self, codes):
        out: dict[Any, Any] = {}
        for length, model in LEVEL_BY_LENGTH.items():
            wanted = [c for c in codes if len(c) == length]
            if wanted:
                out |= dict(model.objects.current().filter(code__in=wanted).values_list("code", "name"))
        return out

    @staticmethod
    def scope(user, names):
        if user.role == Role.GRID_WORKER:
            return "、".join(names.get(c, c) for c in user.grid_codes) or "—"
        if user.role == Role.DEPARTMENT and user.department:
            d = user.department
            return f"{d.name}（{names.get(d.district_code, d.district_code) if d.district_code else '全市'}）"
        if user.area_code:
            return f"{names.get(user.area_code, '')} {user.area_code}".strip()
        return "全市"
