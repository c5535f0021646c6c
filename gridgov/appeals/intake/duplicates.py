"""Duplicate detection (并单 / 智能判重): is an incoming appeal about a problem that an open
appeal already reports? Pure functions, no database: the intake service fetches the
candidates (open appeals received within the time window, in a box around the point) and
keeps the returned evidence on the record, so a dispatcher can see why two were merged.

A candidate is **out** when

* it was received more than `window_hours` before or after the appeal, or
* both have a position and they are more than `radius_m` apart, or
* either position is missing and their addresses are not alike
  (`address_similarity < min_address_similarity`; the address text, or the whole text
  when an address is empty), or
* the problem descriptions share too little (`text_similarity < min_text_similarity`).

Otherwise it gets a score in [0, 1], a weighted mean of

    text      similarity of the problem descriptions (below)
    place     0.5 ** (distance / distance_half_life_m), or the address similarity when a
              position is missing
    time      0.5 ** (hours apart / time_half_life_hours)
    category  1 same category, 0 different, 0.5 when either is unknown

and is proposed as a duplicate when score >= threshold.

Text similarity works on character n-grams, which need no word segmentation and survive
typos and rewording: the text is NFKC-normalised (full-width → half-width), Chinese
numbers before 号/楼/栋/单元… become digits, hotline boilerplate ("市民来电反映", "希望相关
部门尽快处理" …) is cut out, every digit run becomes "0" (callers disagree about times and
counts, positions decide the place), and the n-grams of the appeal's own address are taken
away, so two different problems at the same address do not look alike for sharing it.
The similarity of the two n-gram sets A, B is

    (1 - c) · |A∩B| / |A∪B|  +  c · |A∩B| / min(|A|, |B|)

Jaccard punishes a long and a short report of the same thing; the containment term (weight
c = `containment_weight`) does not. Addresses are compared the same way on their own
n-grams (digits kept, leading city / district / street-office names and "附近", "门口" …
dropped), with c = `address_containment_weight`. Features are cached per text, so checking
an appeal against 200 candidates takes 0.4–1.6 ms (tests/bench/bench_duplicates.py).

The defaults were tuned on `make_duplicate_benchmark(seed=1)` (duplicates_eval.py). Two
callers rarely word a problem alike: reworded duplicates often share just one key bigram
(停水, 暖气, 油烟), so text alone separates poorly, and the tuning gave the four parts equal
weight. What that means: at the same spot and hour a same-category candidate is proposed
as soon as the texts share anything (the `min_text_similarity` gate), while a candidate of
another category needs a text similarity of about 0.4. The errors left are mostly two
different problems of one category at one spot on one day (construction noise and square
dancing), which only better text evidence could tell apart.
"""

import math
import re
import unicodedata
from collections.abc import Hashable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from gridgov.appeals.timelimits.clock import require_aware

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG_LAT = 111_000.0  # just under the haversine's 111,195 m per degree: the pre-check never drops a keeper

# Phrases that every kind of appeal contains: operators' and apps' framing, politeness,
# the standard request. Longest first, so the longer phrase wins in the alternation.
BOILERPLATE = sorted(
    (
        "市民来电反映 市民来电称 市民来电 来电人反映 来电人称 来电人 来电反映 来电称 诉求人反映 诉求人称 诉求人 "
        "网友留言 网友反映 市民通过随手拍反映 随手拍 市民反映 居民反映 反映 投诉 举报 您好 你好 谢谢 感谢 "
        "希望相关部门 要求相关部门 请相关部门 相关部门 有关部门 尽快处理 尽快解决 尽快 处理 解决 核实 协调 麻烦 "
        "派人来看看 派人 看看 帮忙 一下 希望 要求 问题 情况 现在 目前 已经 我们 这个 那个"
    ).split(),
    key=len,
    reverse=True,
)

# Words an address gets padded with that say nothing about which place it is.
ADDRESS_NOISE = ("附近", "旁边", "边上", "那边", "这边", "门口", "对面", "一带", "周边")

