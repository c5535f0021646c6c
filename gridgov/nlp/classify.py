"""What an appeal is about, what kind it is, and whether it is an emergency.

* `Classifier`: category from text. TF-IDF on character 1–3-grams (no word segmentation needed for
  Chinese) and a linear SVM with sigmoid-calibrated probabilities, merged with a `KeywordRules`
  floor so that a strong keyword (燃气泄漏 → the gas-leak category) is never missed, and so that
  the rules still answer when no model is trained or the model is unsure.
* `classify_kind()`: 咨询 / 建议 / 求助 / 投诉 / 举报 by weighted cue phrases, with a confidence.
* `risk_flags()`: 扬言 (threats of violence or self-harm), fire, gas leak, collapse, trapped people,
  medical emergencies, each with the words that fired and the emergency line to transfer to.
* `urgency_tier()`: the time-limit tier (2 h danger, 24 h water/power/gas/heating, 7 d general,
  15 d complex) with its reasons.

Everything returns plain values (`Guess`, `RiskFlag`, `Urgency`) so the intake service can keep
each decision, with its source and confidence, on the appeal.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_FORMAT = 1


@dataclass(frozen=True)
class Guess:
    label: str
    confidence: float
    source: str  # "model", "rules", "model+rules" or "default"
    matched: tuple[str, ...] = ()  # the keywords or cue phrases that fired


# ---------------------------------------------------------------------------------------------
# Keyword floor


def _mask(text: str, phrases: Iterable[str]) -> str:
    for p in phrases:
        if p and p in text:
            text = text.replace(p, "\0" * len(p))
    return text


class KeywordRules:
    """`KeywordRules({"燃气泄漏类": ["燃气泄漏", "煤气味"], ...})`. A hit gives its label
    `confidence` (a little more for several distinct keywords). `exclude` lists phrases that are
    blanked out before matching, e.g. {"燃气": ["燃气费"]}-style negatives for short keywords."""

    def __init__(
        self,
        keywords: Mapping[str, Iterable[str]],
        *,
        confidence: float = 0.9,
        exclude: Iterable[str] = (),
    ):
        if not 0 < confidence <= 1:
            raise ValueError("confidence must be in (0, 1]")
        self.keywords = {label: tuple(dict.fromkeys(w for w in words if w)) for label, words in keywords.items()}
        self.confidence = confidence
        self.exclude = tuple(exclude)

    def hits(self, text: str) -> dict[str, list[str]]:
        masked = _mask(text or "", self.exclude)
        out = {}
        for label, words in self.keywords.items():
            found = [w for w in words if w in masked]
            if found:
                out[label] = found
        return out

    def guesses(self, text: str) -> list[Guess]:
        hits = self.hits(text)
        ranked = sorted(hits.items(), key=lambda kv: (-len(kv[1]), -max(len(w) for w in kv[1]), kv[0]))
        return [
            Guess(label, round(min(0.99, self.confidence + 0.02 * (len(words) - 1)), 4), "rules", tuple(words))
            for label, words in ranked
        ]

    def __bool__(self) -> bool:
        return bool(self.keywords)


# ---------------------------------------------------------------------------------------------
# Trainable category model


def _prepare(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _sigmoid_proba(calibrated, X):
    """CalibratedClassifierCV(method="sigmoid").predict_proba(X), the same numbers, with one
    array operation per fold where scikit-learn calls each class's calibrator in turn (with
    its input checks: ~170 ms a text for 100 classes and 3 folds, the whole of intake's time)."""
    # numpy and scipy only once a trained model answers: the keyword rules need neither.
    import numpy as np
    from scipy.special import expit

    n = len(calibrated.classes_)
    total = np.zeros((X.shape[0], n))
    for fold in calibrated.calibrated_classifiers_:
        scores = fold.estimator.decision_function(X)
        scores = scores.reshape(-1, 1) if scores.ndim == 1 else scores
        a = np.array([c.a_ for c in fold.calibrators])
        b = np.array([c.b_ for c in fold.calibrators])
        p = expit(-(a * scores + b))
        proba = np.zeros((X.shape[0], n))
        if n == 2:
            proba[:, 1] = p[:, 0]
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            proba[:, np.searchsorted(fold.classes, fold.estimator.classes_)] = p
            denominator = proba.sum(axis=1)[:, np.newaxis]
            proba = np.divide(proba, denominator, out=np.full_like(proba, 1 / n), where=denominator != 0)
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
        total += proba
    return total / len(calibrated.calibrated_classifiers_)


