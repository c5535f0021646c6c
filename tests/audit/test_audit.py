import pytest
from django.core.management import CommandError, call_command

from gridgov.audit.models import AuditEvent, AuditHead
from gridgov.audit.services import audit_record, audit_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(make_user):
    user = make_user("operator")
    for i in range(5):
        audit_record(
            actor=user,
            action="appeal.transition",
            object_type="appeal",
            object_id=i,
            data={"old": "registered", "new": "located", "note": "定位 §", "n": i, "x": 0.1},
        )
    return user


def test_intact_chain_verifies(chain, capsys):
    assert audit_verify() == []
    call_command("verify_audit")
    assert "5 records" in capsys.readouterr().out


def test_edited_record_is_found(chain):
    AuditEvent.objects.filter(seq=3).update(data={"old": "registered", "new": "closed"})
    problems = audit_verify()
    assert problems and "seq 3" in problems[0] and "edited" in problems[0]
    with pytest.raises(CommandError):
        call_command("verify_audit")


def test_deleted_record_is_found(chain):
    AuditEvent.objects.filter(seq=2).delete()
    assert any("missing" in p for p in audit_verify())


def test_rewritten_and_rehashed_record_still_breaks_the_next_link(chain):
    from gridgov.audit.services import event_digest

    ev = AuditEvent.objects.get(seq=2)
    ev.data = {"forged": True}
    ev.hash = event_digest(ev)
    ev.save()
    assert any("seq 3" in p and "link" in p for p in audit_verify())


def test_cut_off_tail_is_found(chain):
    AuditEvent.objects.filter(seq=5).delete()
    assert any("cut off" in p for p in audit_verify())
    assert AuditHead.objects.get().seq == 5


def test_rolled_back_change_leaves_no_record_and_no_gap(chain):
    from django.db import transaction

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            audit_record(actor=chain, action="x", object_type="t", object_id=1)
            raise RuntimeError
    audit_record(actor=chain, action="y", object_type="t", object_id=1)
    assert audit_verify() == [] and AuditEvent.objects.count() == 6


def test_boundary_import_is_audited(city):
    assert AuditEvent.objects.filter(action="areas.import").count() == 4
    assert audit_verify() == []
