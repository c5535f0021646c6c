"""Chinese address parsing: "浙江省杭州市西湖区文三路90号东部软件园3号楼5层" → prov, city, district, road,
roadno, poi, houseno, floorno.

Two parsers with the same interface (a callable `text -> ParsedAddress`):

* `RuleParser`: suffix dictionaries (省 市 区 县 街道 镇 社区 村 路 号 栋 单元 层 室 …) plus known-name
  lists (the built-in provinces and prefecture-level cities, and whatever the system feeds in: its
  own districts, streets and communities, a place registry). Needs no file and always answers.
* `CrfParser`: a linear-chain CRF (python-crfsuite) on character features, which also sees the rule
  parser's tags as features. Trained by `train_address_model()` from BIO files (one character and
  its tag per line, a blank line between addresses) and loaded from the path in the environment
  variable GRIDGOV_ADDRESS_MODEL, the Django setting ADDRESS_MODEL_PATH, or var/models/address-crf.crfsuite
  (git-ignored, never committed). When no model file is there, `parse_address` uses the rules.

`evaluate_parser()` scores any parser on a BIO file: per-label precision/recall/F1 on spans with exact
boundaries, and micro F1.

The labels are those of the NAACL 2019 "Neural Chinese Address Parsing" corpus.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

LABELS = (
    "country",
    "prov",
    "city",
    "district",
    "devzone",
    "town",
    "community",
    "road",
    "subroad",
    "roadno",
    "subroadno",
    "poi",
    "subpoi",
    "houseno",
    "cellno",
    "floorno",
    "roomno",
    "person",
    "assist",
    "otherinfo",
    "redundant",
)
_LABEL_SET = frozenset(LABELS)

MODEL_ENV = "GRIDGOV_ADDRESS_MODEL"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "var" / "models" / "address-crf.crfsuite"

# Only the administrative levels have a strict order; a poi may come before or after its road.
_ADMIN_LEVEL = {"country": 0, "prov": 1, "city": 2, "district": 3, "devzone": 4, "town": 5, "community": 6}
_HOUSE_LEVELS = ("houseno", "cellno", "floorno", "roomno")
_HOUSE_RANK = {lab: n for n, lab in enumerate(_HOUSE_LEVELS)}


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Span:
    label: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ParsedAddress:
    """The parts of one address, in order. `source` says which parser answered ("rules" or "crf");
    `confidence` is the CRF's probability of the whole tag sequence (None for rules)."""

    text: str
    spans: tuple[Span, ...]
    source: str
    confidence: float | None = None

    def get(self, label: str, default: str | None = None) -> str | None:
        """The text of the first part with this label."""
        for s in self.spans:
            if s.label == label:
                return s.text
        return default

    def all(self, label: str) -> list[str]:
        return [s.text for s in self.spans if s.label == label]

    def as_dict(self, *, drop=("redundant",)) -> dict[str, str]:
        """label → text, parts with the same label joined in order; noise dropped."""
        out: dict[str, str] = {}
        for s in self.spans:
            if s.label not in drop:
                out[s.label] = out.get(s.label, "") + s.text
        return out

    def __getitem__(self, label: str) -> str:
        value = self.get(label)
        if value is None:
            raise KeyError(label)
        return value

    def __contains__(self, label: str) -> bool:
        return any(s.label == label for s in self.spans)


# ---------------------------------------------------------------------------------------------
# Character classes


def _normalise(text: str) -> str:
    """Full-width ASCII to half-width, one character for one, so offsets stay valid."""
    out = []
    for ch in text:
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:
            out.append(chr(o - 0xFEE0))
        elif o == 0x3000:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or ch == "〇"


_CN_DIGITS = frozenset("零〇一二三四五六七八九十百千两")
_SEPARATORS = frozenset("-_—–~/\\,，、;；.。·:：()（）[]【】<>《》'\"“”‘’|+*&=!?！？")
_DIRECTIONS = frozenset("东西南北中")


def _ctype(ch: str) -> str:
    if ch.isdigit():
        return "D"
    if ch.isascii() and ch.isalpha():
        return "L"
    if ch in _CN_DIGITS:
        return "N"
    if _is_han(ch):
        return "H"
    if ch.isspace():
        return "S"
    return "P"


# ---------------------------------------------------------------------------------------------
# Known names

