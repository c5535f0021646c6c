"""A labelled benchmark for duplicate detection, generated, so no citizen's words are needed.

`make_duplicate_benchmark(seed, n_problems)` builds a city of residential compounds, roads
and shops across ~8 × 8 km of Beijing, and a stream of appeals over three weeks:

* **problems**: one of ~26 kinds in 12 categories (噪音扰民, 路灯, 垃圾清运, 占道经营, 漏水,
  停水, 停暖, 违章建筑, 井盖, 道路破损, 违章停车, 油烟扰民) at one spot, each reported by
  1–7 callers within hours of each other. Every caller words it their own way: a different
  template of that kind, their own fillers, sometimes the problem's particular detail (which
  stall, which pipe) and sometimes not, the place said differently (full address, just the
  compound, 三号楼 for 3号楼, "附近"), an app's framing or an operator's house-style summary
  of a phone call, and typos (homophones, dropped characters). Positions carry GPS / geocoding error, and some are missing.
* **hard near-misses**, labelled as different problems:
  - *recurrence*: the same kind of problem at the same spot, 4–12 days later;
  - *far template*: a caller's very words, but about a spot 500 m–3 km away (sometimes on
    the same road), within hours;
  - *other problem*: the same spot, within hours, a different problem (half of them in the
    same category: construction noise vs. square dancing).

True pairs are pairs of appeals about the same problem. `evaluate(params, seed)` runs
`find_duplicates` on each appeal against every earlier one, in order of receipt, as intake
would, and scores the proposed pairs: precision, recall, F1.
"""

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from .clock import SHANGHAI
from .duplicates import AppealSketch, DuplicateParams, find_duplicates

CENTRE = (116.43, 39.95)
M_PER_DEG_LAT = 111_320.0
START = datetime(2026, 3, 2, tzinfo=SHANGHAI)

DISTRICTS = {
    "朝阳区": ["望京街道", "和平街街道", "安贞街道", "团结湖街道", "双井街道", "劲松街道", "潘家园街道", "八里庄街道"],
    "东城区": ["和平里街道", "安定门街道", "东直门街道", "建国门街道", "朝阳门街道", "东四街道"],
    "海淀区": ["花园路街道", "北太平庄街道", "学院路街道", "甘家口街道", "紫竹院街道", "八里庄街道"],
}
COMMUNITY_STEMS = (
    "花家地 和平里 安贞里 团结湖 双井 劲松 潘家园 八里庄 甘家口 紫竹院 牡丹园 "
    "北太平庄 方庄 蒲黄榆 左家庄 三里屯 呼家楼 光华里 红庙 小关 惠新 育新 青塔 鲁谷 "
    "八角 古城 金顶街 东高地 南苑 角门 洋桥 石榴园 木樨园 刘家窑 宋家庄 芍药居 "
    "西坝河 樱花园 和平街 胜古 柳芳 静安里 幸福村 新源里 麦子店 枣营 东湖 南湖 利泽 "
    "广顺 大西洋 来广营 北苑 立水桥 太阳宫 西八间房"
).split()
COMMUNITY_SUFFIXES = ["小区", "社区", "家园", "北里", "南里", "西里", "东里", "嘉园", "新村", "花园"]
ROADS = (
    "建国路 朝阳路 京顺路 安立路 北四环东路 广渠路 劲松路 南磨房路 西坝河路 小营路 "
    "中关村大街 学院路 知春路 马甸路 花园路 阜成路 光华路 东三环中路 工体北路 新源南路 "
    "酒仙桥路 将台路 望京西路 阜通东大街 广顺北大街 来广营西路 安外大街 和平里东街 "
    "东直门外大街 左家庄东街 惠新东街 樱花园东街 柳芳北街 胜古中路 曙光西里路"
).split()
SHOPS = ["超市", "菜市场", "幼儿园", "小学", "公交站", "地铁站", "便利店", "银行", "药店", "菜站", "早市", "社区医院"]
GATES = ["东", "南", "西", "北"]
CN_NUM = "零一二三四五六七八九十"

