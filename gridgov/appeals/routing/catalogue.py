"""Writes to the responsibility catalogue (职责清单). Rules are never edited in place: a change
ends the rule in force and starts its successor at the same moment, so routing at any
earlier time still finds the rule that applied then."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gridgov.accounts.models import Department
from gridgov.appeals.models import Category, ResponsibilityRule


def responsibility_rule_add(
    *,
    category: Category,
    department: Department,
    area_code: str = "",
    role: str = ResponsibilityRule.Role.LEAD,
    when: datetime | None = None,
    note: str = "",
) -> ResponsibilityRule:
    return ResponsibilityRule.objects.create(
        category=category,
        department=department,
        area_code=area_code,
        role=role,
        valid_from=when or timezone.now(),
        note=note,
    )


@transaction.atomic
def responsibility_rule_end(rule: ResponsibilityRule, *, when: datetime | None = None) -> ResponsibilityRule:
    """End a rule in force; it stays as history."""
    rule = ResponsibilityRule.objects.select_for_update().get(pk=rule.pk)
    if rule.valid_to is not None:
        raise ValueError(f"rule {rule.pk} already ended at {rule.valid_to}")
    rule.valid_to = when or timezone.now()
    rule.save(update_fields=["valid_to"])
    return rule


@transaction.atomic
def responsibility_rule_replace(
    rule: ResponsibilityRule, *, department: Department, when: datetime | None = None, note: str = ""
) -> ResponsibilityRule:
    """Hand a rule's category, area and role to another department from `when` on."""
    when = when or timezone.now()
    old = responsibility_rule_end(rule, when=when)
    return responsibility_rule_add(
        category=old.category, department=department, area_code=old.area_code, role=old.role, when=when, note=note
    )