_PROVINCES = (
    "河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 山东省 河南省 湖北省 湖南省 "
    "广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 台湾省 内蒙古自治区 广西壮族自治区 西藏自治区 "
    "宁夏回族自治区 新疆维吾尔自治区 香港特别行政区 澳门特别行政区"
).split()
_PROVINCE_SHORT = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港",
    "澳门特别行政区": "澳门",
}
# Municipalities are provincial-level in GB/T 2260 but are written and tagged like cities in addresses.
_MUNICIPALITIES = ("北京", "天津", "上海", "重庆")
# Prefecture-level cities, without 市. Short forms that are also common road or district names
# (中山路, 朝阳区, 黄山路 …) are matched only with their 市.
_CITIES = """
石家庄 唐山 秦皇岛 邯郸 邢台 保定 张家口 承德 沧州 廊坊 衡水 太原 大同 阳泉 长治 晋城 朔州 晋中 运城 忻州 临汾 吕梁
呼和浩特 包头 乌海 赤峰 通辽 鄂尔多斯 呼伦贝尔 巴彦淖尔 乌兰察布 沈阳 大连 鞍山 抚顺 本溪 丹东 锦州 营口 阜新 辽阳 盘锦
铁岭 朝阳 葫芦岛 长春 吉林 四平 辽源 通化 白山 松原 白城 哈尔滨 齐齐哈尔 鸡西 鹤岗 双鸭山 大庆 伊春 佳木斯 七台河
牡丹江 黑河 绥化 南京 无锡 徐州 常州 苏州 南通 连云港 淮安 盐城 扬州 镇江 泰州 宿迁 杭州 宁波 温州 嘉兴 湖州 绍兴
金华 衢州 舟山 台州 丽水 合肥 芜湖 蚌埠 淮南 马鞍山 淮北 铜陵 安庆 黄山 滁州 阜阳 宿州 六安 亳州 池州 宣城 福州 厦门
莆田 三明 泉州 漳州 南平 龙岩 宁德 南昌 景德镇 萍乡 九江 新余 鹰潭 赣州 吉安 宜春 抚州 上饶 济南 青岛 淄博 枣庄 东营
烟台 潍坊 济宁 泰安 威海 日照 临沂 德州 聊城 滨州 菏泽 郑州 开封 洛阳 平顶山 安阳 鹤壁 新乡 焦作 濮阳 许昌 漯河 三门峡
南阳 商丘 信阳 周口 驻马店 武汉 黄石 十堰 宜昌 襄阳 鄂州 荆门 孝感 荆州 黄冈 咸宁 随州 长沙 株洲 湘潭 衡阳 邵阳 岳阳
常德 张家界 益阳 郴州 永州 怀化 娄底 广州 韶关 深圳 珠海 汕头 佛山 江门 湛江 茂名 肇庆 惠州 梅州 汕尾 河源 阳江 清远
东莞 中山 潮州 揭阳 云浮 南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左 海口 三亚 三沙 儋州
成都 自贡 攀枝花 泸州 德阳 绵阳 广元 遂宁 内江 乐山 南充 眉山 宜宾 广安 达州 雅安 巴中 资阳 贵阳 六盘水 遵义 安顺 毕节
铜仁 昆明 曲靖 玉溪 保山 昭通 丽江 普洱 临沧 拉萨 日喀则 昌都 林芝 山南 那曲 西安 铜川 宝鸡 咸阳 渭南 延安 汉中 榆林
安康 商洛 兰州 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南 西宁 海东 银川 石嘴山 吴忠 固原 中卫 乌鲁木齐
克拉玛依 吐鲁番 哈密
""".split()
_AMBIGUOUS_SHORT = frozenset(
    {"中山", "朝阳", "黄山", "白山", "吉林", "江门", "北海", "海东", "山南", "南平", "长治", "中卫"}
)

# Suffixes stripped to make the short form of a name the system feeds in (东华门街道 → 东华门).
_STRIP_SUFFIXES = (
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "街道办事处",
    "街道办",
    "居委会",
    "村委会",
    "街道",
    "社区",
    "地区",
    "省",
    "市",
    "区",
    "县",
    "旗",
    "镇",
    "乡",
    "村",
)
# After a short form, these would mean the name is part of a road (延安路, 中山东路, 朝阳大街).
_ROAD_CHARS = frozenset("路街道巷弄胡")


@dataclass
class Gazetteer:
    """Known names by label. Feed it the system's own areas (district → "district", street →
    "town", community → "community"), road names ("road") and a place registry ("poi")."""

    names: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def builtin(cls) -> Gazetteer:
        g = cls()
        g.add("prov", _PROVINCES)
        g.add("city", [c + "市" for c in _CITIES + list(_MUNICIPALITIES)])
        g.add("country", ["中国", "中华人民共和国"])
        return g

    @classmethod
    def from_names(cls, names: Mapping[str, Iterable[str]], *, builtin: bool = True) -> Gazetteer:
        g = cls.builtin() if builtin else cls()
        for label, values in names.items():
            g.add(label, values)
        return g

    def add(self, label: str, values: Iterable[str]) -> None:
        if label not in _LABEL_SET:
            raise ValueError(f"unknown address label {label!r}")
        self.names.setdefault(label, set()).update(v.strip() for v in values if v and v.strip())

    def entries(self) -> Iterable[tuple[str, str, bool]]:
        """(name, label, is_short_form)"""
        for label, values in self.names.items():
            for name in values:
                yield name, label, False
                short = _short_form(name, label)
                if short:
                    yield short, label, True


def _short_form(name: str, label: str) -> str | None:
    if label == "prov" and name in _PROVINCE_SHORT:
        return _PROVINCE_SHORT[name]
    if label not in _ADMIN_LEVEL or label == "country":
        return None
    for suf in _STRIP_SUFFIXES:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            short = name[: -len(suf)]
            return None if short in _AMBIGUOUS_SHORT else short
    return None