PREFIXES = [
    "市民来电反映：",
    "来电人反映，",
    "网友留言：",
    "",
    "",
    "",
    "诉求人称，",
    "市民通过随手拍反映：",
    "您好，",
    "投诉：",
]
SUFFIXES = [
    "希望相关部门尽快处理。",
    "请尽快解决。",
    "麻烦派人来看看。",
    "",
    "",
    "要求相关部门核实处理。",
    "谢谢！",
    "已经反映过多次了。",
]
SINCE = ["这几天", "最近一周", "好几天了", "从昨天开始", "已经半个多月", "这两天", "最近"]
TYPOS = dict(
    "灯登 噪燥 音因 垃拉 圾级 修休 坏怀 漏露 暖缓 盖概 施师 建见 扰绕 楼搂 清请 运云 摊滩 违为 章张 井景 停亭 吵炒 管馆 满慢 臭丑 堆推 铺捕 道到 路露 车扯 坑吭 烟眼 味未 热惹 水谁".split()
)  # character → a homophone typed instead

NOISE_EFFECT = ["根本没法睡觉", "老人孩子都休息不好", "严重影响居民休息", "家里孩子被吵醒好几次", "吵得人心烦"]

# kind → (category, details, templates, effects). {place} the spot as the caller says it,
# {detail} the problem's particular, {since}, {effect}, {time} fillers.
KINDS = {
    "construction_noise": (
        "noise",
        ["打桩", "电钻", "切割钢筋", "渣土车进出", "搅拌水泥", "拆除作业"],
        [
            "{place}有工地{time}还在施工，{detail}的声音很大，{effect}",
            "{place}旁边的工地夜间{detail}，{time}都不停，{effect}",
            "{place}的建筑工地天天晚上施工扰民，{detail}噪音特别大，{effect}",
            "工地夜里施工，在{place}，{time}还有{detail}的动静，{effect}",
        ],
        NOISE_EFFECT,
        ["晚上十一点多", "半夜十二点", "凌晨一两点", "夜里十点以后"],
    ),
    "square_dance": (
        "noise",
        ["广场舞", "健身操", "交谊舞", "秧歌"],
        [
            "{place}每天晚上有人跳{detail}，音响开得特别大，{effect}",
            "{place}跳{detail}的音响太吵了，{time}还在放，{effect}",
            "{place}有一群人跳{detail}，外放音乐声音很大，{effect}",
        ],
        NOISE_EFFECT,
        ["晚上九点多", "早上六点", "晚上十点"],
    ),
    "shop_speaker": (
        "noise",
        ["服装店", "手机店", "超市", "水果店", "理发店"],
        [
            "{place}的{detail}门口放大喇叭循环播放促销广告，{effect}",
            "{place}有家{detail}用音箱在门口喊促销，声音太大，{effect}",
            "{place}{detail}外放音乐声音太大了，一天到晚不停，{effect}",
        ],
        NOISE_EFFECT,
        [""],
    ),
    "lamp_out": (
        "streetlight",
        ["一排路灯", "两盏路灯", "路灯", "门口的路灯", "拐角的路灯"],
        [
            "{place}{detail}{since}不亮了，晚上黑漆漆的，{effect}",
            "{place}的{detail}坏了，{since}都没亮过，{effect}",
            "{place}{detail}不亮，天黑以后什么都看不见，{effect}",
            "{place}晚上{detail}全灭了，{effect}",
        ],
        ["老人孩子出门很不安全", "有人晚上摔倒了", "存在安全隐患", "走路都看不清"],
        [""],
    ),
    "lamp_pole": (
        "streetlight",
        ["路灯杆", "灯杆", "路灯的杆子"],
        [
            "{place}有一根{detail}歪了，随时可能倒下来，{effect}",
            "{place}的{detail}被车撞弯了，倾斜得很厉害，{effect}",
            "{place}{detail}底座松动，刮风的时候晃得厉害，{effect}",
        ],
        ["行人经过很危险", "怕砸到人", "存在安全隐患"],
        [""],
    ),
    "bins_overflow": (
        "garbage",
        ["垃圾桶", "垃圾站", "垃圾箱", "分类垃圾桶"],
        [
            "{place}的{detail}{since}没人清运，垃圾都满出来了，{effect}",
            "{place}{detail}里的垃圾堆成山了，{since}没人拉走，{effect}",
            "{place}{detail}满溢，垃圾清运不及时，{effect}",
            "{place}{detail}边上全是垃圾，没人收，{effect}",
        ],
        ["臭味很大", "招了很多苍蝇老鼠", "天热都发臭了", "路过都要捂着鼻子"],
        [""],
    ),
    "construction_waste": (
        "garbage",
        ["装修垃圾", "建筑垃圾", "渣土", "废旧家具"],
        [
            "{place}有人乱堆{detail}，{since}也没人清理，{effect}",
            "{place}堆了一大堆{detail}，把路都占了，{effect}",
            "{place}的{detail}随意倾倒，{effect}",
        ],
        ["影响通行", "尘土飞扬", "占用消防通道", "有安全隐患"],
        [""],
    ),
    "mobile_vendors": (
        "street_vending",
        ["早点摊", "水果摊", "烧烤摊", "卖菜的三轮车", "煎饼摊"],
        [
            "{place}有{detail}占道经营，{effect}",
            "{place}的{detail}天天把人行道占了，{effect}",
            "{place}每天{time}都有{detail}摆摊，{effect}",
            "{place}{detail}占道，{effect}",
        ],
        ["行人只能走机动车道", "堵得车都过不去", "环境脏乱差", "油烟和垃圾很多"],
        ["早上", "晚上", "下班时间"],
    ),
    "shop_outside": (
        "street_vending",
        ["饭馆", "汽修店", "五金店", "水果店"],
        [
            "{place}的{detail}长期在店外经营，东西摆满了人行道，{effect}",
            "{place}有家{detail}占用门前道路经营，{effect}",
            "{place}{detail}出店经营，{effect}",
        ],
        ["行人没法走", "影响市容", "物业和城管都不管"],
        [""],
    ),
    "upstairs_leak": (
        "water_leak",
        ["卫生间", "厨房", "阳台", "暖气管道"],
        [
            "我家在{place}，楼上{detail}漏水，{since}天花板一直往下滴水，{effect}",
            "{place}楼上住户{detail}漏水渗到我家，{effect}，联系不上楼上业主",
            "{place}家里{detail}顶上渗水，是楼上漏下来的，{effect}",
        ],
        ["墙皮都泡掉了", "家具都泡坏了", "屋顶发霉", "担心电线漏电"],
        [""],
    ),
    "pipe_burst": (
        "water_leak",
        ["自来水管", "供水管道", "消防水管", "地下水管"],
        [
            "{place}{detail}破裂，路面上一直在冒水，{effect}",
            "{place}的{detail}爆了，水流了一地，{effect}",
            "{place}地面有水往外冒，应该是{detail}漏了，{effect}",
        ],
        ["路面都结冰了", "浪费水资源", "行人没法走", "车辆经过溅一身水"],
        [""],
    ),
    "no_water": (
        "water_outage",
        ["整栋楼", "整个小区", "我们单元", "这一片"],
        [
            "{place}{detail}{since}停水了，事先也没有通知，{effect}",
            "{place}{detail}突然没水了，{effect}",
            "{place}{detail}停水，不知道什么时候来水，{effect}",
        ],
        ["做饭洗漱都成问题", "家里老人没法生活", "厕所都没法冲", "打物业电话没人接"],
        [""],
    ),
    "low_pressure": (
        "water_outage",
        ["高层", "楼上几层", "顶楼", "六层以上"],
        [
            "{place}{detail}水压太低，{since}水龙头只有一点点水，{effect}",
            "{place}{detail}用水困难，水压不够，{effect}",
            "{place}{detail}自来水压力小，{effect}",
        ],
        ["热水器都打不着火", "洗澡都洗不了", "做饭接水要等半天"],
        [""],
    ),
    "cold_radiator": (
        "heating",
        ["卧室", "客厅", "全屋", "北屋"],
        [
            "{place}家里{detail}暖气不热，室温只有十四五度，{effect}",
            "{place}{detail}暖气片冰凉，{since}一直这样，{effect}",
            "{place}供暖温度不达标，{detail}暖气不热，{effect}",
        ],
        ["老人孩子都冻感冒了", "在家得穿羽绒服", "找热力公司也没解决"],
        [""],
    ),
    "heating_stopped": (
        "heating",
        ["整栋楼", "整个小区", "我们单元"],
        [
            "{place}{detail}突然停暖了，{since}没有暖气，{effect}",
            "{place}{detail}停止供暖，也没通知，{effect}",
            "{place}{detail}暖气停了，热力公司说在抢修，{effect}",
        ],
        ["家里冷得待不住", "老人冻得受不了", "不知道什么时候恢复"],
        [""],
    ),
    "rooftop_building": (
        "illegal_building",
        ["顶楼住户", "六层住户", "有业主"],
        [
            "{place}{detail}在楼顶私搭乱建，盖了个彩钢板房，{effect}",
            "{place}楼顶有人违章搭建房子，是{detail}盖的，{effect}",
            "{place}{detail}楼顶违建，{effect}",
        ],
        ["楼顶防水都破坏了", "存在安全隐患", "影响其他住户"],
        [""],
    ),
    "yard_building": (
        "illegal_building",
        ["一层住户", "底商", "楼下邻居"],
        [
            "{place}{detail}私自扩建院子，圈占了公共绿地，{effect}",
            "{place}{detail}在楼前砌墙围了个院子，{effect}",
            "{place}{detail}违章圈地，{effect}",
        ],
        ["占用公共空间", "消防车都进不来", "物业管不了"],
        [""],
    ),
    "manhole_missing": (
        "manhole",
        ["雨水井", "污水井", "电力井", "通信井"],
        [
            "{place}有个{detail}的井盖丢了，{effect}",
            "{place}{detail}井盖没了，就一个黑窟窿，{effect}",
            "{place}井盖缺失，是个{detail}，{effect}",
        ],
        ["晚上行人容易掉下去", "太危险了", "有小孩差点踩进去"],
        [""],
    ),
    "manhole_broken": (
        "manhole",
        ["雨水井", "污水井", "电力井", "通信井"],
        [
            "{place}{detail}井盖破损了，一踩就晃，{effect}",
            "{place}的{detail}井盖碎了一半，{effect}",
            "{place}{detail}井盖下沉塌陷，车过去哐哐响，{effect}",
        ],
        ["晚上车过的时候声音很大", "容易绊倒行人", "存在安全隐患"],
        [""],
    ),
    "pothole": (
        "road_damage",
        ["大坑", "好几个坑", "一条裂缝", "塌陷"],
        [
            "{place}路面有{detail}，{since}一直没修，{effect}",
            "{place}的马路破损严重，出现{detail}，{effect}",
            "{place}道路坑洼不平，有{detail}，{effect}",
        ],
        ["电动车骑过去差点摔倒", "下雨积水看不见", "车辆经过很颠"],
        [""],
    ),
    "blocked_access": (
        "parking",
        ["消防通道", "小区出入口", "盲道", "人行道"],
        [
            "{place}有车辆长期乱停，把{detail}堵死了，{effect}",
            "{place}{detail}上停满了车，{effect}",
            "{place}车辆违停占用{detail}，{effect}",
        ],
        ["救护车都进不来", "行人没法走", "物业也不管"],
        [""],
    ),
    "zombie_car": (
        "parking",
        ["一辆白色轿车", "一辆面包车", "一辆没牌照的车", "好几辆破车"],
        [
            "{place}有{detail}停了好几个月没人开，落满了灰，{effect}",
            "{place}{detail}是僵尸车，长期占着车位，{effect}",
            "{place}停着{detail}，轮胎都瘪了，{since}没动过，{effect}",
        ],
        ["占用公共车位", "影响居民停车", "物业也联系不上车主"],
        [""],
    ),
    "restaurant_fumes": (
        "fumes",
        ["烧烤店", "饭馆", "火锅店", "小吃店"],
        [
            "{place}的{detail}油烟直排，{since}呛得开不了窗，{effect}",
            "{place}有家{detail}没装油烟净化器，{effect}",
            "{place}{detail}油烟太大了，{effect}",
        ],
        ["家里全是油烟味", "衣服都没法晾", "老人咳嗽得厉害"],
        [""],
    ),
}
CATEGORY_OF = {kind: spec[0] for kind, spec in KINDS.items()}
# How a hotline operator (坐席) sums a kind up when registering a phone call: operators
# write in a house style, so their summaries of one problem agree more than callers do.
SUMMARIES = {
    "construction_noise": "夜间施工噪音扰民",
    "square_dance": "广场舞噪音扰民",
    "shop_speaker": "商铺外放音响噪音扰民",
    "lamp_out": "路灯不亮",
    "lamp_pole": "路灯杆倾斜",
    "bins_overflow": "垃圾桶满溢未及时清运",
    "construction_waste": "建筑垃圾乱堆放",
    "mobile_vendors": "流动摊贩占道经营",
    "shop_outside": "商户出店经营",
    "upstairs_leak": "楼上漏水",
    "pipe_burst": "供水管道破裂漏水",
    "no_water": "停水",
    "low_pressure": "水压低",
    "cold_radiator": "暖气不热",
    "heating_stopped": "停暖",
    "rooftop_building": "楼顶违章建筑",
    "yard_building": "私自圈占院落违建",
    "manhole_missing": "井盖缺失",
    "manhole_broken": "井盖破损",
    "pothole": "路面破损坑洼",
    "blocked_access": "车辆违停堵塞通道",
    "zombie_car": "僵尸车长期占用车位",
    "restaurant_fumes": "餐饮油烟扰民",
}
OPERATOR_TEMPLATES = [
    "市民来电反映：{place}{summary}（{detail}），{effect}，希望相关部门尽快处理。",
    "来电人反映{place}{detail}{summary}，{effect}，要求尽快解决。",
    "市民来电反映{place}{summary}，{since}，{effect}。",
]
# Problems inside a home or a building are reported at a building; the rest anywhere.
INDOOR = {
    "upstairs_leak",
    "no_water",
    "low_pressure",
    "cold_radiator",
    "heating_stopped",
    "rooftop_building",
    "yard_building",
}