class Classifier:
    """Category classifier. `fit(texts, labels)`, then `predict_top(text, k)`; `save(path)` and
    `Classifier.load(path)` with joblib. Only load model files you wrote yourself (joblib unpickles)."""

    def __init__(
        self,
        rules: KeywordRules | None = None,
        *,
        min_confidence: float = 0.4,
        ngram_range: tuple[int, int] = (1, 3),
        C: float = 1.0,
        random_state: int = 0,
        min_df: int = 1,
    ):
        self.rules = rules
        self.min_confidence = min_confidence
        self.ngram_range = tuple(ngram_range)
        self.C = C
        self.random_state = random_state
        # n-grams seen in fewer texts are dropped: on tens of thousands of appeals, 2 keeps the
        # model a fraction of the size (one weight per n-gram and class) at no cost in accuracy.
        self.min_df = min_df
        self.pipeline: Any = None  # an sklearn Pipeline once trained or loaded

    @property
    def labels(self) -> list[str]:
        return [] if self.pipeline is None else [str(c) for c in self.pipeline.classes_]

    def _build(self, labels: Sequence[str]):
        # scikit-learn is heavy to import: only training and a trained model need it.
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.svm import LinearSVC

        smallest = min(Counter(labels).values())
        vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=self.ngram_range, sublinear_tf=True, min_df=self.min_df
        )
        if smallest >= 2:
            # Calibration needs every class in every fold; 3 folds when the data allows it.
            svm = LinearSVC(C=self.C, random_state=self.random_state)
            model = CalibratedClassifierCV(svm, method="sigmoid", cv=min(3, smallest))
        else:
            model = LogisticRegression(C=10 * self.C, max_iter=5000)
        return Pipeline([("tfidf", vectorizer), ("clf", model)])

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Classifier:
        texts = [_prepare(t) for t in texts]
        labels = [str(label) for label in labels]
        if len(texts) != len(labels):
            raise ValueError("texts and labels differ in length")
        if len(set(labels)) < 2:
            raise ValueError("need at least two labels to train")
        self.pipeline = self._build(labels)
        self.pipeline.fit(texts, labels)
        return self

    def model_scores(self, text: str) -> dict[str, float]:
        if self.pipeline is None:
            return {}
        proba = self._predict_proba([_prepare(text)])[0]
        return {str(c): float(p) for c, p in zip(self.pipeline.classes_, proba)}

    def proba(self, texts: Sequence[str]):
        """Model probabilities for many texts at once: an array (len(texts) × len(self.labels))."""
        if self.pipeline is None:
            raise ValueError("the classifier is not trained")
        return self._predict_proba([_prepare(t) for t in texts])

    def _predict_proba(self, texts):
        from sklearn.calibration import CalibratedClassifierCV  # heavy, as in _build

        clf = self.pipeline[-1]
        if isinstance(clf, CalibratedClassifierCV) and clf.method == "sigmoid":
            return _sigmoid_proba(clf, self.pipeline[:-1].transform(texts))
        return self.pipeline.predict_proba(texts)

    def predict_top(self, text: str, k: int = 3) -> list[Guess]:
        """The k most likely labels, best first. Every keyword hit is in the answer (it may make
        the list longer than k) and takes the rules' confidence when the model is less sure."""
        scores = self.model_scores(text)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        model_top = dict(ranked[: max(k, 1)])
        rule_guesses = self.rules.guesses(text) if self.rules else []
        merged: dict[str, Guess] = {label: Guess(label, round(p, 4), "model") for label, p in model_top.items()}
        for g in rule_guesses:
            p = scores.get(g.label, 0.0)
            source = "model+rules" if g.label in model_top else "rules"
            merged[g.label] = Guess(g.label, round(max(p, g.confidence), 4), source, g.matched)
        out = sorted(merged.values(), key=lambda g: (-g.confidence, g.label))
        keep = out[:k]
        for g in out[k:]:
            if g.source != "model":
                keep.append(g)
        return keep

    def is_unsure(self, guesses: Sequence[Guess]) -> bool:
        return not guesses or guesses[0].confidence < self.min_confidence

    def to_payload(self) -> dict:
        """Everything `from_payload` needs, as plain values and the fitted scikit-learn pipeline."""
        return {
            "format": MODEL_FORMAT,
            "pipeline": self.pipeline,
            "rules": None
            if self.rules is None
            else {"keywords": self.rules.keywords, "confidence": self.rules.confidence, "exclude": self.rules.exclude},
            "params": {
                "min_confidence": self.min_confidence,
                "ngram_range": self.ngram_range,
                "C": self.C,
                "random_state": self.random_state,
                "min_df": self.min_df,
            },
        }

    @classmethod
    def from_payload(cls, payload, rules: KeywordRules | None = None, *, where: str = "payload") -> Classifier:
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise ValueError(f"{where}: not a GridGov classifier file (format {MODEL_FORMAT})")
        if rules is None and payload["rules"] is not None:
            r = payload["rules"]
            rules = KeywordRules(r["keywords"], confidence=r["confidence"], exclude=r["exclude"])
        params = payload["params"]
        clf = cls(
            rules,
            min_confidence=params["min_confidence"],
            ngram_range=tuple(params["ngram_range"]),
            C=params["C"],
            random_state=params["random_state"],
            min_df=params.get("min_df", 1),
        )
        clf.pipeline = payload["pipeline"]
        return clf

    def save(self, path: str | os.PathLike) -> Path:
        import joblib  # with scikit-learn behind it: only when a model is saved or loaded

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        joblib.dump(self.to_payload(), tmp)
        os.replace(tmp, out)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike, rules: KeywordRules | None = None) -> Classifier:
        """`rules` replaces the saved keyword rules (the catalogue may have changed since training)."""
        import joblib  # with scikit-learn behind it: only when a model is saved or loaded

        return cls.from_payload(joblib.load(path), rules, where=str(path))


