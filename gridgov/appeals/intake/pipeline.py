"""The intake pipeline's steps as small functions: plain inputs, a decision out, no writes.
The intake driver (batch.py, behind `services.appeal_register`) composes them, and
records.py keeps every decision on the appeal."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection

from gridgov.accounts.models import Department
from gridgov.appeals.intake.classifier import model_guesses_many
from gridgov.appeals.intake.duplicates import AppealSketch, DuplicateParams, find_duplicates
from gridgov.appeals.intake.guesses import Guess, keyword_guesses, leaf_categories
from gridgov.appeals.models import Appeal, Kind, ResponsibilityRule
from gridgov.appeals.routing.selectors import RouteBook
from gridgov.appeals.timelimits import clock
from gridgov.appeals.workflow import OPEN_STATES, AppealError
from gridgov.areacodes import community_code_of
from gridgov.areas.coords import to_wgs84
from gridgov.areas.locate import M_PER_DEG_LAT, BadPoint, GridChain, check_lnglat, locate, locate_many
from gridgov.nlp import classify as nlp

# --- 1. locate ------------------------------------------------------------------------------


@dataclass
class LocationDecision:
    chain: GridChain | None
    position: Point | None
    method: str  # "position" | "geocode" | "none"
    confidence: float
    detail: dict = field(default_factory=dict)

    @property
    def located(self):
        return self.chain is not None and self.confidence >= settings.GEOCODE_MIN_CONFIDENCE


def _position_decision(chain, lng, lat, crs, wlng, wlat):
    """What locating a given position decided: the chain (None: outside every grid), the point
    in WGS-84 and the evidence kept on the appeal."""
    detail: dict[str, Any] = {"input": {"lng": lng, "lat": lat, "crs": crs}, "wgs84": [round(wlng, 7), round(wlat, 7)]}
    if chain is None:
        detail["outside"] = True
    else:
        detail["match"] = chain.match
        detail["distance_m"] = chain.distance_m
    return LocationDecision(chain, Point(wlng, wlat, srid=4326), "position", 1.0 if chain else 0.0, detail)


def locate_step(*, lng=None, lat=None, crs="wgs84", address_text="", at=None, geocoder=None):
    if lng is not None and lat is not None:
        lng, lat = check_lnglat(lng, lat)
        wlng, wlat = (float(v) for v in to_wgs84(lng, lat, crs))
        return _position_decision(locate(lng, lat, crs, at=at), lng, lat, crs, wlng, wlat)
    if address_text and geocoder is not None:
        candidates = geocoder(address_text)
        if candidates:
            best = candidates[0]
            chain = locate(best.lng, best.lat, "wgs84", at=at)
            detail = {"candidates": [c.as_dict() for c in candidates[:5]]}
            return LocationDecision(
                chain, Point(best.lng, best.lat, srid=4326), "geocode", best.confidence if chain else 0.0, detail
            )
        return LocationDecision(None, None, "geocode", 0.0, {"candidates": []})
    return LocationDecision(None, None, "none", 0.0, {})


def locate_steps(requests, *, geocoder=None):
    """locate_step for many requests (dicts with lng, lat, crs, address_text), the positions
    through the in-process grid index (gridgov.areas.locate.locate_many, which answers as
    locate does), one call per CRS. Returns a LocationDecision, or the BadPoint, per request."""
    out: list[Any] = [None] * len(requests)
    by_crs: dict[str, list[tuple[int, float, float]]] = {}  # crs -> [(index, lng, lat)]
    geocoded = []  # (index, best candidate, detail)
    for i, r in enumerate(requests):
        if r.get("lng") is not None and r.get("lat") is not None:
            crs = r.get("crs") or "wgs84"
            try:
                lng, lat = check_lnglat(r["lng"], r["lat"])
            except BadPoint as exc:
                out[i] = exc
                continue
            by_crs.setdefault(crs, []).append((i, lng, lat))
        elif r.get("address_text") and geocoder is not None:
            candidates = geocoder(r["address_text"])
            if candidates:
                geocoded.append((i, candidates[0], {"candidates": [c.as_dict() for c in candidates[:5]]}))
            else:
                out[i] = LocationDecision(None, None, "geocode", 0.0, {"candidates": []})
        else:
            out[i] = LocationDecision(None, None, "none", 0.0, {})
    for crs, rows in by_crs.items():
        points = [(lng, lat) for _, lng, lat in rows]
        chains = locate_many(points, crs)
        wlng, wlat = to_wgs84(np.array([p[0] for p in points]), np.array([p[1] for p in points]), crs)
        for (i, lng, lat), chain, x, y in zip(rows, chains, wlng.tolist(), wlat.tolist()):
            out[i] = _position_decision(chain, lng, lat, crs, x, y)
    if geocoded:
        chains = locate_many([(best.lng, best.lat) for _, best, _ in geocoded])
        for (i, best, detail), chain in zip(geocoded, chains):
            out[i] = LocationDecision(
                chain, Point(best.lng, best.lat, srid=4326), "geocode", best.confidence if chain else 0.0, detail
            )
    return out


# --- 2. classify -----------------------------------------------------------------------------


def classify_step(text: str, *, model: Callable[[str, int], list[Guess]] | None = None, k: int = 3) -> list[Guess]:
    """Top-k leaf categories. A trained model speaks first when there is one; the keyword rules
    are the floor, merged in so a strong keyword is never missed. `model` is a callable
    (text, k) -> [Guess]; None means this deployment's trained model
    (gridgov.appeals.intake.classifier.model_guesses), which answers [] while no model file exists."""
    return classify_many([text], model=model, k=k)[0]


def classify_many(
    texts: Sequence[str], *, model: Callable[[str, int], list[Guess]] | None = None, k: int = 3
) -> list[list[Guess]]:
    """classify_step for each text; with the deployment's model, one call of it for them all."""
    if model is None:
        model_out = model_guesses_many(texts, k)
    else:
        model_out = [model(text, k) for text in texts]
    out = []
    leaves = leaf_categories()
    for text, model_guesses in zip(texts, model_out):
        guesses = {g.code: g for g in model_guesses}
        for g in keyword_guesses(text, k, leaves):
            if g.code not in guesses or guesses[g.code].confidence < g.confidence:
                guesses[g.code] = g
        out.append(sorted(guesses.values(), key=lambda g: (-g.confidence, g.code))[:k])
    return out


