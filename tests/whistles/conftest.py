"""A generated city with many grids, and appeals placed on it directly (no intake pipeline):
what the hotspot, rule and whistle tests share."""

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.db import connection

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=TZ)
M_PER_DEG = 111_320.0
_tickets = itertools.count(1)


@dataclass
class GenCity:
    codes: list  # current grid codes, in code order (the order compute uses)
    centres: dict  # code -> (lng, lat), a point inside the grid
    neighbours: dict  # code -> set of neighbouring codes (queen)
    streets: list
    districts: list

    def far_apart(self, k, min_hops=3, exclude=()):
        """k interior grids at least `min_hops` steps apart (and from `exclude`)."""
        chosen = []
        blocked = set()
        for code in [*exclude]:
            blocked |= self.within(code, min_hops - 1)
        for code in sorted(self.codes, key=lambda c: -len(self.neighbours[c])):
            if code in blocked or len(self.neighbours[code]) < 4:
                continue
            chosen.append(code)
            blocked |= self.within(code, min_hops - 1)
            if len(chosen) == k:
                return chosen
        raise AssertionError(f"cannot place {k} grids {min_hops} hops apart")

    def within(self, code, hops):
        seen, frontier = {code}, {code}
        for _ in range(hops):
            frontier = {n for c in frontier for n in self.neighbours[c]} - seen
            seen |= frontier
        return seen


@pytest.fixture
def gencity(db):
    """80 grids in 2 districts and 4 streets, with the demo catalogue (categories, departments,
    responsibility rules); no demo users."""
    from fixtures.democity import load_city
    from gridgov.areas.models import District, Grid, Street
    from gridgov.whistles.neighbours import grid_neighbours

    load_city(grids=80, seed=5, districts=2, streets=4, users=False)
    ids, nbrs = grid_neighbours(connection)
    rows = {g.pk: g for g in Grid.objects.current()}
    codes = [rows[i].code for i in ids]
    centres = {}
    for g in rows.values():
        p = g.geom.point_on_surface
        centres[g.code] = (p.x, p.y)
    return GenCity(
        codes=codes,
        centres=centres,
        neighbours={codes[i]: {codes[j] for j in nb} for i, nb in enumerate(nbrs)},
        streets=sorted(Street.objects.current().values_list("code", flat=True)),
        districts=sorted(District.objects.current().values_list("code", flat=True)),
    )


def offset(lnglat, east_m=0.0, north_m=0.0):
    lng, lat = lnglat
    return (lng + east_m / (M_PER_DEG * math.cos(math.radians(lat))), lat + north_m / M_PER_DEG)


def make_appeals(items, *, state="registered", **common):
    """Bulk-create appeals from (grid_code, (lng, lat), category_code, received_at) tuples."""
    from gridgov.appeals.models import Appeal, Category

    cats = dict(Category.objects.values_list("code", "pk"))
    rows = []
    for grid_code, lnglat, category, received_at in items:
        n = next(_tickets)
        rows.append(
            Appeal(
                ticket_no=f"T{n:09d}",
                text=f"测试诉求{n}",
                grid_code=grid_code,
                position=Point(*lnglat, srid=4326) if lnglat else None,
                category_id=cats[category] if category else None,
                received_at=received_at,
                state=state,
                **common,
            )
        )
    return Appeal.objects.bulk_create(rows, batch_size=2000)


def spread(city, rng, rate, category, start, end, grids=None, jitter_m=150.0):
    """Poisson(rate) appeals per grid, within `jitter_m` of the grid's inner point (so that
    they do not pile up on one spot), received uniformly in [start, end)."""
    items = []
    span = (end - start).total_seconds()
    for code in grids or city.codes:
        for _ in range(rng.poisson(rate)):
            at = start + timedelta(seconds=float(rng.uniform(0, span)))
            east, north = rng.uniform(-jitter_m, jitter_m, 2)
            items.append((code, offset(city.centres[code], east, north), category, at))
    return items


def cluster(city, centre, n_centre, n_neighbour, category, start, end, rng):
    items = []
    span = (end - start).total_seconds()
    for code, n in [(centre, n_centre)] + [(c, n_neighbour) for c in sorted(city.neighbours[centre])]:
        for _ in range(n):
            items.append((code, city.centres[code], category, start + timedelta(seconds=float(rng.uniform(0, span)))))
    return items


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # make_user hashes a password per user; PBKDF2 costs over a second each on a busy machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rng():
    return np.random.default_rng(20261120)