# ---------------------------------------------------------------------------------------------
# Appeal kind

CONSULTATION = "consultation"
SUGGESTION = "suggestion"
HELP = "help"
COMPLAINT = "complaint"
REPORT = "report"
KIND_NAMES_ZH = {CONSULTATION: "咨询", SUGGESTION: "建议", HELP: "求助", COMPLAINT: "投诉", REPORT: "举报"}
# When scores tie, the more specific kind wins: a report names wrongdoing, a consultation only asks.
_KIND_ORDER = (REPORT, COMPLAINT, HELP, SUGGESTION, CONSULTATION)

_KIND_CUES: dict[str, list[tuple[str, float]]] = {
    REPORT: [
        (r"举报|检举|揭发|实名反映.{0,6}(违法|违规|问题)", 3),
        (r"偷排|偷倒|偷税|漏税|骗保|骗取|贪污|受贿|行贿|吃回扣|传销|赌博|涉黄|卖淫|吸毒|制假|售假", 2),
        (r"违法|违规|非法|无证|无照|黑作坊|私搭乱建|违章(搭建|建筑)|违建|虚假宣传|私自", 1),
    ],
    COMPLAINT: [
        (r"投诉|我要告|强烈不满|讨个说法", 3),
        (r"扰民|不作为|乱作为|推诿|踢皮球|态度(恶劣|很?差|蛮横|粗暴)|乱收费|拖欠|欠薪|不退(款|钱|费)|霸王条款|敷衍", 2),
        (r"噪音|噪声|油烟|恶臭|臭味|乱停|占道|堵塞|没人管|无人管|不满|太差|严重影响|长期|多次反映", 1),
    ],
    HELP: [
        (r"求助|求救|救命|救救", 3),
        (r"帮帮|请帮|帮忙|帮我|帮助|救助|被困|走失|无家可归|无力(支付|承担)|看不起病|急需|走投无路", 2),
        (r"困难|生病|没钱|怎么办|孤寡|残疾|低保|停水|停电|没水|没电", 1),
    ],
    SUGGESTION: [
        (r"建议|提议|提个意见|呼吁", 3),
        (
            r"能否(增设|增加|设置|开通|修建|安装|延长|调整)|可否|希望.{0,8}(增设|增加|设置|开通|修建|安装|延长|调整|改善|优化)",
            2,
        ),
        (r"希望|应该|应当|增设|优化|改进|完善|规划", 1),
    ],
    CONSULTATION: [
        (r"咨询|请问|问一下|问下|想了解|想知道|想问", 3),
        (
            r"怎么(办理|申请|交|缴|办|查|领取|报名|认定|补办)|如何(办理|申请|缴纳|查询|领取|报名)|需要(哪些|什么)|什么时候|何时|在哪(里|儿)?(办|交|领|查)",
            2,
        ),
        (r"如何|怎样|是否|哪里|多少钱|流程|手续|政策|条件|能不能|可不可以|可以.{0,8}吗|吗[？?]|[？?]", 1),
    ],
}
_KIND_PATTERNS = {kind: [(re.compile(p), w) for p, w in cues] for kind, cues in _KIND_CUES.items()}


