"""The trained category model in intake: retraining on confirmed history, loading only files this
system wrote, model guesses over the keyword floor, and risk alerts from gridgov.nlp."""

import itertools
import os

import pytest
from django.core.management import CommandError, call_command

from gridgov.appeals.intake import classifier, pipeline
from gridgov.appeals.models import Appeal, Kind
from gridgov.appeals.services import appeal_categorise, appeal_register
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify

pytestmark = pytest.mark.django_db

PLACES = [
    "幸福里小区3号楼",
    "朝阳路12号院",
    "光明家园",
    "东风小区",
    "和平里北街8号",
    "建设路口",
    "花园小区5号楼",
    "新华街道西里",
    "长安花园",
    "青年公寓",
    "红旗小区",
    "向阳里",
    "团结湖北区",
    "育新小区2号楼",
    "锦绣家园",
    "翠微路9号",
    "南湖东园",
    "北苑小区",
    "枫林绿洲",
    "金台里",
]
TEMPLATES = {
    "010101": [
        "{p}的垃圾桶满了好几天没人清运",
        "{p}门口垃圾堆成了山，臭气熏天",
        "{p}的垃圾站很久没人来收了",
        "{p}生活垃圾堆积，苍蝇乱飞",
    ],
    "010103": [
        "{p}楼道里堆满了旧家具和纸箱",
        "{p}有住户在楼梯间堆放杂物",
        "{p}的过道被自行车和杂物堵住了",
        "{p}楼梯口堆着很多废品没人清理",
    ],
    "010104": [
        "{p}楼上半夜装修，电钻声吵得睡不着",
        "{p}的广场舞音响声音太大，天天吵到很晚",
        "{p}楼下酒吧音乐声很大一直到凌晨",
        "{p}旁边工地夜里施工机器轰鸣",
    ],
}
_ticket = itertools.count(1)


def confirmed(code, text, catalogue, **classification):
    return Appeal.objects.create(
        ticket_no=f"T{next(_ticket):010d}",
        text=text,
        category=catalogue["categories"][code],
        time_limit=catalogue["categories"][code].time_limit,
        classification={"guesses": [], "confirmed_by": "operator", **classification},
    )


def history(catalogue, per_class=20):
    """20 distinct confirmed appeals in each of three leaves: 60 in all."""
    for code, templates in TEMPLATES.items():
        texts = [t.format(p=p) for p, t in zip(PLACES, itertools.cycle(templates))]
        for i, text in enumerate(texts[:per_class]):
            confirmed(code, text if i % 5 else f"市民来电反映：{text}，希望尽快处理", catalogue)


@pytest.fixture
def model_path(settings, tmp_path):
    settings.CLASSIFIER_MODEL_PATH = tmp_path / "models" / "appeal-classifier.joblib"
    return settings.CLASSIFIER_MODEL_PATH