# ---------------------------------------------------------------------------------------------
# Rule parser

# (keyword, kind, min_stem, max_stem): a keyword closes a part whose stem (the text before it)
# has a length in [min_stem, max_stem]. Longer keywords are tried first at each position.
_KEYWORDS = [
    ("特别行政区", "prov", 2, 2),
    ("自治区", "prov", 2, 6),
    ("省", "prov", 2, 3),
    ("自治州", "city", 2, 10),
    ("地区", "city", 2, 5),
    ("盟", "city", 2, 4),
    ("市", "city", 1, 5),
    ("自治县", "district", 2, 10),
    ("自治旗", "district", 2, 8),
    ("区", "district", 1, 4),
    ("县", "district", 1, 4),
    ("旗", "district", 1, 4),
    ("经济技术开发区", "devzone", 0, 8),
    ("高新技术产业开发区", "devzone", 0, 8),
    ("经济开发区", "devzone", 0, 8),
    ("开发区", "devzone", 0, 8),
    ("高新区", "devzone", 0, 6),
    ("保税区", "devzone", 0, 6),
    ("新区", "devzone", 1, 6),
    ("街道办事处", "town", 1, 6),
    ("街道", "town", 1, 6),
    ("镇", "town", 1, 4),
    ("乡", "town", 1, 4),
    ("苏木", "town", 1, 4),
    ("社区", "community", 1, 6),
    ("居委会", "community", 1, 6),
    ("村", "community", 1, 5),
    ("嘎查", "community", 1, 5),
    ("大道", "road", 1, 8),
    ("大街", "road", 1, 8),
    ("胡同", "road", 1, 8),
    ("路", "road", 1, 8),
    ("街", "road", 1, 6),
    ("巷", "road", 1, 6),
    ("弄", "road", 2, 6),
    ("道", "road", 2, 6),
    ("东段", "road", 0, 0),
    ("西段", "road", 0, 0),
    ("南段", "road", 0, 0),
    ("北段", "road", 0, 0),
    ("中段", "road", 0, 0),
    ("东区", "poi", 0, 0),
    ("西区", "poi", 0, 0),
    ("南区", "poi", 0, 0),
    ("北区", "poi", 0, 0),
    ("中区", "poi", 0, 0),
]
_POI_SUFFIXES = """
小区 花园 大厦 广场 公寓 家园 新村 中心 大楼 公司 集团 医院 卫生院 学校 大学 学院 中学 小学 幼儿园 市场 商场 超市 酒店
宾馆 饭店 银行 工业区 工业园 工业园区 园区 科技园 产业园 校区 商城 商厦 大院 山庄 庄园 公馆 宿舍 村委会 委员会 办事处
派出所 营业厅 仓库 车站 码头 机场 加油站 服务区 景区 物流园 写字楼 综合楼 办公楼 门市部 专柜 店面 分店 总店 门店
苑 园 城 厦 场 店 厂 站 所 局 院 馆 阁 轩 居 邸 墅 府 庭 湾 坊 楼 寓 宫 寺 部 行 社 堂 基地 小镇
""".split()
_KEYWORDS += [(s, "poi", 1 if len(s) > 1 else 2, 12) for s in _POI_SUFFIXES]
_KEYWORDS.sort(key=lambda k: -len(k[0]))

# Characters that, before or after a keyword, mean it is not a suffix here (超市, 市场, 小区, 家乡 …).
_NOT_BEFORE = {
    "市": set("超门城菜夜集股都坊"),
    "区": set("小社园景校营厂商住舍辖"),
    "乡": set("家城"),
    "村": set("农新"),
    "道": set("街大通车人步隧管知频"),
    "街": set("步商"),
    "城": set("县"),
    "场": set("市广"),
    "院": set("医学"),
    "园": set("花家公"),
    "部": set("东西南北中全内外"),
}
_NOT_AFTER = {
    "市": set("场民政中内级委局"),
    "区": set("域"),
    "县": set("城"),
    "镇": set("政"),
    "乡": set("村"),
    "村": set("委民镇"),
    "城": set("市"),
    "街": set("坊"),
    "新区": set("路街"),
    "楼": set("下"),
    "中心": set("路"),
}

_ASSIST_WORDS = sorted(
    """交叉口 交汇处 交界处 斜对面 对面 旁边 附近 门口 隔壁 后面 前面 里面 楼下 东侧 西侧 南侧 北侧 东面 西面 南面
    北面 东边 西边 南边 北边 院内 对过""".split(),
    key=len,
    reverse=True,
)
# One-character assist words, accepted only in a context that makes them plain (see _match_assist).
_ASSIST_JOIN = frozenset("与和及")
_ASSIST_SINGLE = frozenset("旁内外东西南北口边近处下")
# 北100米, 东侧约50米
_DISTANCE = re.compile(r"[东西南北]?[东西南北侧面边]?约?\d+(?:米|公里|m\b)")
_NOISE_WORDS = ("电话联系", "电联", "电话")

