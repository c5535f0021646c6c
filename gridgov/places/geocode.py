"""Address text → positions, against the local place registry (Place) and the areas.

    geocode(text, *, limit=5) -> [Candidate], best first

Nothing leaves the building: no online geocoding provider is called (an intranet deployment
has none, and an appeal's address is personal data). How a text is read:

1. The text is parsed (gridgov.nlp.address) with a gazetteer of the city's own district,
   street and community names and the registry's place names, so its poi / road /
   community parts line up with known names.
2. Place names and aliases found in the text (longest first; a name inside a longer matched
   name does not count on its own) score by how they matched: the whole of a parsed part
   (exact) above a name merely contained in the text, short names (2–3 characters) lower,
   aliases a little below names. A parsed part that is only the beginning of a name
   (阳光花园 → 阳光花园小区) is a prefix match; parts that matched nothing are looked up by
   trigram similarity (PostgreSQL pg_trgm), for typos and shortened names. A road is long
   and its point only representative, so road matches count for less.
3. Street and community names in the text are context: a place inside the named area
   scores higher, a place outside it much lower.
4. Ambiguity: candidates for the same words of the text that lie far apart (two 幸福里小区 in
   two streets) share the belief between them, so neither reaches the intake's
   GEOCODE_MIN_CONFIDENCE and the appeal waits in the manual-location queue, with both
   candidates shown to the operator.
5. With no place, a named community (or street) is a candidate at a point inside it: a
   low confidence unless the area is a single grid, since the grid is what intake needs.

Every candidate says why (`reason`): which words matched which name and how, which areas
the text named and whether the place lies in them, how many far-apart rivals it had.

The names are held in process (a dict, rebuilt when the registry or the boundaries
change), so a lookup costs a revision query, a scan of the text and at most one trigram
query; about a million names would need a different structure.
"""

from __future__ import annotations

import bisect
import math
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from gridgov.areas.locate import areas_revision
from gridgov.nlp.address import Gazetteer, get_parser, parse_address

# Scores before context and ambiguity: how much a kind of match says by itself.
SCORE_EXACT = 0.9  # a parsed part (or the whole text) is the name
SCORE_ALIAS_PENALTY = 0.05
SCORE_CONTAINED = 0.8  # the name appears inside the text
SCORE_CONTAINED_SHORT = 0.62  # … and is only 2–3 characters long: often an accident
SCORE_PREFIX = 0.7
ROAD_FACTOR = 0.8
AREA_AGREES_BONUS = {"district": 0.02, "street": 0.05, "community": 0.08}
AREA_CONFLICT_FACTOR = 0.35
CORROBORATION_BONUS = 0.04  # another named place nearby (a road beside the compound)
MAX_TEXT_SCORE = 0.98
TRIGRAM_MIN_SIMILARITY = 0.3
RIVAL_DISTANCE_M = 300.0  # rivals closer than this point at the same spot: no ambiguity
CORROBORATION_DISTANCE_M = 600.0
AREA_CONFIDENCE = {"community": 0.45, "street": 0.3}
SINGLE_GRID_AREA_CONFIDENCE = 0.75
MIN_NAME_LENGTH = 2

M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Candidate:
    """A position an address text may mean. lng/lat are WGS-84."""

    lng: float
    lat: float
    confidence: float
    name: str
    kind: str  # road / compound / building / poi, or community / street for an area
    source: str  # "place" or "area"
    place_id: int | None = None
    area_code: str = ""
    grid_code: str = ""
    address: str = ""
    reason: dict = field(default_factory=dict)

    def as_dict(self):
        return {
            "lng": round(self.lng, 7),
            "lat": round(self.lat, 7),
            "confidence": round(self.confidence, 3),
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "place_id": self.place_id,
            "area_code": self.area_code,
            "grid_code": self.grid_code,
            "address": self.address,
            "reason": self.reason,
        }


def normalise(text):
    """NFKC (full-width → half-width) without spaces: callers' and operators' spacing is noise."""
    return "".join(unicodedata.normalize("NFKC", text or "").split())


