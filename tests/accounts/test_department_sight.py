"""Which department sees what, from one source (gridgov.accounts.access): a department's staff
see the work addressed to their department, never the area it serves, in the appeals, the map
data, the live events and the whistles alike (#12)."""

from gridgov.accounts.access import jurisdiction, sees_by_department, staff_department_id, works_for
from gridgov.accounts.models import Department
from gridgov.appeals.access import appeals_visible_to, may_act, may_see_personal_data
from gridgov.appeals.services import appeal_register
from gridgov.realtime.broadcast import groups_for
from gridgov.whistles.access import calls_visible_to
from maps.selectors import area_scope

GARBAGE = "小区门口垃圾堆了三天没人清运"


def test_district_staff_see_their_department_not_their_district(city, catalogue, make_user, api):
    district_unit = Department.objects.create(code="chengguan-110101", name="东城区城管执法局", district_code="110101")
    staff = make_user("department", department=district_unit)
    lead = make_user("department", department=catalogue["departments"]["chengguan"])
    appeal = appeal_register(data={"text": GARBAGE, "lng": 116.405, "lat": 39.91}, actor=make_user("operator"))[0]
    assert appeal.grid_code.startswith("110101") and appeal.department.code == "chengguan"

    # The area it serves is its jurisdiction (for the admin), not its sight.
    assert jurisdiction(staff) == ["110101"] and sees_by_department(staff)
    assert area_scope(staff) == [] and area_scope(lead) == []
    assert groups_for(staff) == [f"user.{staff.pk}", f"department.{district_unit.pk}"]
    assert not appeals_visible_to(staff).filter(pk=appeal.pk).exists()
    assert not calls_visible_to(staff).exists()
    assert api(staff).get(f"/api/v1/appeals/{appeal.ticket_no}").status_code == 404

    # The lead unit's staff work it and see the appellant.
    assert staff_department_id(lead) == appeal.department_id and works_for(lead, appeal.department_id)
    assert appeals_visible_to(lead).filter(pk=appeal.pk).exists()
    assert may_act(lead, appeal, "accept") and may_see_personal_data(lead, appeal)
    assert not may_act(staff, appeal, "accept") and not may_see_personal_data(staff, appeal)
    assert api(lead).get(f"/api/v1/appeals/{appeal.ticket_no}").status_code == 200

    # No longer staff: nothing, whatever the department.
    lead.is_active = False
    assert staff_department_id(lead) is None and not works_for(lead, appeal.department_id)
    assert not appeals_visible_to(lead).exists()


def test_a_superuser_of_the_department_role_sees_the_city(city, catalogue, make_user):
    admin = make_user("department", department=catalogue["departments"]["chengguan"], is_superuser=True)
    assert not sees_by_department(admin)
    assert area_scope(admin) is None and "city" in groups_for(admin)
    assert works_for(admin, admin.department_id)  # still staff of its department for its muster