_UNITS = [
    ("号大街", "road"),
    ("号路", "road"),
    ("号街", "road"),
    ("号楼", "houseno"),
    ("号门", "gate"),
    ("号院", "poi"),
    ("单元", "cellno"),
    ("号", "no"),
    ("室", "roomno"),
    ("房", "roomno"),
    ("栋", "houseno"),
    ("幢", "houseno"),
    ("座", "houseno"),
    ("#", "houseno"),
    ("排", "houseno"),
    ("层", "floorno"),
    ("楼", "floorno"),
    ("弄", "lane"),
    ("巷", "lane"),
    ("期", "subpoi"),
    ("区", "subpoi"),
    ("组", "road"),
]
_NUM_GROUP = re.compile(r"[0-9A-Za-z]+(?:[-_—~][0-9A-Za-z]+)*")
_CN_NUM = re.compile(r"[第负]?[零〇一二三四五六七八九十百千两]+")
_ALNUM_FLOOR = re.compile(r"[-负]?\d+[Ff]")


class _State:
    def __init__(self, text: str):
        self.text = text
        self.spans: list[Span] = []
        self.admin = -1
        self.last = ""  # label of the last part that was not noise
        self.seen: Counter[str] = Counter()

    def emit(self, label: str, start: int, end: int) -> None:
        if end <= start:
            return
        self.spans.append(Span(label, start, end, self.text[start:end]))
        if label == "redundant":
            return
        self.seen[label] += 1
        self.last = label
        if label in _ADMIN_LEVEL:
            self.admin = max(self.admin, _ADMIN_LEVEL[label])

    def seen_text(self, s: str) -> bool:
        return any(sp.text == s for sp in self.spans)