def classify_kind(text: str) -> Guess:
    """The appeal kind by cue phrases. With no cue at all the answer is a low-confidence
    consultation (the commonest kind on the hotline), source "default"."""
    text = text or ""
    scores: dict[str, float] = {}
    matched: dict[str, list[str]] = {}
    for kind, patterns in _KIND_PATTERNS.items():
        for rx, weight in patterns:
            found = list(dict.fromkeys(m.group(0) for m in rx.finditer(text)))
            if found:
                # A cue repeated adds a little; a different cue of the same weight adds fully.
                scores[kind] = scores.get(kind, 0.0) + weight * (1 + 0.25 * (len(found) - 1))
                matched.setdefault(kind, []).extend(found)
    flags = risk_flags(text)
    if flags:
        # Someone reporting a fire or a threat is asking for help, whatever words they use.
        scores[HELP] = scores.get(HELP, 0.0) + 2
        matched.setdefault(HELP, []).extend(w for f in flags for w in f.words)
    if not scores:
        return Guess(CONSULTATION, 0.3, "default")
    best = min(scores, key=lambda k: (-scores[k], _KIND_ORDER.index(k)))
    top = scores[best]
    total = sum(scores.values())
    # Share of the evidence, damped when the evidence itself is thin (a lone "？").
    confidence = (top / total) * min(1.0, 0.4 + top / 5)
    return Guess(best, round(min(confidence, 0.99), 4), "rules", tuple(matched[best]))


# ---------------------------------------------------------------------------------------------
# Risk flags and urgency

THREAT_VIOLENCE = "threat_violence"
THREAT_SELF_HARM = "threat_self_harm"
FIRE = "fire"
GAS_LEAK = "gas_leak"
COLLAPSE = "collapse"
TRAPPED = "trapped"
MEDICAL = "medical"

# Where 一键转接 hands the caller over: 110 police, 119 fire and rescue (also gas leaks,
# collapses, people trapped), 120 ambulance.
TRANSFER = {
    THREAT_VIOLENCE: ("110",),
    THREAT_SELF_HARM: ("110", "120"),
    FIRE: ("119",),
    GAS_LEAK: ("119",),
    COLLAPSE: ("119",),
    TRAPPED: ("119",),
    MEDICAL: ("120",),
}