def kind_step(text):
    """(Kind, confidence, cue words) by gridgov.nlp.classify.classify_kind. With no cue at all:
    a consultation (the commonest kind on the hotline) at confidence 0.3."""
    guess = nlp.classify_kind(text)
    return Kind(guess.label), guess.confidence, list(guess.matched)


# 扬言 and emergencies, from gridgov.nlp.classify.risk_flags (which leaves look-alikes such as
# 燃气费, 火灾隐患, 跳楼价 or a negated 没有着火 alone). Its two threat kinds (violence,
# self-harm) are one "threat" flag on the appeal: the same alert and double dispatch to the
# police and the locality. "transfer" is the line to hand the caller to now; "transfers" lists
# every line the risk calls for (self-harm: 110, then 120).
_RISK_FLAG = {
    nlp.THREAT_VIOLENCE: "threat",
    nlp.THREAT_SELF_HARM: "threat",
    nlp.FIRE: "fire",
    nlp.GAS_LEAK: "gas_leak",
    nlp.COLLAPSE: "collapse",
    nlp.TRAPPED: "trapped",
    nlp.MEDICAL: "medical",
}
_LINES = ("110", "119", "120")


def risk_step(text):
    """[{"flag", "words", "transfer", "transfers"}], one per kind of risk, in a fixed order."""
    merged: dict[Any, Any] = {}
    for f in nlp.risk_flags(text):
        entry = merged.setdefault(_RISK_FLAG[f.kind], {"words": set(), "transfers": set()})
        entry["words"].update(f.words)
        entry["transfers"].update(f.transfer)
    order = list(dict.fromkeys(_RISK_FLAG.values()))
    flags = []
    for name in sorted(merged, key=order.index):
        transfers = sorted(merged[name]["transfers"], key=_LINES.index)
        flags.append(
            {"flag": name, "words": sorted(merged[name]["words"]), "transfer": transfers[0], "transfers": transfers}
        )
    return flags