class RuleParser:
    """Suffix and known-name rules. `RuleParser(Gazetteer.from_names({...}))` adds the system's names."""

    source = "rules"

    def __init__(self, gazetteer: Gazetteer | None = None):
        self.gazetteer = gazetteer if gazetteer is not None else Gazetteer.builtin()
        self._names: dict[str, list[tuple[str, bool]]] = {}
        for name, label, short in self.gazetteer.entries():
            self._names.setdefault(name, []).append((label, short))
        self._max_name = max((len(n) for n in self._names), default=0)

    def __call__(self, text: str) -> ParsedAddress:
        return self.parse(text)

    def parse(self, text: str) -> ParsedAddress:
        norm = _normalise(text)
        st = _State(text)
        i, n = 0, len(norm)
        while i < n:
            ch = norm[i]
            if ch.isspace():
                i += 1
                continue
            for matcher in (
                self._match_separator,
                self._match_noise,
                self._match_name,
                self._match_assist,
                self._match_number,
                self._match_han,
            ):
                end = matcher(norm, i, st)
                if end is not None:
                    i = end
                    break
            else:
                j = i + 1
                while j < n and _ctype(norm[j]) == _ctype(ch) and not norm[j].isspace():
                    j += 1
                st.emit(self._default_label(st), i, j)
                i = j
        return ParsedAddress(text=text, spans=tuple(st.spans), source=self.source)

    # -- matchers: each returns the end of what it emitted, or None ---------------------------

    @staticmethod
    def _match_separator(t: str, i: int, st: _State) -> int | None:
        if t[i] not in _SEPARATORS:
            return None
        j = i
        while j < len(t) and t[j] in _SEPARATORS:
            j += 1
        st.emit("redundant", i, j)
        return j

    @staticmethod
    def _match_noise(t: str, i: int, st: _State) -> int | None:
        for w in _NOISE_WORDS:
            if t.startswith(w, i):
                st.emit("redundant", i, i + len(w))
                return i + len(w)
        return None

    def _match_name(self, t: str, i: int, st: _State) -> int | None:
        for length in range(min(self._max_name, len(t) - i), 1, -1):
            cand = t[i : i + length]
            for label, short in self._names.get(cand, ()):
                after = t[i + length : i + length + 2]
                if short and after[:1] in _ROAD_CHARS | set("区县市镇乡村旗省"):
                    continue
                if short and after[:1] in _DIRECTIONS and after[1:2] in _ROAD_CHARS:
                    continue
                if short and label in ("prov", "city") and st.admin >= _ADMIN_LEVEL[label] and not st.seen[label]:
                    continue
                resolved = self._resolve(label, cand, st, keyword=None)
                if resolved is None:
                    continue
                st.emit(resolved, i, i + length)
                return i + length
        return None

    @staticmethod
    def _match_assist(t: str, i: int, st: _State) -> int | None:
        if not st.spans:
            return None
        m = _DISTANCE.match(t, i)
        if m:
            st.emit("assist", i, m.end())
            return m.end()
        for w in _ASSIST_WORDS:
            if t.startswith(w, i):
                st.emit("assist", i, i + len(w))
                return i + len(w)
        ch = t[i]
        nxt = t[i + 1 : i + 2]
        if ch in _ASSIST_JOIN and st.last in ("road", "subroad", "poi"):
            # 文三路与学院路: a join only when another road follows soon.
            rest = t[i + 1 : i + 10]
            if any(k in rest for k in ("路", "街", "道", "巷")):
                st.emit("assist", i, i + 1)
                return i + 1
        if ch in _ASSIST_SINGLE and st.last not in ("", "redundant") and (not nxt or not _is_han(nxt)):
            st.emit("assist", i, i + 1)
            return i + 1
        if ch == "口" and st.last in ("road", "subroad"):
            st.emit("assist", i, i + 1)
            return i + 1
        return None

    def _match_number(self, t: str, i: int, st: _State) -> int | None:
        m = _ALNUM_FLOOR.match(t, i)
        if m and (m.end() == len(t) or not t[m.end()].isalnum()):
            st.emit("floorno", i, m.end())
            return m.end()
        m = _NUM_GROUP.match(t, i)
        chinese = False
        if m is None:
            m = _CN_NUM.match(t, i)
            chinese = True
            if m is None:
                return None
        j = m.end()
        unit, kind = next(((u, k) for u, k in _UNITS if t.startswith(u, j)), (None, None))
        if unit is None:
            if chinese or not any(c.isdigit() for c in m.group()):
                if chinese or len(m.group()) > 1:
                    return None
            self._bare_numbers(t, i, j, st)
            return j
        if kind == "gate":
            # 10号门市部 is room 10 of a shop front, 3号门 a gate.
            unit, kind = ("号", "no") if t[j + 2 : j + 3] in ("市", "店") else (unit, "subpoi")
        end = j + len(unit)
        if kind == "no":
            kind = self._label_for_hao(st)
        elif kind == "lane":
            kind = "roadno" if st.last == "road" else "subroad"
        elif kind == "subpoi":
            kind = "subpoi" if st.seen["poi"] else "poi"
        if kind in ("roadno", "subroadno"):
            st.emit(kind, i, end)
            return end
        # 3-2-501室: the last number carries the unit, the ones before fill the levels above it.
        parts = _split_group(t, i, j)
        numbers = [p for p in parts if p[2]]
        if len(numbers) > 1 and kind in _HOUSE_RANK:
            slots = [lab for lab in _HOUSE_LEVELS if _HOUSE_RANK[lab] < _HOUSE_RANK[kind]]
            head = _assign_slots(len(numbers) - 1, slots, st)
            k = 0
            for s, e, is_num in parts[:-1]:
                if is_num:
                    st.emit(head[k], s, e)
                    k += 1
                else:
                    st.emit("redundant", s, e)
            st.emit(kind, parts[-1][0], end)
        else:
            st.emit(kind or "", i, end)
        return end

    def _bare_numbers(self, t: str, i: int, j: int, st: _State) -> None:
        if st.last in ("road", "subroad") and not st.seen["roadno" if st.last == "road" else "subroadno"]:
            st.emit("roadno" if st.last == "road" else "subroadno", i, j)
            return
        parts = _split_group(t, i, j)
        count = sum(1 for p in parts if p[2])
        last_rank = _HOUSE_RANK.get(st.last, -1)
        slots = [lab for lab in _HOUSE_LEVELS if _HOUSE_RANK[lab] > last_rank] or ["roomno"]
        if count == 1 and st.last not in _HOUSE_RANK:
            digits = t[i:j]
            labels = ["roomno" if len(digits) >= 3 and st.seen["poi"] else "houseno"]
        else:
            labels = _assign_slots(count, slots, st)
        k = 0
        for s, e, is_num in parts:
            if is_num:
                st.emit(labels[k], s, e)
                k += 1
            else:
                st.emit("redundant", s, e)

    @staticmethod
    def _label_for_hao(st: _State) -> str:
        if st.last == "road" and not st.seen["roadno"]:
            return "roadno"
        if st.last == "subroad" and not st.seen["subroadno"]:
            return "subroadno"
        if st.last in ("houseno", "cellno", "floorno"):
            return "roomno"
        if st.last in ("poi", "subpoi", "assist"):
            return "houseno"
        if st.seen["road"] and not st.seen["roadno"] and not st.seen["poi"]:
            return "roadno"
        return "houseno" if not st.seen["houseno"] else "roomno"

    def _match_han(self, t: str, i: int, st: _State) -> int | None:
        if not _is_han(t[i]):
            return None
        r = i
        while r < len(t) and _is_han(t[r]):
            if r > i and (self._number_unit_at(t, r) or any(t.startswith(w, r) for w in _NOISE_WORDS)):
                break
            if r > i and any(t.startswith(w, r) for w in _ASSIST_WORDS):
                break
            r += 1
        chosen: tuple[str, int] | None = None
        p = i
        while p < r:
            hit = self._keyword_at(t, i, p, r, st)
            if hit is None:
                p += 1
                continue
            label, end, kind = hit
            # 越城区, 桐乡市, 机场路: a keyword right after another one closes a longer part.
            while True:
                nxt = self._keyword_at(t, i, end, r, st)
                if nxt is None and end < r and t[end] in _DIRECTIONS:
                    nxt = self._keyword_at(t, i, end + 1, r, st)
                    nxt = nxt if nxt is not None and nxt[2] == "road" else None
                if nxt is None or nxt[2] == "poi":
                    break
                label, end, kind = nxt
            if chosen is None:
                chosen = (label, end)
                if kind != "poi":
                    break
            elif kind == "poi" and p - chosen[1] <= 1:
                # 国大全城|小区, 宝龙城|市|广场 are one place; 和田大厦|新楠溪江大酒店 are two.
                chosen = (chosen[0], end)
            else:
                break
            p = end
        if chosen is None:
            st.emit(self._default_label(st), i, r)
            return r
        st.emit(chosen[0], i, chosen[1])
        return chosen[1]

    def _keyword_at(self, t: str, i: int, p: int, r: int, st: _State) -> tuple[str, int, str] | None:
        for kw, kind, lo, hi in _KEYWORDS:
            if not t.startswith(kw, p) or p + len(kw) > r:
                continue
            stem = p - i
            if not lo <= stem <= hi:
                continue
            before = t[p - 1] if p > 0 else ""
            after = t[p + len(kw)] if p + len(kw) < len(t) else ""
            if before in _NOT_BEFORE.get(kw, ()) or after in _NOT_AFTER.get(kw, ()):
                continue
            label = self._resolve(kind, t[i : p + len(kw)], st, keyword=kw)
            if label is not None:
                return label, p + len(kw), kind
        return None

    @staticmethod
    def _resolve(kind: str, span_text: str, st: _State, keyword: str | None) -> str | None:
        """The label a `kind` of part gets at this point of the address, or None to keep looking."""
        if kind in _ADMIN_LEVEL:
            level = _ADMIN_LEVEL[kind]
            if kind == "community" and (st.seen["road"] or st.seen["poi"]):
                return "poi" if not st.seen["poi"] else None
            if kind == "devzone" and st.admin >= level:
                return "poi" if not st.seen["poi"] else "subpoi"
            if st.admin < level:
                return kind
            # 义乌市 after 金华市: a county-level city is a district.
            if kind == "city" and keyword == "市" and st.admin == _ADMIN_LEVEL["city"]:
                return "district"
            if level <= _ADMIN_LEVEL["city"] or st.seen_text(span_text) or st.seen[kind]:
                return "redundant"
            return None
        if kind == "road":
            if not st.seen["road"]:
                return "road"
            if st.last in ("road", "roadno", "assist") or not st.seen["subroad"]:
                return "subroad"
            return None
        if kind == "poi":
            if st.last in _HOUSE_RANK:
                return "person"
            return "subpoi" if st.seen["poi"] else "poi"
        return kind if kind in _LABEL_SET else None

    @staticmethod
    def _number_unit_at(t: str, r: int) -> bool:
        m = _CN_NUM.match(t, r)
        if not m or t[r] in "第负":
            return False
        j = m.end()
        return any(t.startswith(u, j) for u, _ in _UNITS)

    @staticmethod
    def _default_label(st: _State) -> str:
        if st.last in _HOUSE_RANK:
            return "person"
        if st.seen["poi"]:
            return "subpoi"
        return "poi"


