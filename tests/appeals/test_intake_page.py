"""The operator's intake page: register, see what the pipeline decided, confirm, merge."""

import pytest

from gridgov.appeals.models import Appeal
from gridgov.appeals.services import appeal_register

pytestmark = pytest.mark.django_db

GARBAGE = "小区门口垃圾桶满了好几天没人清运，味道很大"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def operator_client(client, make_user, city, catalogue):
    client.force_login(make_user("operator"))
    return client


def test_form_renders_in_chinese(operator_client):
    res = operator_client.get("/intake/")
    html = res.content.decode()
    assert res.status_code == 200
    assert '<html lang="zh-hans">' in html
    for label in (
        "登记诉求",
        "诉求内容",
        "事发地址",
        "经度",
        "纬度",
        "坐标系",
        "诉求人",
        "联系电话",
        "渠道",
        "诉求类型",
        "诉求分类",
        "垃圾清运不及时（010101）",
    ):
        assert label in html, label
    assert "vendor/leaflet/leaflet.js" in html and "css/gridgov.css" in html and "//cdn" not in html


@pytest.mark.parametrize("role", ["grid_worker", "street_office", "department", "leader"])
def test_form_is_refused_to_others(client, make_user, city, role):
    kw = {"area_code": "110101001"} if role == "street_office" else {}
    client.force_login(make_user(role, **kw))
    assert client.get("/intake/").status_code == 403
    assert client.post("/intake/", {"text": GARBAGE, "channel": "phone", "crs": "wgs84"}).status_code == 403
    assert Appeal.objects.count() == 0


def test_anonymous_is_sent_to_log_in(client):
    res = client.get("/intake/")
    assert res.status_code == 302 and "/login/" in res["Location"]


def test_posting_the_form_registers_and_shows_the_result(operator_client):
    res = operator_client.post(
        "/intake/",
        {
            "text": GARBAGE,
            "address_text": "甲街道某小区北门",
            "lng": "116.405",
            "lat": "39.91",
            "crs": "wgs84",
            "appellant_name": "张三",
            "appellant_phone": "13812345678",
            "channel": "phone",
            "kind": "",
            "category_code": "",
        },
    )
    appeal = Appeal.objects.get()
    assert res.status_code == 302 and res["Location"] == f"/intake/{appeal.ticket_no}/"
    page = operator_client.get(res["Location"]).content.decode()
    for text in (
        appeal.ticket_no,
        "甲一第1网格",
        "甲街道",
        "测试区",
        "城管委",
        "垃圾清运不及时",
        "7天",
        "13812345678",
        "确认分类",
        "已登记，工单编号",
    ):
        assert text in page, text
    assert appeal.state == "dispatched" and appeal.appellant_name == "张三"


def test_errors_are_shown_in_chinese_and_nothing_typed_is_lost(operator_client):
    res = operator_client.post(
        "/intake/",
        {
            "text": "",
            "address_text": "甲街道某小区北门",
            "lng": "116.405",
            "lat": "",
            "crs": "gcj02",
            "appellant_name": "欧阳娜娜",
            "appellant_phone": "13812345678",
            "channel": "web",
        },
    )
    html = res.content.decode()
    assert res.status_code == 200 and Appeal.objects.count() == 0
    assert "该字段是必填项" in html
    assert 'value="甲街道某小区北门"' in html and 'value="欧阳娜娜"' in html and 'value="116.405"' in html
    assert '<option value="gcj02" selected>' in html and '<option value="web" selected>' in html

    res = operator_client.post(
        "/intake/", {"text": GARBAGE, "lng": "116.405", "lat": "", "crs": "wgs84", "channel": "phone"}
    )
    html = res.content.decode()
    assert res.status_code == 200 and "经度和纬度须同时填写" in html and "/ send both" not in html
    assert Appeal.objects.count() == 0


def test_risk_alert_is_red_with_the_transfer_number(operator_client):
    operator_client.post(
        "/intake/",
        {
            "text": "楼下闻到很浓的煤气味，怀疑燃气泄漏",
            "lng": "116.405",
            "lat": "39.91",
            "crs": "wgs84",
            "channel": "phone",
        },
    )
    appeal = Appeal.objects.get()
    html = operator_client.get(f"/intake/{appeal.ticket_no}/").content.decode()
    assert 'class="alert-risk"' in html and "燃气泄漏" in html and "119 火警" in html
    assert "燃气集团" in html and "公安局" in html  # double dispatch shown


def test_unlocated_appeal_says_it_waits_for_manual_location(operator_client):
    operator_client.post("/intake/", {"text": GARBAGE, "address_text": "某某小区", "crs": "wgs84", "channel": "phone"})
    html = operator_client.get(f"/intake/{Appeal.objects.get().ticket_no}/").content.decode()
    assert "人工定位队列" in html


def test_confirm_or_correct_the_category(operator_client):
    operator_client.post(
        "/intake/", {"text": GARBAGE, "lng": "116.405", "lat": "39.91", "crs": "wgs84", "channel": "phone"}
    )
    appeal = Appeal.objects.get()
    res = operator_client.post(
        f"/intake/{appeal.ticket_no}/category", {"guess": "010101", "other": "010104"}, follow=True
    )
    assert "分类已确认" in res.content.decode()
    appeal.refresh_from_db()
    assert appeal.category.code == "010104" and appeal.classification["corrected"] is True
    res = operator_client.post(f"/intake/{appeal.ticket_no}/category", {"guess": "", "other": ""}, follow=True)
    assert "请选择分类" in res.content.decode()


def test_merge_button_is_the_hotline_centres(client, make_user, city, catalogue):
    op = make_user("operator")
    first, _ = appeal_register(data={"text": GARBAGE, "lng": 116.405, "lat": 39.91}, actor=op)
    dup, _ = appeal_register(
        data={"text": "小区门口的垃圾桶满了没人来清运，臭味很大", "lng": 116.4051, "lat": 39.9101}, actor=op
    )
    client.force_login(op)
    html = client.get(f"/intake/{dup.ticket_no}/").content.decode()
    assert first.ticket_no in html and "并单请热线中心操作" in html and "并入此单" not in html
    assert client.post(f"/intake/{dup.ticket_no}/merge", {"lead": first.ticket_no}).status_code == 403

    client.force_login(make_user("hotline_center"))
    html = client.get(f"/intake/{dup.ticket_no}/").content.decode()
    assert "并入此单" in html
    res = client.post(f"/intake/{dup.ticket_no}/merge", {"lead": first.ticket_no}, follow=True)
    assert f"已并入主单 {first.ticket_no}" in res.content.decode()
    dup.refresh_from_db()
    assert dup.state == "merged" and dup.lead_appeal_id == first.pk