@dataclass(frozen=True)
class Site:
    """A compound (小区) with its roads, around a centre point."""

    district: str
    street: str
    community: str
    road: str
    road2: str
    x: float  # metres east of CENTRE
    y: float  # metres north of CENTRE


@dataclass(frozen=True)
class Spot:
    """One place a problem is at: a building, a gate, a crossing or a shop of a site."""

    site: Site
    kind: str  # building / gate / crossing / shop
    number: int
    gate: str
    shop: str
    x: float
    y: float

    def says(self, rng, formal=False):
        """The spot as someone says it; `formal` is the registered address field."""
        s = self.site
        if self.kind == "building":
            num = str(self.number) if rng.random() < 0.8 else _cn(self.number)
            forms = [
                f"北京市{s.district}{s.street}{s.community}{self.number}号楼",
                f"{s.district}{s.community}{self.number}号楼",
                f"{s.community}{num}号楼",
                f"{s.road}{s.community}{num}号楼",
                f"{s.community}{num}号楼附近",
            ]
        elif self.kind == "gate":
            forms = [
                f"北京市{s.district}{s.street}{s.community}{self.gate}门",
                f"{s.community}{self.gate}门",
                f"{s.road}{s.community}{self.gate}门口",
                f"{s.community}{self.gate}门附近",
            ]
        elif self.kind == "crossing":
            forms = [
                f"北京市{s.district}{s.road}与{s.road2}交叉口",
                f"{s.road}与{s.road2}交叉口",
                f"{s.road}{s.road2}路口",
                f"{s.road2}和{s.road}交口",
            ]
        else:
            forms = [
                f"北京市{s.district}{s.road}{self.number}号{self.shop}",
                f"{s.road}{self.number}号{self.shop}",
                f"{s.road}{self.shop}门口",
                f"{s.community}{self.shop}旁边",
            ]
        return forms[0 if formal and rng.random() < 0.6 else rng.randrange(len(forms))]