def _split_group(t: str, i: int, j: int) -> list[tuple[int, int, bool]]:
    """'47-6-746' → [(start, end, is_number), …] with the separators between."""
    out = []
    k = i
    while k < j:
        is_num = t[k].isalnum()
        e = k
        while e < j and t[e].isalnum() == is_num:
            e += 1
        out.append((k, e, is_num))
        k = e
    return out


def _assign_slots(count: int, slots: list[str], st: _State) -> list[str]:
    """Which house-level labels `count` bare numbers take, given the levels still free."""
    patterns = {
        1: ["roomno"],
        2: ["houseno", "roomno"],
        3: ["houseno", "cellno", "roomno"],
        4: ["houseno", "cellno", "floorno", "roomno"],
    }
    want = [lab for lab in patterns.get(count, _HOUSE_LEVELS) if lab in slots]
    if len(want) < count:
        want = (slots + ["roomno"] * count)[:count] if len(slots) < count else slots[-count:]
    while len(want) < count:
        want.append("roomno")
    return want[:count]


# ---------------------------------------------------------------------------------------------
# BIO data


@dataclass(frozen=True)
class GoldAddress:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (label, start, end) over `text`


def _canonical_label(raw: str) -> str:
    return raw.lower()


def read_bio(path: str | os.PathLike) -> list[GoldAddress]:
    """Read a BIO file (token, space, tag per line; blank line between addresses). Tokens may be
    several characters (digit runs); spans are character offsets in the joined text. Labels are
    lower-cased (the corpus has devZone and subRoad)."""
    out: list[GoldAddress] = []
    tokens: list[tuple[str, str]] = []

    def flush():
        if tokens:
            out.append(_gold_from_tokens(tokens))
            tokens.clear()

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                continue
            tok, _, tag = line.rpartition(" ")
            if not tok:
                continue
            tokens.append((tok, tag))
    flush()
    return out


