"""From hotspots to proposals a street office can act on, and the monthly topic.

Two rules, thresholds in settings (from the environment):

* hotspot: a Gi* hot spot at WHISTLE_RULE_MIN_BIN (2 = 95 %) or more, with at least
  WHISTLE_RULE_MIN_GRID_APPEALS appeals in the grid itself;
* proximity: WHISTLE_RULE_N appeals of one leaf category within WHISTLE_RULE_RADIUS_M metres in
  WHISTLE_RULE_DAYS days: a DBSCAN spot of the recompute (eps R, min points N over D days).

Each open, still significant hotspot that meets a rule gives one WhistleSuggestion for its
street office (the one-to-one hotspot link makes it once per hotspot), pushed live to the street
group with its evidence. A grid hotspot's suggestion covers its hot area: the hot grids joined to
it in the same street, category group and window. A hotspot whose appeals are already in a
pending suggestion of the same street (a neighbouring hot grid, the 7- and 30-day hotspot of one
grid, a building's spot inside a hot grid) adds nothing: the street hears of one problem once.
"""

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from gridgov.appeals.models import Category
from gridgov.areacodes import STREET_LENGTH, level_of
from gridgov.areas.models import District, Street
from gridgov.audit.services import audit_record

from . import compute, notify
from .models import Hotspot, SuggestionState, WhistleEvent, WhistleSuggestion
from .workflow import HOTSPOT_OPEN


def rule_for(hotspot):
    """The rule `hotspot` meets, or None."""
    s = hotspot.statistics or {}
    if hotspot.kind == Hotspot.Kind.GRID_GI:
        if (
            s.get("bin", 0) >= settings.WHISTLE_RULE_MIN_BIN
            and s.get("count", 0) >= settings.WHISTLE_RULE_MIN_GRID_APPEALS
        ):
            return WhistleSuggestion.Rule.HOTSPOT
        return None
    if (
        s.get("count", 0) >= settings.WHISTLE_RULE_N
        and s.get("eps_m", 1e9) <= settings.WHISTLE_RULE_RADIUS_M
        and hotspot.window_days <= settings.WHISTLE_RULE_DAYS
    ):
        return WhistleSuggestion.Rule.PROXIMITY
    return None


def hot_area(hotspot):
    """The hotspot and the hot grids joined to it (queen contiguity through hot grids) of the
    same street, category group and window: one hot area is one problem for the street."""
    if hotspot.kind != Hotspot.Kind.GRID_GI:
        return [hotspot]
    same = {
        h.grid_code: h
        for h in Hotspot.objects.filter(
            kind=Hotspot.Kind.GRID_GI,
            active=True,
            state__in=HOTSPOT_OPEN,
            street_code=hotspot.street_code,
            category_key=hotspot.category_key,
            window_days=hotspot.window_days,
        )
    }
    same[hotspot.grid_code] = hotspot
    weights = compute.grid_weights()
    index = {c: i for i, c in enumerate(weights.codes)}
    matrix = weights.weights.tocsr()
    area, frontier = {hotspot.grid_code}, [hotspot.grid_code]
    while frontier:
        code = frontier.pop()
        if code not in index:
            continue
        i = index[code]
        for j in matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]]:
            other = weights.codes[j]
            if other in same and other not in area:
                area.add(other)
                frontier.append(other)
    return [hotspot] + sorted((same[c] for c in area if c != hotspot.grid_code), key=lambda h: h.grid_code)


def evidence_of(hotspot, rule, area=None):
    s = hotspot.statistics or {}
    area = area or [hotspot]
    extents = [h.geom.extent for h in area]
    w, so = min(x[0] for x in extents), min(x[1] for x in extents)
    e, n = max(x[2] for x in extents), max(x[3] for x in extents)
    appeal_ids = sorted({i for h in area for i in h.appeal_ids})
    evidence = {
        "appeal_ids": appeal_ids,
        "count": len(appeal_ids) if len(area) > 1 else s.get("count", len(appeal_ids)),
        "trend": s.get("trend", ""),
        "bbox": [round(w, 7), round(so, 7), round(e, 7), round(n, 7)],
        "grid_code": hotspot.grid_code,
        "category": hotspot.category_key,
        "window_days": hotspot.window_days,
        "window": [hotspot.window_start.isoformat(), hotspot.window_end.isoformat()],
        "kind": hotspot.kind,
        "area": [
            {
                "hotspot": h.pk,
                "grid_code": h.grid_code,
                "count": h.statistics.get("count"),
                "confidence": h.statistics.get("confidence"),
                "trend": h.statistics.get("trend", ""),
            }
            for h in area
        ],
    }
    if rule == WhistleSuggestion.Rule.HOTSPOT:
        evidence |= {
            "z": s.get("z"),
            "p": s.get("p"),
            "confidence": s.get("confidence"),
            "bin": s.get("bin"),
            "thresholds": {
                "min_bin": settings.WHISTLE_RULE_MIN_BIN,
                "min_grid_appeals": settings.WHISTLE_RULE_MIN_GRID_APPEALS,
            },
            "summary": f"网格{hotspot.grid_code}近{hotspot.window_days}天诉求显著聚集"
            f"（{s.get('count')}件，置信度{round(100 * (s.get('confidence') or 0))}%）",
        }
    else:
        evidence |= {
            "radius_m": s.get("radius_m"),
            "centroid": s.get("centroid"),
            "thresholds": {
                "n": settings.WHISTLE_RULE_N,
                "radius_m": settings.WHISTLE_RULE_RADIUS_M,
                "days": settings.WHISTLE_RULE_DAYS,
            },
            "summary": f"{settings.WHISTLE_RULE_RADIUS_M:.0f}米内{hotspot.window_days}天同类诉求{s.get('count')}件",
        }
    return evidence