@dataclass(frozen=True)
class LabelledAppeal:
    sketch: AppealSketch
    problem: int  # appeals with the same problem number are duplicates
    role: str  # original / duplicate / recurrence / far_template / other_problem


def _cn(n):
    if n <= 10:
        return CN_NUM[n]
    tens, ones = divmod(n, 10)
    return (CN_NUM[tens] if tens > 1 else "") + "十" + (CN_NUM[ones] if ones else "")


def _to_lnglat(x, y):
    lat = CENTRE[1] + y / M_PER_DEG_LAT
    lng = CENTRE[0] + x / (M_PER_DEG_LAT * math.cos(math.radians(CENTRE[1])))
    return lng, lat


def _typos(rng, text):
    chars = list(text)
    for _ in range(rng.choice([1, 1, 2, 3])):
        i = rng.randrange(len(chars))
        if chars[i] in TYPOS and rng.random() < 0.7:
            chars[i] = TYPOS[chars[i]]
        elif chars[i] not in "，。：！" and rng.random() < 0.5:
            chars[i] = ""
    return "".join(chars)


class _City:
    def __init__(self, rng, n_sites, size_m=8000.0):
        self.rng = rng
        self.sites = []
        names = set()
        while len(self.sites) < n_sites:
            community = rng.choice(COMMUNITY_STEMS) + rng.choice(COMMUNITY_SUFFIXES)
            phase = 2
            while community in names:  # a big city runs out of names: 二期, 三期 …
                community = community.rstrip("期零一二三四五六七八九十") + _cn(phase) + "期"
                phase += 1
            names.add(community)
            district = rng.choice(list(DISTRICTS))
            road, road2 = rng.sample(ROADS, 2)
            x, y = rng.uniform(-size_m / 2, size_m / 2), rng.uniform(-size_m / 2, size_m / 2)
            self.sites.append(Site(district, rng.choice(DISTRICTS[district]), community, road, road2, x, y))

    def spot(self, site=None, kind=None, indoor=False):
        rng = self.rng
        site = site or rng.choice(self.sites)
        kind = kind or (
            "building" if indoor else rng.choices(["building", "gate", "crossing", "shop"], [3, 2, 2, 3])[0]
        )
        dx, dy = rng.gauss(0, 60), rng.gauss(0, 60)
        return Spot(site, kind, rng.randint(1, 24), rng.choice(GATES), rng.choice(SHOPS), site.x + dx, site.y + dy)

    def far_spot(self, spot, min_m=500.0, max_m=3000.0):
        """A spot of the same kind 500 m–3 km away; for a crossing or shop, often on the
        same road (a long road is one name over kilometres)."""
        rng = self.rng
        options = [s for s in self.sites if min_m + 150 <= math.dist((s.x, s.y), (spot.x, spot.y)) <= max_m]
        site = (
            rng.choice(options) if options else max(self.sites, key=lambda s: math.dist((s.x, s.y), (spot.x, spot.y)))
        )
        if spot.kind in ("crossing", "shop") and rng.random() < 0.5:
            road2 = rng.choice([r for r in ROADS if r not in (spot.site.road, spot.site.road2)])
            site = Site(site.district, site.street, site.community, spot.site.road, road2, site.x, site.y)
        return self.spot(site, spot.kind)


