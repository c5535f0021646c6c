"""Reads of the appeals catalogue."""

from dataclasses import dataclass

from gridgov.accounts.models import Department

from .models import Category, ResponsibilityRule

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
    def is_default(self):
        return self.rule is None


def area_prefixes(code):
    """The area codes a rule may name to cover `code`: city, its district, its street."""
    code = code or ""
    return [""] + [code[:n] for n in (6, 9) if len(code) >= n]


def route_candidates(category, grid_code, at=None):
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
    rules = sorted(rules, key=lambda r: (-len(r.area_code), r.role != LEAD, r.department.code, r.pk))
    out, seen = [], set()
    for rule in rules:
        if (rule.department_id, rule.role) in seen:
            continue
        seen.add((rule.department_id, rule.role))
        out.append(RouteCandidate(department=rule.department, role=rule.role, rule=rule, area_code=rule.area_code))
    if category.default_department_id and not any(c.role == LEAD for c in out):
        out.append(RouteCandidate(department=category.default_department, role=LEAD, rule=None, area_code=""))
    return out
