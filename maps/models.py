"""Roll-ups behind the maps: appeal counts per grid, category prefix and period.

A leader's city heatmap over ten million appeals cannot group the appeals table on every
request (about a microsecond a row on our hardware: ten seconds). These rows hold the same
counts, made once by `maps.aggregates.rollup_refresh` (hourly, see maps/tasks.py, or
`manage.py maps_rollup`), so a request reads at most a few hundred thousand of them. Days
after `RollupState.rolled_through` are always counted from the appeals table itself, so a map
is never stale because the job has not run; it is only slower.

Week rows count each appeal once per category prefix: "" (all categories), its level-1 code
("05") and level-2 code ("0504"), so a filter on a prefix reads only that prefix's rows (index
on category, kind, period). Day rows (the loose days at a window's edges) are kept for "" only:
per grid, day and category they would be about one row per appeal, no smaller than the appeals
table, and would make the roll-up of ten million appeals several times larger and slower to
build. A category filter's loose days, and any leaf-category filter (the map pages offer
levels 1 and 2), are counted from the appeals table.
"""

from django.db import models


class AppealCount(models.Model):
    class Kind(models.TextChoices):
        DAY = "day", "日"
        WEEK = "week", "周"  # Monday to Sunday, Asia/Shanghai

    kind = models.CharField(max_length=4, choices=Kind.choices)
    period = models.DateField()  # the day, or the Monday of the week (local dates)
    grid_code = models.CharField(max_length=15)
    category = models.CharField(max_length=6, blank=True, default="")  # a prefix; "" = all
    appeals = models.IntegerField(default=0)
    # The three rates' counters (三率), see aggregates.FACTS_SQL: 响应率 = responded / dispatched,
    # 解决率 = resolved / due. Satisfaction has no data in the platform (no callback score).
    dispatched = models.IntegerField(default=0)
    responded = models.IntegerField(default=0)
    due = models.IntegerField(default=0)
    resolved = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "period", "grid_code", "category"], name="maps_count_uniq"),
            models.CheckConstraint(condition=models.Q(kind__in=["day", "week"]), name="maps_count_kind_valid"),
        ]
        indexes = [
            # A city: every grid of a few periods. A street: its grids' range, every period.
            models.Index(fields=["category", "kind", "period", "grid_code"], name="maps_count_city"),
            models.Index(fields=["category", "kind", "grid_code", "period"], name="maps_count_area"),
        ]

    def __str__(self):
        return f"{self.kind} {self.period} {self.grid_code} {self.category or '*'}: {self.appeals}"


class RollupState(models.Model):
    """One row: the last local day whose counts are in AppealCount."""

    rolled_through = models.DateField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0)

    def __str__(self):
        return f"rolled through {self.rolled_through}"