@dataclass
class _Problem:
    number: int
    kind: str
    spot: Spot
    detail: str
    start: datetime


class DuplicateBenchmark(NamedTuple):
    appeals: list  # LabelledAppeal, in order of receipt; sketch ids are 0, 1, 2, …
    true_pairs: set  # {(earlier id, later id)} of duplicates


def make_duplicate_benchmark(
    seed,
    n_problems=300,
    *,
    days=21,
    p_recurrence=0.15,
    p_far_template=0.2,
    p_other_problem=0.2,
    p_missing_position=0.15,
    p_typo=0.3,
    p_operator=0.35,
    gps_error_m=25.0,
):
    """A labelled stream of appeals, deterministic for a seed (see the module docstring)."""
    rng = random.Random(seed)
    city = _City(rng, n_sites=max(20, n_problems // 2))
    kinds = list(KINDS)
    problems, raw = [], []  # raw: (problem, role, text, spot_said, address, time)

    def new_problem(kind, spot, start):
        details = KINDS[kind][1]
        problem = _Problem(len(problems), kind, spot, rng.choice(details), start)
        problems.append(problem)
        return problem

    def caller_text(problem, template=None, fill=None):
        _, details, templates, effects, times = KINDS[problem.kind]
        operator = template is None and rng.random() < p_operator
        template = template or rng.choice(OPERATOR_TEMPLATES if operator else templates)
        fill = (
            dict(fill)
            if fill
            else {
                "detail": problem.detail if rng.random() < 0.75 else rng.choice(details),
                "since": rng.choice(SINCE),
                "effect": rng.choice(effects),
                "time": rng.choice(times),
                "summary": SUMMARIES[problem.kind],
            }
        )
        fill["place"] = problem.spot.says(rng)
        text = template.format(**fill)
        if not operator:
            text = rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)
        if rng.random() < p_typo:
            text = _typos(rng, text)
        if rng.random() < 0.2:
            text = text.replace("，", rng.choice([" ", ",", "、"]))
        return text, template, fill

    def report(problem, role, at, text=None):
        if text is None:
            text, _, _ = caller_text(problem)
        raw.append((problem, role, text, problem.spot.says(rng, formal=True), at))

    def random_start():
        # Appeals come mostly in the daytime.
        day = rng.randrange(days)
        hour = rng.choices(range(24), [1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 8, 7, 8, 8, 8, 8, 7, 7, 6, 5, 4, 3, 2])[0]
        return START + timedelta(days=day, hours=hour, minutes=rng.randrange(60))

    for _ in range(n_problems):
        kind = rng.choice(kinds)
        problem = new_problem(kind, city.spot(indoor=kind in INDOOR), random_start())
        report(problem, "original", problem.start)
        extra = rng.choices([0, 1, 2, 3, 4, 5, 6], [35, 28, 15, 10, 6, 4, 2])[0]
        for _ in range(extra):
            delay = min(rng.expovariate(1 / 5.0), 40.0)
            report(problem, "duplicate", problem.start + timedelta(hours=delay))

        if rng.random() < p_recurrence:
            later = problem.start + timedelta(days=rng.uniform(4, 12))
            again = new_problem(problem.kind, problem.spot, later)
            report(again, "recurrence", later)
        if rng.random() < p_far_template:
            far = new_problem(
                problem.kind, city.far_spot(problem.spot), problem.start + timedelta(hours=rng.uniform(0, 24))
            )
            far.detail = problem.detail
            _, template, fill = caller_text(problem)
            text, _, _ = caller_text(far, template, fill)
            report(far, "far_template", far.start, text)
        if rng.random() < p_other_problem:
            category = CATEGORY_OF[problem.kind]
            same_cat = [k for k in kinds if CATEGORY_OF[k] == category and k != problem.kind]
            if problem.spot.kind != "building":
                same_cat = [k for k in same_cat if k not in INDOOR]
            other_cat = [
                k for k in kinds if CATEGORY_OF[k] != category and (problem.spot.kind == "building" or k not in INDOOR)
            ]
            other_kind = rng.choice(same_cat if same_cat and rng.random() < 0.5 else other_cat)
            at = problem.start + timedelta(hours=rng.uniform(-12, 24))
            other = new_problem(other_kind, problem.spot, at)
            report(other, "other_problem", at)

    raw.sort(key=lambda r: r[4])
    appeals, by_problem = [], {}
    for i, (problem, role, text, address, at) in enumerate(raw):
        if rng.random() < p_missing_position:
            lng = lat = None
        else:
            # GPS or geocoding error; now and then a bad fix.
            sigma = gps_error_m if rng.random() < 0.9 else 3 * gps_error_m
            lng, lat = _to_lnglat(problem.spot.x + rng.gauss(0, sigma), problem.spot.y + rng.gauss(0, sigma))
        sketch = AppealSketch(
            id=i,
            text=text,
            lng=lng,
            lat=lat,
            received_at=at,
            category_code=CATEGORY_OF[problem.kind],
            address_text=address,
        )
        appeals.append(LabelledAppeal(sketch, problem.number, role))
        by_problem.setdefault(problem.number, []).append(i)
    true_pairs = {(a, b) for ids in by_problem.values() for j, b in enumerate(ids) for a in ids[:j]}
    return DuplicateBenchmark(appeals, true_pairs)


class Scores(NamedTuple):
    precision: float
    recall: float
    f1: float


class Evaluation(NamedTuple):
    scores: Scores
    true_positives: int
    false_positives: int
    false_negatives: int
    false_positives_by_role: dict  # the later appeal's role → count
    appeals: int


def predicted_pairs(benchmark, params=DuplicateParams()):
    """Each appeal against every earlier one still within the window, as intake sees them."""
    sketches = [a.sketch for a in benchmark.appeals]
    window = timedelta(hours=params.window_hours)
    pairs, start = set(), 0
    for i, sketch in enumerate(sketches):
        while sketch.received_at - sketches[start].received_at > window:
            start += 1
        for match in find_duplicates(sketch, sketches[start:i], params=params):
            pairs.add((match.candidate_id, sketch.id))
    return pairs


def score_pairs(predicted, truth):
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1)


def evaluate_detail(params=DuplicateParams(), seed=1, n_problems=300, **options):
    bench = make_duplicate_benchmark(seed, n_problems, **options)
    predicted = predicted_pairs(bench, params)
    wrong = predicted - bench.true_pairs
    by_role = {}
    for a, b in wrong:
        role = bench.appeals[b].role if bench.appeals[b].role != "duplicate" else bench.appeals[a].role
        by_role[role] = by_role.get(role, 0) + 1
    return Evaluation(
        scores=score_pairs(predicted, bench.true_pairs),
        true_positives=len(predicted & bench.true_pairs),
        false_positives=len(wrong),
        false_negatives=len(bench.true_pairs - predicted),
        false_positives_by_role=by_role,
        appeals=len(bench.appeals),
    )


def evaluate(params=DuplicateParams(), seed=1, n_problems=300, **options):
    """(precision, recall, F1) of find_duplicates over the pairs of a generated set."""
    return evaluate_detail(params, seed, n_problems, **options).scores