_BOILERPLATE_RE = re.compile("|".join(map(re.escape, BOILERPLATE)))
_ADDRESS_NOISE_RE = re.compile("|".join(map(re.escape, ADDRESS_NOISE)))
_DIGITS_RE = re.compile(r"\d+")
_SPLIT_RE = re.compile(r"[^\w]+|_+")
_CN_NUMBER_RE = re.compile(r"[零〇一二两三四五六七八九十]{1,3}(?=[号楼栋幢座单元层室门排期区段])")
# Leading city / district / street-office names, which every address in a street shares.
# Careful: 早市, 超市 end in 市 and 小区, 社区, 园区 in 区, and they are places: a name
# here has no digits, 路, 街 or 号 in it, and a city only counts when a district follows.
_ADMIN_PREFIX_RE = re.compile(
    r"^(?:[^\W\d市区县路街号]{2,4}市(?=.*?[区县]))?"
    r"(?:[^\W\d区县路街号]{1,5}(?<![小社园校片景])[区县])?"
    r"(?:[^\W\d街镇乡路号]{1,6}(?:街道|镇|乡))?"
)
_CN_DIGITS = {ch: i for i, ch in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


@dataclass(frozen=True, slots=True)
class AppealSketch:
    """What duplicate detection needs to know of an appeal. lng/lat are WGS-84 or None."""

    id: Hashable
    text: str
    lng: float | None
    lat: float | None
    received_at: datetime
    category_code: str | None = None
    address_text: str = ""

    def __post_init__(self):
        require_aware(self.received_at, "received_at")
        if (self.lng is None) != (self.lat is None):
            raise ValueError(f"appeal {self.id}: lng and lat must both be given or both be None")

    @property
    def has_position(self):
        return self.lng is not None


@dataclass(frozen=True)
class DuplicateParams:
    window_hours: float = 72.0  # candidates received further apart are out
    radius_m: float = 200.0  # candidates with positions further apart are out
    threshold: float = 0.6  # score needed to propose a duplicate
    min_text_similarity: float = 0.03  # below this the descriptions share nothing: different problems
    min_address_similarity: float = 0.5  # without positions, addresses must be at least this alike
    weight_text: float = 0.25
    weight_place: float = 0.25
    weight_time: float = 0.25
    weight_category: float = 0.25
    distance_half_life_m: float = 150.0  # place score halves every this many metres
    time_half_life_hours: float = 24.0  # time score halves every this many hours
    ngram_sizes: tuple[int, ...] = (2,)  # character bigrams; (2, 3) is slower and no better
    containment_weight: float = 0.5  # c in the text similarity, 0 = plain Jaccard
    address_containment_weight: float = 0.7
    boilerplate: tuple[str, ...] = field(default=tuple(BOILERPLATE), repr=False)

    def __post_init__(self):
        weights = (self.weight_text, self.weight_place, self.weight_time, self.weight_category)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        if not 0 <= self.threshold <= 1:
            raise ValueError("threshold must be within [0, 1]")


@dataclass(frozen=True)
class Match:
    """A proposed duplicate and the evidence for it. distance_m is None when a position was
    missing (then address_similarity decided the place); basis says which."""

    candidate_id: Hashable
    score: float
    text_similarity: float
    distance_m: float | None
    address_similarity: float | None
    hours_apart: float
    same_category: bool | None
    basis: str  # "position" or "address"

    def as_dict(self):
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Features


def _cn_number(match):
    s = match.group(0)
    if "十" in s:
        tens, _, ones = s.partition("十")
        value = (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    else:
        value = int("".join(str(_CN_DIGITS[ch]) for ch in s))
    return str(value)


def normalise(text):
    """NFKC, lower case, Chinese numbers before 号/楼/单元… as digits."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return _CN_NUMBER_RE.sub(_cn_number, text)


def _ngrams(segments, sizes):
    out: set[Any] = set()
    for seg in segments:
        if not seg:
            continue
        for n in sizes:
            out.update(seg[i : i + n] for i in range(len(seg) - n + 1))
        if len(seg) < min(sizes):
            out.add(seg)
    return out


def _text_segments(text, boilerplate_re):
    text = boilerplate_re.sub(" ", normalise(text))
    return _SPLIT_RE.split(_DIGITS_RE.sub("0", text))


def _address_segments(address):
    address = _ADMIN_PREFIX_RE.sub("", normalise(address))
    return _SPLIT_RE.split(_ADDRESS_NOISE_RE.sub(" ", address))


@lru_cache(maxsize=16)
def _boilerplate_re(phrases):
    return _BOILERPLATE_RE if phrases == tuple(BOILERPLATE) else re.compile("|".join(map(re.escape, phrases)))


@lru_cache(maxsize=65_536)
def _features(text, address, sizes, boilerplate):
    """(problem n-grams, address n-grams) of one appeal; cached, candidates recur."""
    problem = _ngrams(_text_segments(text, _boilerplate_re(boilerplate)), sizes)
    if address:
        # The address as it would appear in the text (digits → 0), taken out of the problem.
        problem -= _ngrams(_text_segments(address, _boilerplate_re(boilerplate)), sizes)
    place = _ngrams(_address_segments(address or text), sizes)
    return frozenset(problem), frozenset(place)


def features_cache_clear():
    _features.cache_clear()


def set_similarity(a, b, containment_weight):
    if not a or not b:
        return 0.0
    common = len(a & b)
    if not common:
        return 0.0
    jaccard = common / (len(a) + len(b) - common)
    return (1 - containment_weight) * jaccard + containment_weight * common / min(len(a), len(b))


def distance_m(lng1, lat1, lng2, lat2):
    """Great-circle (haversine) distance in metres between two WGS-84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# ---------------------------------------------------------------------------------------
# Pipeline steps


def find_duplicates(appeal, candidates, *, params=DuplicateParams()):
    """Candidates that report the same problem as `appeal`, best first (ties: closest in
    time). The appeal itself, if among the candidates, is skipped."""
    p = params
    total_weight = p.weight_text + p.weight_place + p.weight_time + p.weight_category
    window_s = p.window_hours * 3600.0
    a_problem, a_place = _features(appeal.text, appeal.address_text, p.ngram_sizes, p.boilerplate)
    matches = []
    for cand in candidates:
        if cand.id == appeal.id:
            continue
        seconds = abs((cand.received_at - appeal.received_at).total_seconds())
        if seconds > window_s:
            continue
        if appeal.has_position and cand.has_position:
            # North-south separation alone rules most candidates out before the haversine.
            if abs(cand.lat - appeal.lat) * M_PER_DEG_LAT > p.radius_m:
                continue
            dist = distance_m(appeal.lng, appeal.lat, cand.lng, cand.lat)
            if dist > p.radius_m:
                continue
            c_problem, _ = _features(cand.text, cand.address_text, p.ngram_sizes, p.boilerplate)
            place, address_sim, basis = 0.5 ** (dist / p.distance_half_life_m), None, "position"
        else:
            dist = None
            c_problem, c_place = _features(cand.text, cand.address_text, p.ngram_sizes, p.boilerplate)
            address_sim = set_similarity(a_place, c_place, p.address_containment_weight)
            if address_sim < p.min_address_similarity:
                continue
            place, basis = address_sim, "address"
        text_sim = set_similarity(a_problem, c_problem, p.containment_weight)
        if text_sim < p.min_text_similarity:
            continue
        hours = seconds / 3600.0
        if appeal.category_code is None or cand.category_code is None:
            same_category, category = None, 0.5
        else:
            same_category = appeal.category_code == cand.category_code
            category = 1.0 if same_category else 0.0
        score = (
            p.weight_text * text_sim
            + p.weight_place * place
            + p.weight_time * 0.5 ** (hours / p.time_half_life_hours)
            + p.weight_category * category
        ) / total_weight
        if score >= p.threshold:
            matches.append(
                Match(
                    candidate_id=cand.id,
                    score=round(score, 4),
                    text_similarity=round(text_sim, 4),
                    distance_m=None if dist is None else round(dist, 1),
                    address_similarity=None if address_sim is None else round(address_sim, 4),
                    hours_apart=round(hours, 2),
                    same_category=same_category,
                    basis=basis,
                )
            )
    matches.sort(key=lambda m: (-m.score, m.hours_apart))
    return matches


def group_duplicates(sketches, *, params=DuplicateParams()):
    """Partition a batch into groups of duplicates: union-find over the pairwise matches
    (so A~B and B~C put A, B, C together even if A and C alone would not match). Every
    sketch is in exactly one group, singletons included; each group lists ids earliest
    first, the lead (主单) being the first, and groups come in order of their leads.
    Equal times keep the input order."""
    ordered = sorted(enumerate(sketches), key=lambda pair: (pair[1].received_at, pair[0]))
    items = [s for _, s in ordered]
    parent = list(range(len(items)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index = {}
    window_s = params.window_hours * 3600.0
    start = 0
    for i, sketch in enumerate(items):
        # Only earlier sketches within the window can match; the rest were checked already.
        while (sketch.received_at - items[start].received_at).total_seconds() > window_s:
            start += 1
        index[sketch.id] = i
        for match in find_duplicates(sketch, items[start:i], params=params):
            a, b = root(i), root(index[match.candidate_id])
            if a != b:
                # The earlier root stays root, so a group's root is its lead.
                parent[max(a, b)] = min(a, b)
    groups: dict[Any, Any] = {}
    for i, sketch in enumerate(items):
        groups.setdefault(root(i), []).append(sketch.id)
    return [groups[r] for r in sorted(groups)]