_GAS = r"(?:燃气|煤气|天然气|液化气|液化石油气)"
_RISK_PATTERNS: dict[str, list[str]] = {
    THREAT_SELF_HARM: [
        r"跳楼|跳河|跳江|跳湖|跳海|跳桥|自杀|轻生|寻死|自尽|自焚|割腕|上吊",
        r"不想活|活不下去|一死了之|死给(你们|他们|政府)看|结束(自己的?)?生命|喝农药|喝药|吞药|吃安眠药",
    ],
    THREAT_VIOLENCE: [
        r"同归于尽|报复社会|血洗|扬言",
        r"(杀|弄|捅|砍|打|掐|毒)死(他|她|你|他们|你们|她们|全家|人)",
        r"杀了(他|她|你|他们|你们|她们|全家)",
        r"砍(了|伤)?(他|她|你|他们|你们|人)|拿刀|动刀",
        r"(?<![爆油])炸(了|掉|死|毁|平)(他|她|你|它|这|那|政府|你们|他们)|炸药|炸弹|引爆",
        r"放火烧|一把火烧|烧(了|掉)(他|她|你|你们|他们)的?|(泼|浇)汽油",
        r"要(他|她|你)的?命",
    ],
    FIRE: [
        r"着火|起火|失火|火灾|冒烟|烧起来|火势|爆炸|火光|明火",
    ],
    GAS_LEAK: [
        _GAS + r"(?:管道?|罐|瓶|表|阀门?)?(?:泄漏|泄露|漏气|外泄)",
        _GAS + r"味",
        r"闻到.{0,6}" + _GAS,
        r"漏气(?=.{0,10}" + _GAS + r")|" + _GAS + r".{0,10}漏气",
    ],
    COLLAPSE: [
        r"坍塌|塌方|倒塌|塌陷|垮塌|塌了|倒了.{0,4}(墙|房|楼)|(墙|房|楼|屋顶|路面|桥).{0,3}(塌|倒了)",
    ],
    TRAPPED: [
        r"被困|困在|电梯困人|关在电梯|卡在电梯",
    ],
    MEDICAL: [
        r"晕倒|昏倒|昏迷|休克|不省人事|没有?呼吸|没气了|抽搐|大出血|心脏病(发作|犯了)|中毒|受了?重伤|生命危险",
    ],
}
_RISK_RX = {kind: [re.compile(p) for p in pats] for kind, pats in _RISK_PATTERNS.items()}
# Phrases that look like a risk word but are not one: a sale, a drill, a hazard to fix, a fee.
_RISK_EXCLUDE = (
    "跳楼价",
    "跳楼甩卖",
    "跳楼大甩卖",
    "火灾隐患",
    "消防隐患",
    "防火",
    "消防演练",
    "火灾演练",
    "消防演习",
    "防范火灾",
    "预防火灾",
    "火灾保险",
    "燃气费",
    "煤气费",
    "燃气公司",
    "燃气表读数",
    "塌陷区治理",
    "炸鸡",
    "炸串",
    "炸酱",
    "冒烟检测",
)
_NEGATION = re.compile(r"(没有|没|未|无|不是|不会|并非|防止|预防|以防|以免|担心会?|害怕会?|怕)$")
# A risk spoken of as a possibility or a likeness (一旦引发火灾, 像一颗定时炸弹) is not happening now.
_HYPOTHETICAL = re.compile(r"一旦|万一|如果|假如|若是|容易|可能|隐患|以免|以防|防止|预防|像")


@dataclass(frozen=True)
class RiskFlag:
    kind: str
    words: tuple[str, ...]
    transfer: tuple[str, ...]  # emergency lines to hand over to: "110", "119", "120"


def risk_flags(text: str) -> list[RiskFlag]:
    """Risks that need a 2-hour response and possibly an emergency transfer. A word right after
    a negation or a fear (没有着火, 担心坍塌), or spoken of as a possibility (一旦引发火灾), does
    not fire. Recall comes first: an operator confirms a flag, a missed fire cannot be undone."""
    masked = _mask(text or "", _RISK_EXCLUDE)
    flags = []
    for kind, patterns in _RISK_RX.items():
        words: list[str] = []
        for rx in patterns:
            for m in rx.finditer(masked):
                if _NEGATION.search(masked[max(0, m.start() - 4) : m.start()]):
                    continue
                if _HYPOTHETICAL.search(masked[max(0, m.start() - 6) : m.start()]):
                    continue
                words.append(m.group(0))
        if words:
            flags.append(RiskFlag(kind, tuple(dict.fromkeys(words)), TRANSFER[kind]))
    return flags


