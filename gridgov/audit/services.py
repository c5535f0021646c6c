import hashlib
import json
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Model

from gridgov.bulk import copy_insert

from .models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _digest(
    *,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: object,
    data: Any,
    prev_hash: str,
) -> str:
    payload = json.dumps(
        [seq, at.isoformat(), actor_id, actor_name, action, object_type, str(object_id), data, prev_hash],
        cls=DjangoJSONEncoder,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def event_digest(ev: AuditEvent) -> str:
    return _digest(
        seq=ev.seq,
        at=ev.at,
        actor_id=ev.actor_id,
        actor_name=ev.actor_name,
        action=ev.action,
        object_type=ev.object_type,
        object_id=ev.object_id,
        data=ev.data,
        prev_hash=ev.prev_hash,
    )


# `actor`: the user who acted, or a name for what acted without one ("system", a command).
def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Model | None = None,
    object_type: str = "",
    object_id: object = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one record to the chain, inside the caller's transaction (so a rolled-back
    change leaves no record and no gap)."""
    return audit_record_many(
        [dict(actor=actor, action=action, obj=obj, object_type=object_type, object_id=object_id, data=data)]
    )[0]


def audit_record_many(records: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append records (dicts of audit_record's arguments) to the chain in their order, under one
    lock of the head and with one INSERT: what a batch of changes (bulk intake) records."""
    if not records:
        return []
    events = []
    for r in records:
        obj, object_type, object_id = r.get("obj"), r.get("object_type") or "", r.get("object_id") or ""
        if obj is not None:
            object_type = object_type or obj._meta.label_lower
            object_id = object_id or str(obj.pk)
        actor = r["actor"]
        # Round-trip through JSON so the stored data hashes the same when read back.
        data = json.loads(json.dumps(r.get("data") or {}, cls=DjangoJSONEncoder, ensure_ascii=False))
        events.append(
            AuditEvent(
                actor=actor if getattr(actor, "pk", None) else None,
                actor_name=getattr(actor, "username", "") or (actor if isinstance(actor, str) else "system"),
                action=r["action"],
                object_type=object_type,
                object_id=str(object_id),
                data=data,
            )
        )
    with transaction.atomic():
        head, _ = AuditHead.objects.select_for_update().get_or_create(id=1)
        seq, prev = head.seq, head.hash
        for ev in events:
            seq += 1
            ev.seq, ev.prev_hash = seq, prev
            ev.hash = prev = event_digest(ev)
        if len(events) == 1:
            events[0].save()
        else:
            copy_insert(events)  # without ids: the chain is read by seq
        head.seq, head.hash = seq, prev
        head.save(update_fields=["seq", "hash"])
    return events


def audit_verify(chunk: int = 5000) -> list[str]:
    """Walk the chain. Returns a list of problems (empty when intact)."""
    problems = []
    prev_hash, expected_seq = GENESIS, 1
    for ev in AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk):
        if ev.seq != expected_seq:
            problems.append(f"seq {expected_seq}–{ev.seq - 1}: missing (deleted) / 记录缺失")
        if ev.prev_hash != prev_hash:
            problems.append(f"seq {ev.seq}: link to the previous record broken / 链接断裂")
        if event_digest(ev) != ev.hash:
            problems.append(f"seq {ev.seq}: content does not match its hash (edited) / 内容被篡改")
        prev_hash, expected_seq = ev.hash, ev.seq + 1
    head = AuditHead.objects.filter(id=1).first()
    last_seq = expected_seq - 1
    if head is None and last_seq:
        problems.append("chain head missing / 链头缺失")
    elif head is not None and (head.seq != last_seq or head.hash != prev_hash):
        problems.append(f"chain ends at seq {last_seq} but the head says {head.seq}: records cut off / 尾部记录被删除")
    return problems
