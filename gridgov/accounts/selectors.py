"""Reads of people and organisations."""

from collections.abc import Iterable

from gridgov.accounts.models import Department


def street_office_department(street_code: str) -> Department | None:
    """The street office (as a department) of a street: the locality (属地) of its grids."""
    if not street_code:
        return None
    return Department.objects.filter(street_code=street_code).first()


def street_office_departments(street_codes: Iterable[str]) -> dict[str, Department]:
    """{street code: its street office} for the streets that have one, in one query."""
    codes = sorted(set(street_codes) - {""})
    if not codes:
        return {}
    return {d.street_code: d for d in Department.objects.filter(street_code__in=codes)}