def replace(path, data):
    # By rename, as model_write does: a new file the cache notices at once.
    tmp = path.with_name("new.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def retrain(capsys=None, *args):
    call_command("retrain_classifier", "--min-per-class", "5", "--holdout", "0.2", *args)
    return capsys.readouterr().out if capsys else ""


def test_retrain_writes_the_model_and_reports_held_out_accuracy(catalogue, model_path, capsys):
    history(catalogue)
    # The classifier's own unconfirmed guesses never train it.
    Appeal.objects.create(
        ticket_no="T-unconfirmed",
        text="楼上噪音",
        category=catalogue["categories"]["010101"],
        classification={"guesses": [], "confirmed_by": ""},
    )
    out = retrain(capsys)
    print(out)
    assert "3 classes, 60 appeals (48 train, 12 held out)" in out
    assert "top-1" in out and "top-3 1.000" in out
    assert model_path.is_file() and not list(model_path.parent.glob("*.tmp"))
    ev = AuditEvent.objects.get(action="classifier.retrain")
    assert ev.data["classes"] == 3 and ev.data["rows"] == 60 and ev.data["held_out"] == 12
    assert ev.data["top1"] >= 0.8 and ev.data["top3"] == 1.0 and ev.data["written"] is True
    assert audit_verify() == []
    model = classifier.loaded_model()
    assert sorted(model.catalogue) == ["010101", "010103", "010104"]
    assert model.meta["rows"] == 60


def test_classify_step_puts_model_guesses_over_the_keyword_floor(catalogue, model_path, capsys):
    history(catalogue)
    retrain(capsys)
    # No catalogue keyword in the text: only the model knows it is noise.
    guesses = pipeline.classify_step("隔壁KTV唱歌到半夜两点，吵得孩子没法睡觉")
    assert guesses[0].code == "010104" and guesses[0].source == "model"
    assert 0.4 <= guesses[0].confidence <= 1
    # A strong keyword for a leaf the model never saw still comes through, merged in.
    guesses = pipeline.classify_step("燃气灶旁边的煤气管子老化了")
    codes = {g.code: g.source for g in guesses}
    assert codes.get("010102") == "keyword"
    # Through the whole intake: the model's guess is kept on the appeal, with its source.
    appeal, _ = appeal_register(data={"text": "隔壁KTV唱歌到半夜两点，吵得孩子没法睡觉"}, actor="test")
    assert appeal.category.code == "010104"
    assert appeal.classification["guesses"][0]["source"] == "model"
    assert appeal.classification["confirmed_by"] == ""


def test_an_operator_correction_trains_the_next_model(catalogue, model_path, capsys, make_user):
    history(catalogue)
    op = make_user("operator")
    appeal, _ = appeal_register(data={"text": "单元门口那堆东西一直没人管，进出很不方便"}, actor=op)
    assert appeal.classification["confirmed_by"] == ""
    assert len(classifier.training_rows()) == 60
    appeal = appeal_categorise(appeal_id=appeal.pk, category_code="010103", actor=op)
    assert appeal.classification["confirmed"] == "010103" and appeal.classification["corrected"] is True
    rows = classifier.training_rows()
    assert len(rows) == 61 and rows[0][:2] == ("单元门口那堆东西一直没人管，进出很不方便", "010103")
    out = retrain(capsys)
    assert "61 appeals" in out
    assert AuditEvent.objects.get(action="classifier.retrain").data["rows"] == 61


def test_no_model_file_classifies_by_keywords_alone(catalogue, model_path):
    assert not model_path.exists()
    assert classifier.model_guesses("楼上噪音太大") == []
    guesses = pipeline.classify_step("小区垃圾桶满了没人清运")
    assert [g.source for g in guesses] == ["keyword"] and guesses[0].code == "010101"
    appeal, _ = appeal_register(data={"text": "楼上噪音太大"}, actor="test")
    assert appeal.category.code == "010104"
    # Nothing the keywords know: no category, the operator decides.
    appeal, _ = appeal_register(data={"text": "想问一下办事大厅几点开门"}, actor="test")
    assert appeal.category is None and appeal.classification["guesses"] == []


def test_only_files_this_system_wrote_are_loaded(catalogue, model_path, capsys, settings):
    history(catalogue)
    retrain(capsys)
    assert classifier.loaded_model() is not None
    good = model_path.read_bytes()
    # One byte changed in the pickled part: refused before unpickling.
    replace(model_path, good[:-10] + bytes([good[-10] ^ 1]) + good[-9:])
    assert classifier.loaded_model() is None
    assert classifier.model_guesses("楼上噪音太大") == []
    # A plain joblib file (what gridgov.nlp.Classifier.save writes) is not one of ours either.
    import joblib

    joblib.dump({"format": 1}, model_path.with_name("plain.joblib"))
    replace(model_path, model_path.with_name("plain.joblib").read_bytes())
    assert classifier.loaded_model() is None
    # Signed under another SECRET_KEY.
    replace(model_path, good)
    assert classifier.loaded_model() is not None
    settings.SECRET_KEY = "another-key-" + "x" * 40
    replace(model_path, good)
    with pytest.raises(classifier.ModelFileError):
        classifier.model_read(model_path)
    assert classifier.loaded_model() is None
    assert pipeline.classify_step("小区垃圾桶满了没人清运")[0].source == "keyword"


def test_a_new_file_is_picked_up_without_a_restart(catalogue, model_path, capsys):
    history(catalogue)
    retrain(capsys)
    first = classifier.loaded_model()
    assert classifier.loaded_model() is first  # cached
    confirmed("010101", "路边的垃圾箱盖子坏了，垃圾洒了一地", catalogue)
    retrain(capsys)
    second = classifier.loaded_model()
    assert second is not first and second.meta["rows"] == 61
    model_path.unlink()
    assert classifier.loaded_model() is None


def test_too_little_history_is_refused(catalogue, model_path):
    for i in range(4):
        confirmed("010101", f"垃圾没人清运{i}", catalogue)
    with pytest.raises(CommandError, match="two categories"):
        call_command("retrain_classifier", "--min-per-class", "2")
    assert not model_path.exists()


def test_a_poor_model_does_not_replace_the_file(catalogue, model_path, capsys):
    history(catalogue)
    with pytest.raises(CommandError, match="not replaced"):
        retrain(capsys, "--min-top1", "1.01")
    assert not model_path.exists()
    ev = AuditEvent.objects.get(action="classifier.retrain")
    assert ev.data["written"] is False


def test_the_nightly_task_retrains(catalogue, model_path, settings):
    from gridgov.appeals.tasks import retrain_classifier

    entry = settings.CELERY_BEAT_SCHEDULE["appeals-retrain-classifier"]
    assert entry["task"] == "gridgov.appeals.tasks.retrain_classifier"
    assert retrain_classifier.run()["written"] is False  # no history yet: skipped, not failed
    history(catalogue)
    summary = retrain_classifier.run()
    assert summary["written"] is True and summary["classes"] == 3 and model_path.is_file()


# --- kind and risk from gridgov.nlp ---------------------------------------------------------------


def test_kind_step_keeps_its_shape():
    kind, confidence, words = pipeline.kind_step("我要举报小区里有人偷排污水")
    assert kind == Kind.REPORT and isinstance(kind, Kind) and 0 < confidence <= 1 and "举报" in words
    assert pipeline.kind_step("请问居住证怎么办理？")[0] == Kind.CONSULTATION
    assert pipeline.kind_step("建议在路口增设红绿灯")[0] == Kind.SUGGESTION


def test_risk_step_keeps_its_shape():
    flags = pipeline.risk_step("楼下闻到很浓的煤气味，怀疑燃气泄漏")
    assert [f["flag"] for f in flags] == ["gas_leak"] and flags[0]["transfer"] == "119"
    assert set(flags[0]) >= {"flag", "words", "transfer"} and "煤气味" in flags[0]["words"]
    # Self-harm and violence are one "threat" alert: police now, an ambulance too.
    flags = pipeline.risk_step("再不解决我就跳楼，还要砍死他")
    assert [f["flag"] for f in flags] == ["threat"]
    assert flags[0]["transfer"] == "110" and flags[0]["transfers"] == ["110", "120"]


@pytest.mark.parametrize(
    "text",
    [
        "咨询一下燃气费在哪里缴纳",
        "小区电动车乱停，存在火灾隐患，希望物业管一管",
        "楼下商场挂着跳楼价甩卖的横幅，喇叭很吵",
        "学校组织消防演练，想问一下需要准备什么",
        "燃气公司上门检查收费是否合理",
        "家里没有着火，只是邻居烧烤的烟飘进来了",
    ],
)
def test_look_alikes_raise_no_alert_at_intake(city, catalogue, make_user, text):
    appeal, _ = appeal_register(data={"text": text, "lng": 116.405, "lat": 39.91}, actor=make_user("operator"))
    assert appeal.risk == {}
    # The category's own limit (燃气 is a catalogue keyword of the 2-hour gas-leak leaf), not the
    # 2 hours of a risk alert.
    assert appeal.time_limit == (appeal.category.time_limit if appeal.category else "")
    assert not appeal.assignments.filter(department__code="gongan").exists()


def test_a_real_gas_leak_still_alerts_at_intake(city, catalogue, make_user):
    appeal, _ = appeal_register(
        data={"text": "楼下闻到很浓的煤气味，怀疑燃气泄漏", "lng": 116.405, "lat": 39.91}, actor=make_user("operator")
    )
    assert appeal.risk["flags"][0]["flag"] == "gas_leak" and appeal.risk["transfer"] == ["119"]
    assert appeal.time_limit == "2h"
