"""Personal data: the masking rules, and who gets the masked appeal."""

import pytest

from gridgov.appeals.access import may_see_personal_data
from gridgov.appeals.masking import appellant_fields, mask_id_card, mask_name, mask_phone, mask_text
from gridgov.appeals.services import appeal_register


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # These tests create a dozen users each; the production hasher costs ~1.5 s per user here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize(
    "raw,masked",
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("010-68123456", "010-6****456"),
        ("0571-87654321", "0571-8****321"),
        ("68123456", "6****456"),
        ("12345", "***45"),
        ("13812345678，010-68123456", "138****5678，010-6****456"),
        ("", ""),
    ],
)
def test_mask_phone(raw, masked):
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    "raw,masked",
    [
        ("张三", "张*"),
        ("李小明", "李**"),
        ("欧阳娜娜", "欧阳**"),
        ("阿依古丽·买买提", "阿依**·***"),
        ("王", "*"),
        ("John Smith", "J*** S****"),
        ("", ""),
    ],
)
def test_mask_name_keeps_the_surname(raw, masked):
    assert mask_name(raw) == masked


def test_mask_text_hides_numbers_and_the_appellants_name():
    text = (
        "我是张三，电话13812345678，座机010-68123456，身份证号110101199003074512，小区3号楼垃圾10天没清运，罚款2000元"
    )
    masked = mask_text(text, names=["张三"])
    assert "13812345678" not in masked and "138****5678" in masked
    assert "010-6****456" in masked
    assert mask_id_card("110101199003074512") == "110101********4512" and "110101********4512" in masked
    assert "张三" not in masked and "张*" in masked
    # Ordinary numbers in the text stay readable.
    assert "3号楼" in masked and "10天" in masked and "2000元" in masked


def test_mask_text_leaves_numbers_inside_longer_digit_runs():
    assert mask_text("订单号 202611201381234567890") == "订单号 202611201381234567890"


# --- who sees what -------------------------------------------------------------------------------

TEXT = "楼下闻到很浓的煤气味，怀疑燃气泄漏，我是张三，请回电13912345678，身份证110101199003074512"


@pytest.fixture
def gas_appeal(city, catalogue, make_user):
    """Lead: ranqi; assisting: gongan and the street office of 110101001 (risk double dispatch)."""
    appeal, _ = appeal_register(
        data={"text": TEXT, "lng": 116.405, "lat": 39.91, "appellant_name": "张三", "appellant_phone": "13912345678"},
        actor=make_user("operator"),
    )
    assert appeal.department.code == "ranqi"
    return appeal


def viewers(make_user, catalogue):
    d = catalogue["departments"]
    return {
        "operator": make_user("operator"),
        "hotline": make_user("hotline_center"),
        "lead_department": make_user("department", department=d["ranqi"]),
        "assisting_department": make_user("department", department=d["gongan"]),
        "assisting_street_department": make_user("department", department=d["jiedao-110101001"]),
        "street_office": make_user("street_office", area_code="110101001"),
        "grid_worker": make_user("grid_worker", grid_codes=["110101001001001"]),
        "leader": make_user("leader", area_code="110101"),
        "city_leader": make_user("leader"),
    }


UNMASKED = {"operator", "hotline", "lead_department"}


def test_personal_data_per_role(gas_appeal, make_user, catalogue, api):
    for role, user in viewers(make_user, catalogue).items():
        assert may_see_personal_data(user, gas_appeal) is (role in UNMASKED), role
        for url in (f"/api/v1/appeals/{gas_appeal.ticket_no}", "/api/v1/appeals"):
            res = api(user).get(url)
            assert res.status_code == 200, (role, url)
            data = res.json() if "results" not in res.json() else res.json()["results"][0]
            if role in UNMASKED:
                assert data["appellant_name"] == "张三" and data["appellant_phone"] == "13912345678", role
                assert data["text"] == TEXT and data["personal_data_masked"] is False
            else:
                assert data["appellant_name"] == "张*" and data["appellant_phone"] == "139****5678", role
                assert "13912345678" not in data["text"] and "139****5678" in data["text"], role
                assert "110101199003074512" not in data["text"] and "110101********4512" in data["text"], role
                assert "张三" not in data["text"] and data["personal_data_masked"] is True, role


def test_masked_viewers_get_masked_event_notes(gas_appeal, make_user, catalogue, api):
    lead = make_user("department", department=catalogue["departments"]["ranqi"])
    api(lead).post(
        f"/api/v1/appeals/{gas_appeal.ticket_no}/return",
        {"reason": "已电话联系13912345678，应由属地处理"},
        format="json",
    )
    street = make_user("street_office", area_code="110101001")
    notes = [e["note"] for e in api(street).get(f"/api/v1/appeals/{gas_appeal.ticket_no}").json()["events"]]
    assert any("139****5678" in n for n in notes) and not any("13912345678" in n for n in notes)
    notes = [e["note"] for e in api(lead).get(f"/api/v1/appeals/{gas_appeal.ticket_no}").json()["events"]]
    assert any("13912345678" in n for n in notes)


def test_appellant_fields_masks_unless_told():
    class Row:
        text, appellant_name, appellant_phone = "张三说：电话13912345678", "张三", "13912345678"

    assert appellant_fields(Row(), unmasked=True) == {
        "text": Row.text,
        "appellant_name": "张三",
        "appellant_phone": "13912345678",
        "personal_data_masked": False,
    }
    assert appellant_fields(Row(), unmasked=False) == {
        "text": "张*说：电话139****5678",
        "appellant_name": "张*",
        "appellant_phone": "139****5678",
        "personal_data_masked": True,
    }


def test_web_and_phone_mask_the_same_way(gas_appeal, make_user, catalogue, api):
    """One masking function: the web's appeal and the phone's task show a masked viewer (an
    assisting unit) the same text, name and phone; an outsider sees neither."""
    worker = make_user("department", department=catalogue["departments"]["gongan"])
    web = api(worker).get(f"/api/v1/appeals/{gas_appeal.ticket_no}").json()
    phone = api(worker).get(f"/api/mobile/v1/tasks/{gas_appeal.ticket_no}")
    assert phone.status_code == 200, phone.json()
    keys = ("text", "address_text", "appellant_name", "appellant_phone", "personal_data_masked")
    assert {k: phone.json()[k] for k in keys} == {k: web[k] for k in keys}
    assert web["personal_data_masked"] is True and web["appellant_phone"] == "139****5678"
    outsider = make_user("department", department=catalogue["departments"]["jiedao-110101002"])
    assert api(outsider).get(f"/api/v1/appeals/{gas_appeal.ticket_no}").status_code == 404
    assert api(outsider).get(f"/api/mobile/v1/tasks/{gas_appeal.ticket_no}").status_code == 404