# --- 3. duplicates ---------------------------------------------------------------------------


def sketch(appeal):
    pos = appeal.position
    return AppealSketch(
        id=appeal.pk,
        text=appeal.text,
        lng=pos.x if pos else None,
        lat=pos.y if pos else None,
        received_at=appeal.received_at,
        category_code=appeal.category.code if appeal.category_id else None,
        address_text=appeal.address_text,
    )


def _box_deg(params, lat):
    # A degree box on the GiST index; find_duplicates applies the exact radius in metres.
    return params.radius_m / (M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 0.01)) * 1.2


def duplicate_candidates(appeal, params=None, limit=500):
    """Open appeals near in time and (when known) place: what find_duplicates compares."""
    params = params or DuplicateParams()
    window = timedelta(hours=params.window_hours)
    qs = (
        Appeal.objects.filter(
            state__in=sorted(OPEN_STATES),
            received_at__gte=appeal.received_at - window,
            received_at__lte=appeal.received_at + window,
        )
        .exclude(pk=appeal.pk)
        .select_related("category")
    )
    if appeal.position is not None:
        qs = qs.filter(position__dwithin=(appeal.position, _box_deg(params, appeal.position.y)))
    elif appeal.grid_code:
        qs = qs.filter(grid_code__startswith=community_code_of(appeal.grid_code) or appeal.grid_code)
    else:
        return []
    return list(qs.order_by("-received_at")[:limit])


# The partial index on open appeals (migration 0004) is used when the state test reads as its
# predicate does, a text[] constant.
_OPEN_SQL = "a.state::text = ANY('{" + ",".join(sorted(OPEN_STATES)) + "}'::text[])"


