import django.contrib.postgres.indexes
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations, models

OPEN = ["accepted", "dispatched", "in_progress", "located", "registered", "returned", "suspended", "unlocated"]

# The duplicate search: open appeals around a point within the time window, in one index scan
# (btree_gist puts received_at beside the position). Written by hand: Django's PostGIS schema
# editor drops the condition of an index on a geometry field, and on the bench database (15)
# the planner did not use the index with the predicate as Django writes it, `state IN (…)`
# (stored as a varchar ARRAY cast to text[]); with a text[] constant it does.
CREATE = (
    'CREATE INDEX "appeal_open_position" ON "appeals_appeal" USING gist ("position", "received_at") '
    f"WHERE \"state\"::text = ANY ('{{{','.join(OPEN)}}}'::text[])"
)


class Migration(migrations.Migration):
    dependencies = [
        ("appeals", "0003_closed_keeps_lead"),
    ]

    operations = [
        BtreeGistExtension(),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE, 'DROP INDEX "appeal_open_position"')],
            state_operations=[
                migrations.AddIndex(
                    model_name="appeal",
                    index=django.contrib.postgres.indexes.GistIndex(
                        models.F("position"),
                        models.F("received_at"),
                        condition=models.Q(("state__in", OPEN)),
                        name="appeal_open_position",
                    ),
                ),
            ],
        ),
    ]