def emergency_transfer(text: str) -> tuple[str, ...]:
    """The emergency lines the operator should transfer to, most pressing first."""
    out: list[str] = []
    for flag in risk_flags(text):
        for number in flag.transfer:
            if number not in out:
                out.append(number)
    return tuple(sorted(out, key=("110", "119", "120").index))


TIER_DANGER = "2h"
TIER_UTILITY = "24h"
TIER_GENERAL = "7d"
TIER_COMPLEX = "15d"
TIER_HOURS = {TIER_DANGER: 2, TIER_UTILITY: 24, TIER_GENERAL: 7 * 24, TIER_COMPLEX: 15 * 24}

_UTILITY = re.compile(
    "|".join(
        [
            r"停水|断水|没水|没有水|无水|水压(低|小)|水管(爆|破|裂|漏)|爆管|自来水.{0,4}(黄|浑|臭)",
            r"停电|断电|没电|没有电|跳闸|电线(断|掉)",
            r"停气|" + _GAS + r".{0,4}(停|断|中断|打不着|没有?气)",
            r"暖气.{0,4}(不热|不暖|冰凉|没有?热|漏水)|不供暖|停暖|没有?暖气|供暖.{0,4}(不足|不达标|温度低)",
            r"下水道?.{0,4}(堵|反|冒)|污水.{0,4}(外溢|倒灌|反涌)|化粪池.{0,4}(满|溢)",
        ]
    )
)
_COMPLEX = re.compile(r"历史遗留|拆迁安置|征地补偿|产权纠纷|不动产登记|房产证.{0,6}(办理|办不|没办)|多年未(解决|办)")


@dataclass(frozen=True)
class Urgency:
    tier: str  # "2h", "24h", "7d", "15d"
    hours: int  # calendar hours; cities that count working days convert downstream
    reasons: tuple[str, ...] = ()
    flags: tuple[RiskFlag, ...] = field(default_factory=tuple)


def urgency_tier(text: str) -> Urgency:
    """The time-limit tier: danger to life or property (any risk flag) → 2 h; water, power, gas or
    heating out → 24 h; long-standing property and land cases → 15 d; anything else 7 d."""
    text = text or ""
    flags = tuple(risk_flags(text))
    if flags:
        words = tuple(w for f in flags for w in f.words)
        return Urgency(TIER_DANGER, TIER_HOURS[TIER_DANGER], words, flags)
    utility = [m.group(0) for m in _UTILITY.finditer(_mask(text, _RISK_EXCLUDE))]
    if utility:
        return Urgency(TIER_UTILITY, TIER_HOURS[TIER_UTILITY], tuple(dict.fromkeys(utility)))
    complex_ = [m.group(0) for m in _COMPLEX.finditer(text)]
    if complex_:
        return Urgency(TIER_COMPLEX, TIER_HOURS[TIER_COMPLEX], tuple(dict.fromkeys(complex_)))
    return Urgency(TIER_GENERAL, TIER_HOURS[TIER_GENERAL])


# ---------------------------------------------------------------------------------------------
# Evaluation helpers (used by the benchmark and the tests)


def top_k_accuracy(clf: Classifier, texts: Sequence[str], labels: Sequence[str], k: int = 1) -> float:
    if not texts:
        return 0.0
    hits = 0
    for text, label in zip(texts, labels):
        if label in [g.label for g in clf.predict_top(text, k=k)[:k]]:
            hits += 1
    return hits / len(texts)


def load_labelled_messages(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Texts (subject + details) and level-1 labels of the Teddy Cup 2020 labelled messages
    (UTF-8 CSV: 留言编号, 留言用户, 留言主题, 留言时间, 留言详情, 一级分类)."""
    texts, labels = [], []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            texts.append(f"{row['留言主题'].strip()}\n{row['留言详情'].strip()}")
            labels.append(row["一级分类"].strip())
    return texts, labels