def _gold_from_tokens(tokens: list[tuple[str, str]]) -> GoldAddress:
    text = "".join(t for t, _ in tokens)
    spans: list[list] = []
    pos = 0
    for tok, tag in tokens:
        prefix, _, raw = tag.partition("-")
        label = _canonical_label(raw) if raw else None
        if prefix == "O" or label is None:
            pos += len(tok)
            continue
        if prefix == "B" or not spans or spans[-1][0] != label or spans[-1][2] != pos:
            spans.append([label, pos, pos + len(tok)])
        else:
            spans[-1][2] = pos + len(tok)
        pos += len(tok)
    return GoldAddress(text, tuple((lab, s, e) for lab, s, e in spans))


def spans_to_tags(n: int, spans: Iterable[tuple[str, int, int]]) -> list[str]:
    tags = ["O"] * n
    for label, s, e in spans:
        if s < e <= n:
            tags[s] = f"B-{label}"
            for k in range(s + 1, e):
                tags[k] = f"I-{label}"
    return tags


def tags_to_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    spans: list[list] = []
    for k, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "O" or not label:
            continue
        if prefix == "B" or not spans or spans[-1][0] != label or spans[-1][2] != k:
            spans.append([label, k, k + 1])
        else:
            spans[-1][2] = k + 1
    return [(lab, s, e) for lab, s, e in spans]


# ---------------------------------------------------------------------------------------------
# CRF


def _char_features(text: str, rule_tags: list[str]) -> list[list[str]]:
    norm = _normalise(text)
    n = len(norm)

    def c(k):
        if k < 0:
            return "<s>"
        if k >= n:
            return "</s>"
        ch = norm[k]
        return "0" if ch.isdigit() else ch

    types = [_ctype(ch) for ch in norm]
    # Length of the digit/letter run each character sits in: short runs are house numbers,
    # long ones rooms or road numbers.
    run_len = [0] * n
    k = 0
    while k < n:
        if types[k] in "DL":
            e = k
            while e < n and types[e] in "DL":
                e += 1
            for q in range(k, e):
                run_len[q] = e - k
            k = e
        else:
            k += 1

    def t(k):
        return types[k] if 0 <= k < n else "#"

    def r(k):
        return rule_tags[k] if 0 <= k < n else "#"

    feats = []
    for k in range(n):
        f = [
            "bias",
            "c0=" + c(k),
            "c-1=" + c(k - 1),
            "c+1=" + c(k + 1),
            "c-2=" + c(k - 2),
            "c+2=" + c(k + 2),
            "c-1c0=" + c(k - 1) + c(k),
            "c0c+1=" + c(k) + c(k + 1),
            "c-2c-1=" + c(k - 2) + c(k - 1),
            "c+1c+2=" + c(k + 1) + c(k + 2),
            "c-1c+1=" + c(k - 1) + c(k + 1),
            "c-1c0c+1=" + c(k - 1) + c(k) + c(k + 1),
            "t=" + t(k - 1) + t(k) + t(k + 1),
            "r0=" + r(k),
            "r-1=" + r(k - 1),
            "r+1=" + r(k + 1),
            "r0r+1=" + r(k) + "|" + r(k + 1),
        ]
        if run_len[k]:
            f.append(f"run={min(run_len[k], 5)}")
        if k == 0:
            f.append("BOS")
        if k == n - 1:
            f.append("EOS")
        f.append(f"pos={min(k // 4, 6)}")
        feats.append(f)
    return feats


class CrfParser:
    """A CRF tagger loaded from a python-crfsuite model file."""

    source = "crf"

    def __init__(self, model_path: str | os.PathLike, gazetteer: Gazetteer | None = None):
        # python-crfsuite only where a CRF model is configured; the rule parser needs none.
        import pycrfsuite

        self.model_path = Path(model_path)
        self.rules = RuleParser(gazetteer)
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(self.model_path))
        # The Tagger keeps the last sequence's state between set() and probability().
        self._lock = threading.Lock()

    def __call__(self, text: str) -> ParsedAddress:
        return self.parse(text)

    def parse(self, text: str) -> ParsedAddress:
        if not text:
            return ParsedAddress(text=text, spans=(), source=self.source, confidence=1.0)
        rule_tags = spans_to_tags(len(text), ((s.label, s.start, s.end) for s in self.rules(text).spans))
        xseq = _char_features(text, rule_tags)
        with self._lock:
            self._tagger.set(xseq)
            tags = self._tagger.tag()
            confidence = self._tagger.probability(tags)
        spans = tuple(Span(lab, s, e, text[s:e]) for lab, s, e in tags_to_spans(tags))
        return ParsedAddress(text=text, spans=spans, source=self.source, confidence=round(confidence, 4))