def distance_m(lng1, lat1, lng2, lat2):
    kx = M_PER_DEG * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lng2 - lng1) * kx, (lat2 - lat1) * M_PER_DEG)


# --- the in-process index --------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    id: int
    name: str
    aliases: tuple
    kind: str
    lng: float
    lat: float
    grid_code: str
    address: str


@dataclass(frozen=True)
class _Area:
    level: str
    code: str
    name: str
    lng: float
    lat: float
    grids: int


_SUFFIXES = {
    "street": ("街道办事处", "街道", "地区", "镇", "乡"),
    "community": ("社区居委会", "居委会", "社区", "村"),
    "district": ("区", "县"),
}


def _short(name, level):
    for suf in _SUFFIXES[level]:
        if name.endswith(suf) and len(name) - len(suf) >= MIN_NAME_LENGTH:
            return name[: -len(suf)]
    return None


class _Index:
    def __init__(self, revision):
        self.revision = revision
        self.places = {}
        self.names: dict[str, list[tuple[int, str]]] = {}  # text → [(place id, "name" | "alias")]
        with connection.cursor() as cur:
            cur.execute(
                "SELECT id, name, aliases, kind, ST_X(point), ST_Y(point), grid_code, address "
                "FROM places_place ORDER BY id"
            )
            for pid, name, aliases, kind, lng, lat, grid_code, address in cur.fetchall():
                p = _Place(
                    pid,
                    normalise(name),
                    tuple(normalise(a) for a in aliases or () if a),
                    kind,
                    lng,
                    lat,
                    grid_code,
                    address,
                )
                self.places[pid] = p
                self.names.setdefault(p.name, []).append((pid, "name"))
                for a in p.aliases:
                    if a != p.name:
                        self.names.setdefault(a, []).append((pid, "alias"))
            self.areas = {}
            self.area_names: dict[str, list[tuple[str, str]]] = {}  # text → [(level, code)]
            for level, table, length in (
                ("district", "areas_district", 6),
                ("street", "areas_street", 9),
                ("community", "areas_community", 12),
            ):
                cur.execute(
                    f"SELECT a.code, a.name, ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom)), "
                    f"(SELECT count(*) FROM areas_grid g WHERE g.valid_to IS NULL AND left(g.code, {length}) = a.code) "
                    f"FROM {table} a WHERE a.valid_to IS NULL ORDER BY a.code"
                )
                for code, name, lng, lat, grids in cur.fetchall():
                    area = _Area(level, code, normalise(name), lng, lat, grids)
                    self.areas[code] = area
                    for n in {area.name, _short(area.name, level)} - {None}:
                        self.area_names.setdefault(n, []).append((level, code))
        self.names = {k: v for k, v in self.names.items() if len(k) >= MIN_NAME_LENGTH}
        self.sorted_names = sorted(self.names)
        self.max_name = max(map(len, self.names), default=0)
        self.max_area = max(map(len, self.area_names), default=0)
        by_kind: dict[str, set[str]] = {"road": set(), "poi": set()}
        for p in self.places.values():
            by_kind["road" if p.kind == "road" else "poi"].update((p.name, *p.aliases))
        gaz: dict[str, Any] = {"district": [], "town": [], "community": [], **by_kind}
        for a in self.areas.values():
            gaz[{"district": "district", "street": "town", "community": "community"}[a.level]].append(a.name)
        self.parser = get_parser(gazetteer=Gazetteer.from_names(gaz))

    def prefixed(self, prefix):
        """Names that start with `prefix` (and are longer)."""
        i = bisect.bisect_left(self.sorted_names, prefix)
        out = []
        while i < len(self.sorted_names) and self.sorted_names[i].startswith(prefix):
            if self.sorted_names[i] != prefix:
                out.append(self.sorted_names[i])
            i += 1
            if len(out) >= 20:
                break
        return out


_lock = threading.Lock()
_index = None


def _revision():
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), max(id), max(updated_at) FROM places_place")
        places = cur.fetchone()
    return (*places, areas_revision())