def _already_pending(street_code, appeal_ids):
    """A pending suggestion of the street already holds some of these appeals: the same
    problem seen through another window, category group, neighbouring grid or rule."""
    return WhistleSuggestion.objects.filter(
        street_code=street_code, state=SuggestionState.PENDING, appeal_ids__overlap=list(appeal_ids) or [-1]
    ).exists()


def suggestion_for(hotspot, now=None):
    """The suggestion for one hotspot, made now if it meets a rule and has none; else None.
    A grid hotspot's suggestion covers its whole hot area (hot_area): the neighbouring hot
    grids add their appeals to it rather than a suggestion each."""
    rule = rule_for(hotspot)
    if rule is None or not hotspot.active or hotspot.state not in HOTSPOT_OPEN:
        return None
    area = hot_area(hotspot)
    appeal_ids = sorted({i for h in area for i in h.appeal_ids})
    if _already_pending(hotspot.street_code, appeal_ids):
        return None
    now = now or timezone.now()
    try:
        with transaction.atomic():
            suggestion = WhistleSuggestion.objects.create(
                street_code=hotspot.street_code,
                rule=rule,
                hotspot=hotspot,
                category_key=hotspot.category_key,
                appeal_ids=appeal_ids,
                evidence=evidence_of(hotspot, rule, area),
                created_at=now,
            )
            WhistleEvent.objects.create(
                object_type="suggestion",
                object_id=suggestion.pk,
                at=now,
                event="suggest",
                new_state=suggestion.state,
                data={"rule": rule, "hotspot": hotspot.pk},
            )
            audit_record(
                actor="system",
                action="whistles.suggestion.suggest",
                obj=suggestion,
                data={
                    "rule": rule,
                    "hotspot": hotspot.pk,
                    "street_code": hotspot.street_code,
                    "appeals": len(appeal_ids),
                    "area": [h.pk for h in area],
                },
            )
            notify.suggestion_made(suggestion)
    except IntegrityError:  # another run made it first (one per hotspot)
        return None
    return suggestion


def suggestions_make(now=None):
    """Apply the rules to every open, significant hotspot without a suggestion. Running it
    again makes nothing new. Returns the suggestions made."""
    candidates = list(Hotspot.objects.filter(active=True, state__in=HOTSPOT_OPEN, suggestion__isnull=True))
    # Grid hotspots before DBSCAN spots, longer windows first, the strongest first: the broadest
    # evidence, centred on the hottest grid, wins when one problem meets several rules.
    candidates.sort(
        key=lambda h: (
            h.kind != Hotspot.Kind.GRID_GI,
            -h.window_days,
            -(h.statistics.get("z") or 0),
            -(h.statistics.get("count") or 0),
            h.pk,
        )
    )
    made = []
    for hotspot in candidates:
        s = suggestion_for(hotspot, now)
        if s is not None:
            made.append(s)
    return made


# --- 每月一题 --------------------------------------------------------------------------------------


def _month_bounds(month):
    """(first day, start, end) of a month given as 'YYYY-MM' or a date, in local time."""
    if isinstance(month, str):
        month = date.fromisoformat(month + "-01" if len(month) == 7 else month)
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    tz = timezone.get_current_timezone()
    return first, datetime.combine(first, time.min, tzinfo=tz), datetime.combine(following, time.min, tzinfo=tz)


def monthly_topic(district_code, month, *, level=3, top=10):
    """每月一题: the month's most frequent category × street of a district, with the ranking it
    tops and each entry's count in the previous month (a recurring problem ranks high in both).

    `month` is 'YYYY-MM' or a date in the month; months run in local time (Asia/Shanghai).
    `level` 3 ranks leaf categories, 2 or 1 their groups. Merged appeals do not count."""
    if not (level_of(district_code) == "district" and district_code.isdigit()):
        raise ValueError(f"not a district code: {district_code!r}")
    if level not in (1, 2, 3):
        raise ValueError("level must be 1, 2 or 3")
    first, start, end = _month_bounds(month)
    _, prev_start, _ = _month_bounds(first - timedelta(days=1))
    sql = """
SELECT left(a.grid_code, %s) AS street, left(c.code, %s) AS cat,
       count(*) FILTER (WHERE a.received_at >= %s) AS n,
       count(*) FILTER (WHERE a.received_at < %s) AS prev
FROM appeals_appeal a JOIN appeals_category c ON c.id = a.category_id
WHERE a.grid_code LIKE %s AND a.state <> 'merged' AND a.received_at >= %s AND a.received_at < %s
GROUP BY 1, 2
HAVING count(*) FILTER (WHERE a.received_at >= %s) > 0
ORDER BY n DESC, prev DESC, street, cat
LIMIT %s"""
    with connection.cursor() as cur:
        cur.execute(sql, [STREET_LENGTH, 2 * level, start, start, district_code + "%", prev_start, end, start, top])
        rows = cur.fetchall()
    streets = dict(Street.objects.current().filter(code__in=[r[0] for r in rows]).values_list("code", "name"))
    cats = dict(Category.objects.filter(code__in=[r[1] for r in rows]).values_list("code", "name"))
    district = District.objects.current().filter(code=district_code).values_list("name", flat=True).first()
    ranking = [
        {
            "rank": i + 1,
            "street_code": s,
            "street_name": streets.get(s, ""),
            "category_code": c,
            "category_name": cats.get(c, ""),
            "count": n,
            "previous_month": prev,
        }
        for i, (s, c, n, prev) in enumerate(rows)
    ]
    return {
        "district_code": district_code,
        "district_name": district or "",
        "month": first.strftime("%Y-%m"),
        "level": level,
        "topic": ranking[0] if ranking else None,
        "ranking": ranking,
    }