def train_address_model(
    train_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    limit: int | None = None,
    c1: float = 0.1,
    c2: float = 0.05,
    max_iterations: int = 100,
    gazetteer: Gazetteer | None = None,
) -> Path:
    """Train a CRF on a BIO file (never on the data you evaluate on) and write it to `out_path`.
    `limit` takes the first N addresses, for quick tests. The defaults were chosen on a split of
    the training file (first 7,000 addresses to train, the rest to score): 100 L-BFGS iterations
    score as well as 200 in half the time."""
    import pycrfsuite  # as in CrfParser: only where a CRF is used

    data = read_bio(train_path)
    if limit is not None:
        data = data[:limit]
    if not data:
        raise ValueError(f"{train_path}: no addresses")
    rules = RuleParser(gazetteer)
    trainer = pycrfsuite.Trainer(verbose=False)
    for gold in data:
        rule_tags = spans_to_tags(len(gold.text), ((s.label, s.start, s.end) for s in rules(gold.text).spans))
        trainer.append(_char_features(gold.text, rule_tags), spans_to_tags(len(gold.text), gold.spans))
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": max_iterations, "feature.possible_transitions": True})
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    trainer.train(str(tmp))
    # Replace atomically so a running process never opens a half-written model.
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------------------------
# Choosing a parser


def configured_model_path() -> Path:
    """GRIDGOV_ADDRESS_MODEL, else settings.ADDRESS_MODEL_PATH (when Django is set up), else
    var/models/address-crf.crfsuite."""
    raw = os.environ.get(MODEL_ENV)
    if not raw and settings.configured:
        raw = getattr(settings, "ADDRESS_MODEL_PATH", None)
    return Path(raw) if raw else DEFAULT_MODEL_PATH


_cache_lock = threading.Lock()
_cache: dict[tuple, Callable[[str], ParsedAddress]] = {}


def get_parser(model_path: str | os.PathLike | None = None, gazetteer: Gazetteer | None = None):
    """The CRF parser when its model file exists, else the rule parser. Cached per model file
    (and its modification time, so a retrained model is picked up) and gazetteer."""
    path = Path(model_path) if model_path is not None else configured_model_path()
    try:
        mtime = path.stat().st_mtime_ns if path.is_file() else None
    except OSError:
        mtime = None
    key = (str(path), mtime, id(gazetteer) if gazetteer is not None else None)
    with _cache_lock:
        parser = _cache.get(key)
        if parser is None:
            if len(_cache) > 16:
                _cache.clear()
            parser = CrfParser(path, gazetteer) if mtime is not None else RuleParser(gazetteer)
            _cache[key] = parser
    return parser


def parse_address(text: str, *, parser: Callable[[str], ParsedAddress] | None = None) -> ParsedAddress:
    """Split an address into labelled parts, with the configured parser (CRF if a model file is
    configured and present, rules otherwise)."""
    return (parser or get_parser())(text)


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class LabelScore:
    precision: float
    recall: float
    f1: float
    support: int  # gold spans
    predicted: int
    correct: int


@dataclass(frozen=True)
class Evaluation:
    per_label: dict[str, LabelScore]
    micro: LabelScore
    addresses: int

    def micro_without(self, *labels: str) -> LabelScore:
        kept = [s for lab, s in self.per_label.items() if lab not in labels]
        return _score(sum(s.correct for s in kept), sum(s.predicted for s in kept), sum(s.support for s in kept))


def _score(correct: int, predicted: int, support: int) -> LabelScore:
    p = correct / predicted if predicted else 0.0
    r = correct / support if support else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return LabelScore(p, r, f, support, predicted, correct)


def evaluate_parser(
    parser: Callable[[str], ParsedAddress],
    dev: str | os.PathLike | Iterable[GoldAddress],
    *,
    limit: int | None = None,
) -> Evaluation:
    """Span-level scores: a predicted part counts only if its label, start and end all match a gold
    part. Per label and micro-averaged over all labels (including `redundant`)."""
    data = read_bio(dev) if isinstance(dev, (str, os.PathLike)) else list(dev)
    if limit is not None:
        data = data[:limit]
    correct: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    support: Counter[str] = Counter()
    for gold in data:
        g = set(gold.spans)
        p = {(s.label, s.start, s.end) for s in parser(gold.text).spans}
        for lab, _, _ in g:
            support[lab] += 1
        for lab, _, _ in p:
            predicted[lab] += 1
        for lab, _, _ in g & p:
            correct[lab] += 1
    labels = sorted(set(support) | set(predicted), key=lambda lab: LABELS.index(lab) if lab in LABELS else 99)
    per_label = {lab: _score(correct[lab], predicted[lab], support[lab]) for lab in labels}
    micro = _score(sum(correct.values()), sum(predicted.values()), sum(support.values()))
    return Evaluation(per_label=per_label, micro=micro, addresses=len(data))


def format_evaluation(ev: Evaluation, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'label':<11} {'P':>6} {'R':>6} {'F1':>6} {'gold':>6} {'pred':>6}")
    for lab, s in ev.per_label.items():
        lines.append(f"{lab:<11} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.support:6d} {s.predicted:6d}")
    m = ev.micro
    lines.append(f"{'micro':<11} {m.precision:6.3f} {m.recall:6.3f} {m.f1:6.3f} {m.support:6d} {m.predicted:6d}")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Train the address CRF: python -m gridgov.nlp.address TRAIN OUT")
    ap.add_argument("train_path")
    ap.add_argument("out_path", nargs="?", default=str(DEFAULT_MODEL_PATH))
    args = ap.parse_args()
    print(train_address_model(args.train_path, args.out_path))