def place_index():
    global _index
    rev = _revision()
    with _lock:
        if _index is None or _index.revision != rev:
            _index = _Index(rev)
        return _index


def index_clear():
    global _index
    with _lock:
        _index = None


# --- matching --------------------------------------------------------------------------------


def _scan(text, names, max_len):
    """Every (start, end, name) of a known name in the text."""
    hits = []
    for i in range(len(text)):
        for j in range(min(len(text), i + max_len), i + MIN_NAME_LENGTH - 1, -1):
            if text[i:j] in names:
                hits.append((i, j, text[i:j]))
    return hits


def _maximal(hits, blockers=()):
    """Drop hits strictly inside a longer hit (阳光 inside 阳光花园小区) or inside a blocker span."""
    spans = [(s, e) for s, e, _ in hits] + list(blockers)
    return [h for h in hits if not any(s <= h[0] and h[1] <= e and (e - s) > (h[1] - h[0]) for s, e in spans)]


def _trigram(query, limit=10):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id, similarity(name, %s) AS s FROM places_place WHERE name %% %s ORDER BY s DESC, id LIMIT %s",
            [query, query, limit],
        )
        return cur.fetchall()


@dataclass
class _Hit:
    place: _Place
    score: float
    span: tuple
    matched: str
    via: str  # name / alias / prefix / trigram
    match: str  # exact / contained / prefix / fuzzy
    similarity: float | None = None
    notes: dict = field(default_factory=dict)


def _base_score(match, via, matched):
    if match == "exact":
        score = SCORE_EXACT
    elif match == "contained":
        score = SCORE_CONTAINED if len(matched) >= 4 else SCORE_CONTAINED_SHORT
    else:
        score = SCORE_PREFIX
    return score - (SCORE_ALIAS_PENALTY if via == "alias" else 0.0)


