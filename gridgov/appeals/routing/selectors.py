"""Reads of the appeals catalogue."""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from gridgov.accounts.codes import street_office_code
from gridgov.accounts.models import Department
from gridgov.accounts.selectors import street_office_department, street_office_departments
from gridgov.appeals.models import Category, ResponsibilityRule
from gridgov.areacodes import district_code_of, street_code_of

LEAD = ResponsibilityRule.Role.LEAD


@dataclass(frozen=True)
class RouteCandidate:
    """A department that may handle an appeal, and why: the rule it comes from, or None when
    it is the category's default department (no rule applied)."""

    department: Department
    role: str
    rule: ResponsibilityRule | None
    area_code: str  # where the rule applies: '' (city), a district or a street code

    @property
    def is_default(self) -> bool:
        return self.rule is None


def area_prefixes(code: str) -> list[str]:
    """The area codes a rule may name to cover `code`: city, its district, its street."""
    return [""] + [c for c in (district_code_of(code or ""), street_code_of(code or "")) if c]


def locality_department_code(grid_code: str) -> str:
    """The code of the department a new street office of the grid's street is given ('' for no
    street): for the demo data, which names departments before they exist. Routing finds the
    locality by the link, locality_of."""
    street = street_code_of(grid_code or "")
    return street_office_code(street) if street else ""


def locality_of(grid_code: str) -> Department | None:
    """属地: the street office of the grid's street (Department.street_code), or None."""
    return street_office_department(street_code_of(grid_code or ""))


def route_candidates(category: Category | int, grid_code: str, at: datetime | None = None) -> list[RouteCandidate]:
    """Who handles `category` at `grid_code` (any area code, or '' when the place is unknown)
    according to the rules in force at `at` (default: now).

    Most specific area first (street, then district, then city); within one area lead units
    before assisting ones, then by department code so the order never depends on the plan.
    A department keeps only its most specific entry per role. When no lead rule applies, the
    category's default department is added as lead, flagged `is_default`."""
    if not isinstance(category, Category):
        category = Category.objects.select_related("default_department").get(pk=category)
    rules = (
        ResponsibilityRule.objects.in_force(at)
        .filter(category=category, area_code__in=area_prefixes(grid_code))
        .select_related("department")
    )
    return _ranked(category, rules)


def _ranked(category: Category, rules: Iterable[ResponsibilityRule]) -> list[RouteCandidate]:
    ordered = sorted(rules, key=lambda r: (-len(r.area_code), r.role != LEAD, r.department.code, r.pk))
    out: list[RouteCandidate] = []
    seen: set[tuple[int, str]] = set()
    for rule in ordered:
        if (rule.department_id, rule.role) in seen:
            continue
        seen.add((rule.department_id, rule.role))
        out.append(RouteCandidate(department=rule.department, role=rule.role, rule=rule, area_code=rule.area_code))
    if category.default_department_id and not any(c.role == LEAD for c in out):
        default = category.default_department
        out.append(RouteCandidate(department=default, role=LEAD, rule=None, area_code=""))  # type: ignore[arg-type]
    return out


class RouteBook:
    """What routing reads (the rules, the localities, the police), asked of the database one
    appeal at a time. pipeline.route_step asks a book; BatchRouteBook answers the same
    questions for a batch of appeals from what it read once."""

    def candidates(self, category: Category, grid_code: str, at: datetime) -> list[RouteCandidate]:
        return route_candidates(category, grid_code, at)

    def locality(self, grid_code: str) -> Department | None:
        return locality_of(grid_code)

    def police(self) -> Department | None:
        return Department.objects.filter(kind=Department.Kind.POLICE).order_by("code").first()


class BatchRouteBook(RouteBook):
    """The rules of `categories` that apply anywhere in `grid_codes` and are in force at some
    moment of `times`, read with one query, then filtered per appeal exactly as
    ResponsibilityRule.objects.in_force and route_candidates filter: the same answers."""

    def __init__(
        self, categories: Iterable[Category | None], grid_codes: Collection[str], times: Collection[datetime]
    ) -> None:
        by_pk = {c.pk: c for c in categories if c is not None}
        prefixes = sorted({p for code in grid_codes for p in area_prefixes(code)})
        self.rules: dict[Any, Any] = {}
        if by_pk and times:
            lo, hi = min(times), max(times)
            qs = (
                ResponsibilityRule.objects.filter(
                    category_id__in=sorted(by_pk), area_code__in=prefixes, valid_from__lte=hi
                )
                .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=lo))
                .select_related("department")
            )
            for rule in qs:
                self.rules.setdefault(rule.category_id, []).append(rule)
        self.localities = street_office_departments(street_code_of(code or "") for code in grid_codes)
        self._police: list[Department | None] = []  # read when a risk first asks for it

    def candidates(self, category: Category, grid_code: str, at: datetime) -> list[RouteCandidate]:
        prefixes = set(area_prefixes(grid_code))
        rules = [
            r
            for r in self.rules.get(category.pk, ())
            if r.area_code in prefixes and r.valid_from <= at and (r.valid_to is None or r.valid_to > at)
        ]
        return _ranked(category, rules)

    def locality(self, grid_code: str) -> Department | None:
        return self.localities.get(street_code_of(grid_code or ""))

    def police(self) -> Department | None:
        if not self._police:
            self._police.append(super().police())
        return self._police[0]
