"""吹哨报到 through the services: blow, muster, escalate, check in, report, close, evaluate."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import override_settings

from gridgov.accounts.models import Department
from gridgov.appeals.models import Appeal, AppealEvent
from gridgov.areas import coords
from gridgov.audit.services import audit_verify
from gridgov.realtime.models import OutboxEvent
from gridgov.whistles import compute, rules, services, workflow
from gridgov.whistles.models import Evaluation, Hotspot, Muster, MusterEvidence, WhistleEvent
from gridgov.whistles.workflow import IllegalTransition
from tests.mobile_api.fieldwork import photo_bytes

from .conftest import NOW, make_appeals, offset, spread

pytestmark = pytest.mark.django_db
PNG = photo_bytes("PNG", size=(8, 8))  # a real one: evidence is decoded (gridgov/fieldwork)
T0 = NOW - timedelta(hours=3)  # when the whistle is blown


@pytest.fixture
def scene(gencity, make_user):
    street = gencity.streets[0]
    grid = next(c for c in gencity.codes if c.startswith(street))
    place = gencity.centres[grid]
    d = {code: Department.objects.get(code=code) for code in ("zilaishui", "chengguanwei", f"jiedao-{street}")}
    users = {
        "street": make_user("street_office", area_code=street, department=d[f"jiedao-{street}"]),
        "water": make_user("department", department=d["zilaishui"]),
        "city": make_user("department", department=d["chengguanwei"]),
    }
    # Leaks (water company) and a broken manhole cover (city management) at one building, in
    # every state the call must settle: dispatched, accepted, in progress, not yet dispatched.
    rows = [(grid, offset(place, 5 * i, 0), "020104", NOW - timedelta(days=1, hours=i)) for i in range(4)]
    rows.append((grid, offset(place, -10, 5), "010401", NOW - timedelta(days=2)))
    appeals = make_appeals(rows)
    states = ["dispatched", "accepted", "in_progress", "registered", "dispatched"]
    owners = [d["zilaishui"]] * 4 + [d["chengguanwei"]]
    for a, state, owner in zip(appeals, states, owners, strict=True):
        Appeal.objects.filter(pk=a.pk).update(state=state, department=owner)
    return {
        "street": street,
        "grid": grid,
        "place": place,
        "departments": d,
        "users": users,
        "appeals": [Appeal.objects.get(pk=a.pk) for a in appeals],
    }


def blow(scene, **kw):
    kw.setdefault("department_codes", ["zilaishui", "chengguanwei"])
    lng, lat = scene["place"]
    return services.whistle_blow(
        actor=scene["users"]["street"],
        problem="楼内供水管道反复漏水，井盖破损",
        street_code=scene["street"],
        lng=lng,
        lat=lat,
        appeal_ids=[a.pk for a in scene["appeals"]],
        muster_deadline=T0 + timedelta(hours=1),
        now=T0,
        **kw,
    )


def test_proposal_comes_from_the_responsibility_catalogue(scene):
    proposal = services.whistle_proposal(
        street_code=scene["street"],
        appeals=scene["appeals"],
        exclude_department_ids={scene["departments"][f"jiedao-{scene['street']}"].pk},
    )
    by_code = {p["department"]: p for p in proposal}
    assert by_code["zilaishui"]["role"] == "lead" and by_code["zilaishui"]["categories"] == ["020104"]
    assert by_code["chengguanwei"]["role"] == "lead" and by_code["chengguanwei"]["categories"] == ["010401"]
    assert all(p["role"] == "lead" for p in proposal[:2])
    assert f"jiedao-{scene['street']}" not in by_code  # the street does not summon itself


def test_blowing_from_a_suggestion_confirms_it_and_whistles_the_hotspot(scene, gencity, rng):
    make_appeals(spread(gencity, rng, 1.0, "020104", NOW - timedelta(days=7), NOW))
    compute.hotspots_recompute(window_days=(7,), categories=["0201"], now=NOW)
    suggestion = next(s for s in rules.suggestions_make(NOW) if s.street_code == scene["street"])
    with override_settings(WHISTLE_MUSTER_MINUTES=90):
        call = services.suggestion_confirm(suggestion_id=suggestion.pk, actor=scene["users"]["street"], now=NOW)
    suggestion.refresh_from_db()
    assert suggestion.state == "confirmed" and suggestion.call == call
    assert Hotspot.objects.get(pk=suggestion.hotspot_id).state == "whistled"
    assert call.hotspot_id == suggestion.hotspot_id and call.muster_deadline == NOW + timedelta(minutes=90)
    assert sorted(call.appeals.values_list("pk", flat=True)) == sorted(suggestion.appeal_ids)
    summoned = set(call.musters.values_list("department__code", flat=True))
    assert "zilaishui" in summoned and summoned == set(call.proposal["chosen"])
    assert call.proposal["added"] == [] and call.proposal["removed"] == []
    assert call.hotspot.geom.covers(call.place)
    for m in call.musters.all():
        assert OutboxEvent.objects.filter(
            group=f"department.{m.department_id}", type="whistle.summoned", payload__muster=m.pk
        ).exists()
    with pytest.raises(IllegalTransition):  # once
        services.suggestion_confirm(suggestion_id=suggestion.pk, actor=scene["users"]["street"], now=NOW)


def test_the_whole_life_of_a_whistle(scene, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    u = scene["users"]
    call = blow(scene)
    water = call.musters.get(department__code="zilaishui")
    city = call.musters.get(department__code="chengguanwei")
    assert call.state == "blown" and {water.state, city.state} == {"summoned"}

    services.muster_acknowledge(muster_id=water.pk, actor=u["water"], now=T0 + timedelta(minutes=10))
    call.refresh_from_db()
    assert call.state == "mustering"

    # The water company checks in 400 m away: refused with the distance, and the attempt kept.
    far = offset(scene["place"], 400, 0)
    with pytest.raises(services.WhistleError) as refused:
        services.muster_check_in(
            muster_id=water.pk, actor=u["water"], lng=far[0], lat=far[1], now=T0 + timedelta(minutes=30)
        )
    assert refused.value.code == "outside_geofence" and 395 < refused.value.extra["distance_m"] < 405
    assert f"{refused.value.extra['distance_m']:.0f}" in str(refused.value)
    assert WhistleEvent.objects.filter(object_type="muster", object_id=water.pk, event="check_in_refused").exists()
    water.refresh_from_db()
    assert water.state == "acknowledged"

    # Then on site, reporting from a phone in GCJ-02 (about 60 m from the place in WGS-84).
    near = offset(scene["place"], 60, 0)
    glng, glat = (float(v) for v in coords.wgs84_to_gcj02(*near))
    water = services.muster_check_in(
        muster_id=water.pk, actor=u["water"], lng=glng, lat=glat, crs="gcj02", now=T0 + timedelta(minutes=40)
    )
    assert water.state == "checked_in" and not water.late and not water.outside_geofence
    assert 58 < water.check_in_distance_m < 62 and water.check_in_input["crs"] == "gcj02"
    call.refresh_from_db()
    assert call.state == "on_site"

    # City management never answers: the sweep after the deadline escalates it, once.
    assert services.muster_sweep(now=T0 + timedelta(minutes=59)) == {"checked": 0, "escalated": 0}
    assert services.muster_sweep(now=T0 + timedelta(minutes=61)) == {"checked": 1, "escalated": 1}
    assert services.muster_sweep(now=T0 + timedelta(minutes=62)) == {"checked": 0, "escalated": 0}
    city.refresh_from_db()
    assert city.late and city.escalated and city.state == "summoned"
    district = scene["street"][:6]
    assert OutboxEvent.objects.filter(
        group=f"district.{district}", type="whistle.escalation", payload__id=city.pk
    ).exists()
    assert WhistleEvent.objects.filter(object_type="muster", object_id=city.pk, event="escalate").exists()

    # It arrives late, 350 m off, with the geofence in "flag" mode: accepted and flagged.
    with override_settings(GEOFENCE_MODE="flag"):
        off = offset(scene["place"], 0, 350)
        city = services.muster_check_in(
            muster_id=city.pk, actor=u["city"], lng=off[0], lat=off[1], now=T0 + timedelta(minutes=80)
        )
    assert city.state == "checked_in" and city.late and city.outside_geofence and city.acknowledged_at

    with pytest.raises(IllegalTransition):  # on site already
        services.muster_acknowledge(muster_id=city.pk, actor=u["city"])
    water = services.muster_report(
        muster_id=water.pk,
        actor=u["water"],
        text="更换破损管段，恢复供水",
        files=[
            SimpleUploadedFile("before.png", PNG, "image/png"),
            SimpleUploadedFile("again.png", PNG, "image/png"),
        ],  # same bytes: once
        now=T0 + timedelta(minutes=90),
    )
    assert water.state == "reported" and MusterEvidence.objects.filter(muster=water).count() == 1
    ev = MusterEvidence.objects.get(muster=water)
    assert ev.content_type == "image/png" and len(ev.sha256) == 64 and ev.size == len(PNG)
    with pytest.raises(services.WhistleError) as bad:
        services.muster_report(
            muster_id=city.pk,
            actor=u["city"],
            text="已处理",
            files=[SimpleUploadedFile("x.exe", b"MZ\x90\x00", "image/png")],
        )
    assert bad.value.code == "file_type"
    services.muster_report(muster_id=city.pk, actor=u["city"], text="更换井盖", now=T0 + timedelta(minutes=95))

    # Closing resolves every linked appeal it can, walking the appeal's own workflow.
    with pytest.raises(services.WhistleError):
        services.whistle_close(call_id=call.pk, actor=u["street"], note=" ")
    call = services.whistle_close(
        call_id=call.pk, actor=u["street"], note="现场联合处置完毕，管道和井盖均已修复", now=T0 + timedelta(hours=2)
    )
    assert call.state == "closed" and call.closed_at == T0 + timedelta(hours=2)
    appeals = {a.pk: a for a in Appeal.objects.filter(pk__in=[a.pk for a in scene["appeals"]])}
    dispatched, accepted, in_progress, registered, manhole = (appeals[a.pk] for a in scene["appeals"])
    for a in (dispatched, accepted, in_progress, manhole):
        assert a.state == "resolved" and a.closure_type == "substantive"
    assert registered.state == "registered"  # not dispatched yet: listed, not forced
    assert [r["appeal"] for r in call.close_result["skipped"]] == [registered.pk]
    walked = {r["appeal"]: r["events"] for r in call.close_result["resolved"]}
    assert walked[dispatched.pk] == ["accept", "resolve"] and walked[accepted.pk] == ["resolve"]
    assert walked[in_progress.pk] == ["resolve"]
    steps = list(AppealEvent.objects.filter(appeal=dispatched).order_by("at", "pk").values_list("event", "data"))
    assert [e for e, _ in steps] == ["accept", "resolve"]
    assert steps[0][1]["whistle_call"] == call.pk

    # Two-way evaluation, once each.
    services.evaluation_rate_department(
        muster_id=water.pk, actor=u["street"], timeliness=5, action=5, result=4, comment="响应迅速"
    )
    services.evaluation_rate_department(muster_id=city.pk, actor=u["street"], timeliness=1, action=3, result=4)
    with pytest.raises(services.WhistleError) as again:
        services.evaluation_rate_department(muster_id=city.pk, actor=u["street"], timeliness=2, action=3, result=4)
    assert again.value.code == "already_evaluated"
    with pytest.raises(services.WhistleError):
        services.evaluation_rate_department(muster_id=city.pk, actor=u["street"], timeliness=6, action=3, result=4)
    services.evaluation_rate_street(call_id=call.pk, actor=u["water"], justified=True, comment="问题确需多部门协同")
    services.evaluation_rate_street(call_id=call.pk, actor=u["city"], justified=False)
    assert Evaluation.objects.filter(call=call).count() == 4

    history = list(WhistleEvent.objects.filter(call=call).order_by("at", "pk").values_list("object_type", "event"))
    assert ("call", "blow") in history and ("call", "close") in history and ("muster", "escalate") in history
    assert audit_verify() == []


def test_an_early_evaluation_and_a_finished_call_are_refused(scene):
    u = scene["users"]
    call = blow(scene)
    water = call.musters.get(department__code="zilaishui")
    with pytest.raises(services.WhistleError) as early:
        services.evaluation_rate_department(muster_id=water.pk, actor=u["street"], timeliness=5, action=5, result=5)
    assert early.value.code == "call_open"
    with pytest.raises(IllegalTransition):  # nobody came yet
        services.whistle_close(call_id=call.pk, actor=u["street"], note="已解决")
    with pytest.raises(services.WhistleError):
        services.whistle_cancel(call_id=call.pk, actor=u["street"], reason="")
    services.whistle_cancel(call_id=call.pk, actor=u["street"], reason="误报，现场无问题")
    with pytest.raises(services.WhistleError) as over:
        services.muster_acknowledge(muster_id=water.pk, actor=u["water"])
    assert over.value.code == "call_over"
    # A cancelled call's late musters are not escalated.
    assert services.muster_sweep(now=NOW + timedelta(days=1))["escalated"] == 0
    # Nothing of a cancelled call touched the appeals.
    assert set(Appeal.objects.filter(pk__in=[a.pk for a in scene["appeals"]]).values_list("state", flat=True)) == {
        "dispatched",
        "accepted",
        "in_progress",
        "registered",
    }


def test_blowing_checks_its_inputs(scene, gencity):
    u = scene["users"]
    other_street = gencity.streets[1]
    foreign = make_appeals(
        [
            (
                next(c for c in gencity.codes if c.startswith(other_street)),
                scene["place"],
                "020104",
                NOW - timedelta(days=1),
            )
        ]
    )
    with pytest.raises(services.WhistleError) as outside:
        services.whistle_blow(
            actor=u["street"],
            problem="x",
            street_code=scene["street"],
            lng=scene["place"][0],
            lat=scene["place"][1],
            appeal_ids=[foreign[0].pk],
            department_codes=["zilaishui"],
            now=T0,
        )
    assert outside.value.code == "appeal_outside_street"
    with pytest.raises(services.WhistleError) as unknown:
        blow(scene, department_codes=["no-such-unit"])
    assert unknown.value.code == "unknown_department"
    with pytest.raises(services.WhistleError) as past:
        services.whistle_blow(
            actor=u["street"],
            problem="x",
            street_code=scene["street"],
            lng=scene["place"][0],
            lat=scene["place"][1],
            department_codes=["zilaishui"],
            muster_deadline=T0 - timedelta(minutes=1),
            now=T0,
        )
    assert past.value.code == "deadline_past"


def test_transition_tables_are_closed():
    for kind, table in workflow.TABLES.items():
        reachable = {new for new in table.values()}
        for (state, event), new in table.items():
            assert new in workflow.LABELS[kind] and state in workflow.LABELS[kind], (kind, state, event)
        assert reachable <= set(workflow.LABELS[kind])
    assert workflow.allowed_events("call", "closed") == []
    assert workflow.allowed_events("muster", "reported") == []
    assert workflow.allowed_events("hotspot", "new") == ["acknowledge", "dismiss", "whistle"]


def test_the_database_backs_the_rules(scene):
    call = blow(scene)
    water = call.musters.get(department__code="zilaishui")
    with pytest.raises(IntegrityError), transaction.atomic():
        Muster.objects.filter(pk=water.pk).update(state="checked_in")  # no position
    with pytest.raises(IntegrityError), transaction.atomic():
        Evaluation.objects.create(
            call=call,
            department=water.department,
            muster=water,
            direction="street_to_department",
            timeliness=0,
            action=3,
            result=3,
            by=scene["users"]["street"],
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Muster.objects.create(call=call, department=water.department)  # summoned twice
    with pytest.raises(IntegrityError), transaction.atomic():
        Muster.objects.filter(pk=water.pk).update(escalated=True)  # escalated but not late