def geocode(text, *, limit=5, index=None):
    """Candidates for an address text, best first; [] when nothing in it is known. Batch
    callers may pass `index=place_index()` once, to skip the revision check per text."""
    text = normalise(text)
    if len(text) < MIN_NAME_LENGTH:
        return []
    idx = index or place_index()
    parsed = parse_address(text, parser=idx.parser)
    spans = [s for s in parsed.spans if len(s.text) >= MIN_NAME_LENGTH]
    exact_texts = {s.text for s in spans if s.label in ("poi", "subpoi", "road", "subroad", "community", "town")}
    exact_texts.add(text)
    # Only place-like parts are looked up loosely; an area name is never a misspelt place.
    parts = {(s.start, s.end): s.text for s in spans if s.label in ("poi", "subpoi", "road", "subroad")}

    hits: dict[Any, Any] = {}

    def add(hit):
        best = hits.get(hit.place.id)
        if best is None or hit.score > best.score:
            hits[hit.place.id] = hit

    # A name inside a longer area name is the area's (安华里 in 安华里社区), and an area name
    # inside a longer place name is the place's (安华 in 安华里小区).
    raw_area_hits = _scan(text, idx.area_names, idx.max_area)
    place_hits = _maximal(_scan(text, idx.names, idx.max_name), blockers=[(s, e) for s, e, _ in raw_area_hits])
    covered = []
    for s, e, name in place_hits:
        covered.append((s, e))
        match = "exact" if name in exact_texts else "contained"
        for pid, via in idx.names[name]:
            add(_Hit(idx.places[pid], _base_score(match, via, name), (s, e), name, via, match))
    # Parsed parts that no known name covers: shortened names (prefix), then typos (trigram).
    covered += [(s, e) for s, e, _ in raw_area_hits]
    for (s, e), part in parts.items():
        if any(cs <= s and e <= ce for cs, ce in covered) or len(part) < 3:
            continue
        found = False
        for name in idx.prefixed(part):
            for pid, via in idx.names[name]:
                add(_Hit(idx.places[pid], _base_score("prefix", via, name), (s, e), part, "prefix", "prefix"))
                found = True
        if found:
            continue
        for pid, sim in _trigram(part):
            if sim >= TRIGRAM_MIN_SIMILARITY and pid in idx.places:
                add(_Hit(idx.places[pid], 0.3 + 0.6 * sim, (s, e), part, "trigram", "fuzzy", similarity=round(sim, 3)))

    # Areas the text names. Words that name a place are not also context for it (云塘里 as the
    # compound's alias is not the community of that name as well).
    place_spans = [h.span for h in hits.values()]
    area_hits = [h for h in _maximal(raw_area_hits) if not any(s <= h[0] and h[1] <= e for s, e in place_spans)]
    named: dict[Any, Any] = {}
    for _s, _e, name in area_hits:
        for level, code in idx.area_names[name]:
            named.setdefault(level, set()).add(code)
    # The most specific areas named: a community stands for its street and district too.
    context = sorted({c for codes in named.values() for c in codes}, key=len)
    context = [c for c in context if not any(o != c and o.startswith(c) for o in context)]
    named_areas = [
        {"level": idx.areas[c].level, "code": c, "name": idx.areas[c].name}
        for codes in named.values()
        for c in sorted(codes)
    ]

    for h in hits.values():
        if h.place.kind == "road":
            h.score *= ROAD_FACTOR
        if context and h.place.grid_code:
            inside = [c for c in context if h.place.grid_code.startswith(c)]
            if inside:
                h.score += max(AREA_AGREES_BONUS[idx.areas[c].level] for c in inside)
                h.notes["area"] = "agrees"
            else:
                h.score *= AREA_CONFLICT_FACTOR
                h.notes["area"] = "conflict"

    ranked = list(hits.values())
    for h in ranked:
        near = [
            o.matched
            for o in ranked
            if o is not h
            and not _overlap(o.span, h.span)
            and o.notes.get("area") != "conflict"
            and distance_m(o.place.lng, o.place.lat, h.place.lng, h.place.lat) <= CORROBORATION_DISTANCE_M
        ]
        if near:
            h.score += CORROBORATION_BONUS
            h.notes["corroborated_by"] = sorted(set(near))
        h.score = min(h.score, MAX_TEXT_SCORE)

    out = []
    for h in ranked:
        rivals = [
            o
            for o in ranked
            if o is not h
            and _overlap(o.span, h.span)
            and distance_m(o.place.lng, o.place.lat, h.place.lng, h.place.lat) > RIVAL_DISTANCE_M
        ]
        # The belief is shared among far-apart readings of the same words, in proportion to
        # their squared scores: two equal rivals halve it, a weak one (outside the named
        # area) barely dents it.
        share = h.score**2 / (h.score**2 + sum(o.score**2 for o in rivals))
        reason = {
            "matched": h.matched,
            "via": h.via,
            "match": h.match,
            "span": list(h.span),
            "parsed": parsed.as_dict(),
            "areas": named_areas,
            "rivals": len(rivals),
            **h.notes,
        }
        if h.similarity is not None:
            reason["similarity"] = h.similarity
        if rivals:
            reason["rival_grids"] = sorted({o.place.grid_code for o in rivals if o.place.grid_code})[:5]
        p = h.place
        out.append(
            Candidate(
                p.lng,
                p.lat,
                round(h.score * share, 3),
                p.name,
                p.kind,
                "place",
                place_id=p.id,
                grid_code=p.grid_code,
                address=p.address,
                reason=reason,
            )
        )

    for code in context:
        area = idx.areas[code]
        if area.level == "district":
            continue
        conf = SINGLE_GRID_AREA_CONFIDENCE if area.grids == 1 else AREA_CONFIDENCE[area.level]
        out.append(
            Candidate(
                area.lng,
                area.lat,
                conf,
                area.name,
                area.level,
                "area",
                area_code=code,
                reason={
                    "matched": area.name,
                    "via": "area",
                    "match": "area",
                    "grids": area.grids,
                    "parsed": parsed.as_dict(),
                    "areas": named_areas,
                },
            )
        )
    out.sort(key=lambda c: (-c.confidence, c.source != "place", c.place_id or 0, c.area_code))
    return out[:limit]


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]