def duplicates_many(sketches, params=None, limit=500):
    """duplicates_step for a batch of new appeals (AppealSketch with their ids, in the order they
    are registered; None for one that is not located, which is not compared). Each is compared
    with what it would have found registered after the ones before it: the open appeals of the
    history around it (one query for the batch) and the batch's earlier appeals, the most
    recent `limit` of them together. Located appeals have a position at intake."""
    params = params or DuplicateParams()
    probes = [(i, sk) for i, sk in enumerate(sketches) if sk is not None and sk.has_position]
    out: list[list[Any]] = [[] for _ in sketches]
    if not probes:
        return out
    window = params.window_hours * 3600.0
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT v.i, c.id FROM unnest(%s::int[], %s::float8[], %s::float8[], %s::timestamptz[],
                       %s::float8[]) AS v(i, lng, lat, at, deg)
                CROSS JOIN LATERAL (
                    SELECT a.id FROM appeals_appeal a
                    WHERE {_OPEN_SQL} AND a.received_at BETWEEN v.at - make_interval(secs => %s)
                          AND v.at + make_interval(secs => %s)
                      AND ST_DWithin(a.position, ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326), v.deg)
                    ORDER BY a.received_at DESC LIMIT %s) c""",
            [
                [i for i, _ in probes],
                [sk.lng for _, sk in probes],
                [sk.lat for _, sk in probes],
                [sk.received_at for _, sk in probes],
                [_box_deg(params, sk.lat) for _, sk in probes],
                window,
                window,
                limit,
            ],
        )
        pairs = cur.fetchall()
        ids = sorted({cid for _, cid in pairs})
        rows = {}
        if ids:
            cur.execute(
                """SELECT a.id, a.text, ST_X(a.position), ST_Y(a.position), a.received_at, c.code, a.address_text
                   FROM appeals_appeal a LEFT JOIN appeals_category c ON c.id = a.category_id
                   WHERE a.id = ANY(%s)""",
                [ids],
            )
            rows = {r[0]: AppealSketch(*r) for r in cur.fetchall()}
    found: dict[Any, Any] = {}
    for i, cid in pairs:
        found.setdefault(i, []).append(rows[cid])
    # The batch's earlier appeals, in cells as wide as the widest box: a box meets 3 × 3 cells.
    cell = max(_box_deg(params, sk.lat) for _, sk in probes)
    earlier: dict[Any, Any] = {}
    for i, sk in probes:
        deg = _box_deg(params, sk.lat)
        cx, cy = math.floor(sk.lng / cell), math.floor(sk.lat / cell)
        mine = [
            e
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
            for e in earlier.get((cx + dx, cy + dy), ())
            if abs((e.received_at - sk.received_at).total_seconds()) <= window
            and math.hypot(e.lng - sk.lng, e.lat - sk.lat) <= deg
        ]
        cands = found.get(i, [])
        if mine:
            cands = sorted(cands + mine, key=lambda c: c.received_at, reverse=True)[:limit]
        if cands:
            out[i] = find_duplicates(sk, cands, params=params)
        earlier.setdefault((cx, cy), []).append(sk)
    return out


def duplicates_step(appeal, params=None):
    cands = duplicate_candidates(appeal, params)
    if not cands:
        return []
    return find_duplicates(sketch(appeal), [sketch(c) for c in cands], params=params or DuplicateParams())


# --- 4. route --------------------------------------------------------------------------------


@dataclass
class RouteDecision:
    lead: Department | None
    lead_rule: ResponsibilityRule | None
    assists: list  # [(Department, rule or None, why)]
    first_receiver: bool
    explanation: dict


def route_step(category, grid_code, at, risk_flags=(), book=None):
    """Lead and assisting units for `category` at `grid_code`, by the rules in force at `at`.
    `book` answers what routing reads (selectors.RouteBook, the database, by default)."""
    book = book or RouteBook()
    cands = book.candidates(category, grid_code, at) if category is not None else []
    leads = [c for c in cands if c.role == "lead"]
    lead = leads[0] if leads else None
    assists = [
        (c.department, c.rule, "rule")
        for c in cands
        if c.role != "lead" or (lead and c is not lead and c.area_code == lead.area_code)
    ]
    explanation: dict[str, Any] = {
        "candidates": [
            {
                "department": c.department.code,
                "role": c.role,
                "area_code": c.area_code,
                "rule_id": c.rule.pk if c.rule else None,
            }
            for c in cands
        ]
    }
    first_receiver = False
    lead_dept, lead_rule = (lead.department, lead.rule) if lead else (None, None)
    # The locality is asked for only when it is needed: most appeals have a lead by rule.
    locality = None
    if lead_dept is None or risk_flags:
        locality = book.locality(grid_code)
    if lead_dept is None:
        # 首接负责: unclear ownership stays with the locality (属地兜底) until reassigned.
        lead_dept, first_receiver = locality, True
        explanation["first_receiver"] = "no rule or default department for this category and place"
    if risk_flags:
        police = book.police()
        for extra, why in ((police, "risk: police"), (locality, "risk: locality")):
            if extra is not None and extra != lead_dept and all(extra != d for d, _, _ in assists):
                assists.append((extra, None, why))
    assists = [(d, r, why) for d, r, why in assists if d is not None and d != lead_dept]
    return RouteDecision(lead_dept, lead_rule, assists, first_receiver, explanation)


def require_lead(decision: RouteDecision) -> None:
    """An appeal is dispatched only to a unit: with none (no rule, no locality), it is refused."""
    if decision.lead is None:
        raise AppealError("no_unit", "找不到承办单位 / no unit can take this appeal: add a responsibility rule")


# --- 5. clock --------------------------------------------------------------------------------


def clock_step(received_at, time_limit, now, deadline=None):
    """(deadline, colour at `now`, next colour change) under settings.TIME_LIMIT_MODES and
    WARNING_THRESHOLDS. Pass the stored `deadline` to measure against it: the deadline the unit
    was given stays put when the holiday file or the settings change later."""
    if deadline is None:
        if not time_limit:
            return None, "none", None
        deadline = clock.deadline(received_at, time_limit, mode=settings.TIME_LIMIT_MODES.get(time_limit))
    shares = settings.WARNING_THRESHOLDS
    return (
        deadline,
        str(clock.warning_colour(received_at, deadline, now, shares)),
        clock.next_colour_change(received_at, deadline, now, shares),
    )
