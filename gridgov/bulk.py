"""Bulk writes with PostgreSQL's COPY.

`copy_insert(objs)` inserts unsaved model instances as `bulk_create` does (no save() and no
signals), through psycopg's COPY. A 500-appeal intake batch writes about 6,000 rows (appeals,
their history, assignments, audit records, outbox events); bulk_create builds and quotes one
parameter per value on the client side for them, which cost that batch more time than the
database spent storing the rows. Values are prepared by each field (get_db_prep_save, after
pre_save for auto_now), so JSON, geometry and time zones are stored as Django stores them.

Primary keys: objects whose pk is set keep it; when none is set the table's sequence fills it
in and the objects stay without one (call `reserve_ids` first when the caller needs them).
"""

from collections.abc import Sequence
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)


def reserve_ids(model: type[Model], n: int, *, using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """`n` values of the model's primary-key sequence, in order (one query)."""
    if n <= 0:
        return []
    meta = model._meta
    with connections[using].cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, n],
        )
        return [r[0] for r in cur.fetchall()]


def copy_insert(objs: Sequence[M], *, using: str = DEFAULT_DB_ALIAS) -> Sequence[M]:
    """INSERT `objs` (instances of one model, all with their pk set or none) with one COPY."""
    if not objs:
        return objs
    model = type(objs[0])
    meta = model._meta
    connection = connections[using]
    with_pk = objs[0].pk is not None
    if any((o.pk is not None) != with_pk or type(o) is not model for o in objs):
        raise ValueError("copy_insert: one model, and every primary key set or none")
    fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
    qn = connection.ops.quote_name
    sql = f"COPY {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) FROM STDIN"  # type: ignore[arg-type]
    # The raw psycopg cursor's errors come out as Django's (IntegrityError ...), as execute's do.
    with connection.cursor() as cur, connection.wrap_database_errors:
        with cur.cursor.copy(sql) as copy:
            for obj in objs:
                copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
    for obj in objs:
        obj._state.adding, obj._state.db = False, using
    return objs
