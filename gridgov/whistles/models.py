"""热点 → 吹哨建议 → 吹哨 → 报到 → 双考评.

A Hotspot is what the statistics found (compute.py); a WhistleSuggestion is a rule's proposal
to the street office (rules.py); a WhistleCall is the street summoning departments to the site,
one Muster per department; Evaluations rate both ways once the call is over. Every state change
goes through the transition tables in workflow.py and leaves a WhistleEvent and an audit record.
"""

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridgov.accounts.models import Department
from gridgov.areacodes import district_code_of

from .workflow import LABELS, CallState, HotspotState, MusterState, SuggestionState, states


def _choices(kind):
    return list(LABELS[kind].items())


def _state_check(kind, name):
    return models.CheckConstraint(condition=Q(state__in=states(kind)), name=name)


class Hotspot(models.Model):
    """A significant cluster of appeals of one category (group) in one time window.

    grid_gi: a grid whose Getis-Ord Gi* is a hot spot (90 % and up, after FDR); geom is the grid.
    dbscan: a sub-grid spot, appeals of one leaf category within a few tens of metres of each
    other (ST_ClusterDBSCAN); geom is their hull, buffered. A recompute updates the open row for
    the same kind, grid (or overlapping appeals, for dbscan), category and window length instead
    of adding one, so a hotspot keeps its id, state and suggestion while it lasts."""

    class Kind(models.TextChoices):
        GRID_GI = "grid_gi", _("网格热点（Gi*）")
        DBSCAN = "dbscan", _("点位聚集（DBSCAN）")

    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices)
    geom = models.MultiPolygonField(_("范围"), srid=4326)
    window_days = models.PositiveSmallIntegerField(_("时间窗（天）"))
    window_start = models.DateTimeField(_("时间窗开始"))
    window_end = models.DateTimeField(_("时间窗结束"))
    # Which appeals were counted: category-code prefixes ('01' a level-1 group, '0101' level 2,
    # '010101' a leaf); empty = every category. category_key is their sorted join, the identity.
    category_key = models.CharField(_("诉求分类"), max_length=200, blank=True, default="")
    category_codes = ArrayField(models.CharField(max_length=6), verbose_name=_("分类编码"), blank=True, default=list)
    # dbscan: the grid most of its appeals lie in. Jurisdiction filters are prefixes of it.
    grid_code = models.CharField(_("网格编码"), max_length=15, db_index=True)
    street_code = models.CharField(_("街道编码"), max_length=9, db_index=True)
    # count, z, p, bin, confidence, trend, neighbourhood count; dbscan: radius_m, eps_m, min_points
    statistics = models.JSONField(_("统计量"), encoder=DjangoJSONEncoder, default=dict)
    appeal_ids = ArrayField(models.BigIntegerField(), verbose_name=_("诉求"), default=list, blank=True)
    # False once a recompute no longer finds it significant; it keeps its last figures.
    active = models.BooleanField(_("仍显著"), default=True)
    state = models.CharField(_("状态"), max_length=15, choices=_choices("hotspot"), default=HotspotState.NEW)
    dismiss_reason = models.TextField(_("排除理由"), blank=True, default="")
    first_seen_at = models.DateTimeField(_("首次发现"), default=timezone.now)
    computed_at = models.DateTimeField(_("最近计算"), default=timezone.now)
    state_changed_at = models.DateTimeField(_("状态变更时间"), default=timezone.now)

    class Meta:
        verbose_name = _("热点")
        verbose_name_plural = _("热点")
        ordering = ["-computed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["grid_gi", "dbscan"]), name="hotspot_kind_valid"),
            _state_check("hotspot", "hotspot_state_valid"),
            models.CheckConstraint(
                condition=~Q(state="dismissed") | ~Q(dismiss_reason=""), name="hotspot_dismiss_has_reason"
            ),
            models.CheckConstraint(condition=Q(grid_code__regex=r"^\d{15}$"), name="hotspot_grid_code_format"),
            models.CheckConstraint(condition=Q(street_code__regex=r"^\d{9}$"), name="hotspot_street_code_format"),
            models.CheckConstraint(condition=Q(window_end__gt=models.F("window_start")), name="hotspot_window_range"),
            # One open Gi* hotspot per grid, category and window length: recomputes update it.
            models.UniqueConstraint(
                fields=["grid_code", "category_key", "window_days"],
                condition=Q(kind="grid_gi", state__in=["new", "acknowledged"]),
                name="hotspot_one_open_per_grid",
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "window_days", "category_key", "state"], name="hotspot_key_state"),
            models.Index(fields=["street_code", "active"], name="hotspot_street_active"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.grid_code} {self.category_key or '全部'} {self.window_days}d"


class WhistleSuggestion(models.Model):
    """A rule's proposal to a street office to blow the whistle, with its evidence: a hotspot at
    95 % or more, or N appeals of one category within R metres in D days. Made once per
    hotspot; the street confirms it (blowing the whistle) or dismisses it with a reason."""

    class Rule(models.TextChoices):
        HOTSPOT = "hotspot", _("显著热点")
        PROXIMITY = "proximity", _("同类诉求近距离聚集")

    street_code = models.CharField(_("街道编码"), max_length=9, db_index=True)
    rule = models.CharField(_("规则"), max_length=10, choices=Rule.choices)
    hotspot = models.OneToOneField(
        Hotspot, verbose_name=_("热点"), null=True, blank=True, on_delete=models.PROTECT, related_name="suggestion"
    )
    category_key = models.CharField(_("诉求分类"), max_length=200, blank=True, default="")
    appeal_ids = ArrayField(models.BigIntegerField(), verbose_name=_("诉求"), default=list)
    # appeal_ids, trend, bbox [w, s, e, n], count, z, p, confidence, window, rule thresholds
    evidence = models.JSONField(_("依据"), encoder=DjangoJSONEncoder, default=dict)
    state = models.CharField(_("状态"), max_length=10, choices=_choices("suggestion"), default=SuggestionState.PENDING)
    reason = models.TextField(_("排除理由"), blank=True, default="")
    decided_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("吹哨建议")
        verbose_name_plural = _("吹哨建议")
        ordering = ["-created_at", "-id"]
        constraints = [
            _state_check("suggestion", "suggestion_state_valid"),
            models.CheckConstraint(condition=Q(rule__in=["hotspot", "proximity"]), name="suggestion_rule_valid"),
            models.CheckConstraint(
                condition=~Q(state="dismissed") | ~Q(reason=""), name="suggestion_dismiss_has_reason"
            ),
            models.CheckConstraint(condition=Q(street_code__regex=r"^\d{9}$"), name="suggestion_street_code_format"),
        ]

    def __str__(self):
        return f"建议 {self.pk} {self.street_code} ({self.rule})"


class WhistleCall(models.Model):
    """街乡吹哨: a street summons departments to one place to solve a problem together."""

    street_code = models.CharField(_("街道编码"), max_length=9, db_index=True)
    problem = models.TextField(_("问题描述"))
    place = models.PointField(_("集合地点"), srid=4326)
    area = models.MultiPolygonField(_("处置范围"), srid=4326, null=True, blank=True)
    address_text = models.CharField(_("地址"), max_length=300, blank=True, default="")
    appeals = models.ManyToManyField(
        "appeals.Appeal", verbose_name=_("关联诉求"), blank=True, related_name="whistle_calls"
    )
    hotspot = models.ForeignKey(
        Hotspot, verbose_name=_("热点"), null=True, blank=True, on_delete=models.PROTECT, related_name="calls"
    )
    suggestion = models.OneToOneField(
        WhistleSuggestion,
        verbose_name=_("吹哨建议"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="call",
    )
    # Departments must be on site (checked in) by then; the sweep escalates those that are not.
    muster_deadline = models.DateTimeField(_("报到时限"), db_index=True)
    meeting_at = models.DateTimeField(_("现场会时间"))
    state = models.CharField(_("状态"), max_length=10, choices=_choices("call"), default=CallState.BLOWN)
    blown_by = models.ForeignKey("accounts.User", null=True, on_delete=models.PROTECT, related_name="+")
    blown_at = models.DateTimeField(_("吹哨时间"), default=timezone.now)
    closed_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    close_note = models.TextField(_("办结情况"), blank=True, default="")
    cancel_reason = models.TextField(_("撤销理由"), blank=True, default="")
    # What closing did to each linked appeal: {"resolved": [...], "already": [...], "skipped": [...]}
    close_result = models.JSONField(_("诉求办结结果"), encoder=DjangoJSONEncoder, default=dict, blank=True)
    # Why these departments: the proposal from the responsibility catalogue and the street's edits.
    proposal = models.JSONField(_("召集依据"), encoder=DjangoJSONEncoder, default=dict, blank=True)

    class Meta:
        verbose_name = _("吹哨")
        verbose_name_plural = _("吹哨")
        ordering = ["-blown_at", "-id"]
        constraints = [
            _state_check("call", "call_state_valid"),
            models.CheckConstraint(condition=Q(street_code__regex=r"^\d{9}$"), name="call_street_code_format"),
            models.CheckConstraint(
                condition=~Q(state="closed") | (~Q(close_note="") & Q(closed_at__isnull=False)),
                name="call_closed_has_note",
            ),
            models.CheckConstraint(
                condition=~Q(state="cancelled") | ~Q(cancel_reason=""), name="call_cancel_has_reason"
            ),
        ]

    def __str__(self):
        return f"吹哨 {self.pk} {self.street_code}"

    @property
    def district_code(self) -> str:
        return district_code_of(self.street_code)


class Muster(models.Model):
    """部门报到: one summoned department's answer to a call."""

    call = models.ForeignKey(WhistleCall, on_delete=models.CASCADE, related_name="musters")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="musters")
    state = models.CharField(_("状态"), max_length=15, choices=_choices("muster"), default=MusterState.SUMMONED)
    # Not on site by the muster deadline (late), and reported to the district for it (escalated).
    late = models.BooleanField(_("迟到"), default=False)
    escalated = models.BooleanField(_("已提级"), default=False)
    escalated_at = models.DateTimeField(null=True, blank=True)
    summoned_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_in_at = models.DateTimeField(null=True, blank=True)
    checked_in_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    check_in_position = models.PointField(_("报到位置"), srid=4326, null=True, blank=True)
    check_in_input = models.JSONField(
        _("原始坐标"), encoder=DjangoJSONEncoder, default=dict, blank=True
    )  # {"lng", "lat", "crs"} as sent
    check_in_distance_m = models.FloatField(_("距集合地点（米）"), null=True, blank=True)
    outside_geofence = models.BooleanField(_("超出电子围栏"), default=False)
    report = models.TextField(_("处置情况"), blank=True, default="")
    reported_at = models.DateTimeField(null=True, blank=True)
    reported_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("部门报到")
        verbose_name_plural = _("部门报到")
        ordering = ["call", "department__code"]
        constraints = [
            models.UniqueConstraint(fields=["call", "department"], name="muster_one_per_department"),
            _state_check("muster", "muster_state_valid"),
            models.CheckConstraint(
                condition=~Q(state__in=["checked_in", "reported"])
                | Q(check_in_position__isnull=False, checked_in_at__isnull=False, check_in_distance_m__gte=0),
                name="muster_checked_in_has_position",
            ),
            models.CheckConstraint(condition=~Q(state="reported") | ~Q(report=""), name="muster_reported_has_text"),
            models.CheckConstraint(condition=Q(escalated=False) | Q(late=True), name="muster_escalated_is_late"),
        ]
        indexes = [models.Index(fields=["state", "escalated"], name="muster_state_escalated")]

    def __str__(self):
        return f"报到 {self.call_id} → {self.department_id} ({self.state})"


class MusterEvidence(models.Model):
    """A photo, video or document a department attaches to its report. The appeals' Attachment
    belongs to one appeal; a muster's evidence belongs to the call."""

    muster = models.ForeignKey(Muster, on_delete=models.CASCADE, related_name="evidence")
    file = models.FileField(upload_to="whistles/%Y/%m/")
    name = models.CharField(max_length=200, blank=True, default="")
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("报到佐证")
        verbose_name_plural = _("报到佐证")
        constraints = [
            models.UniqueConstraint(fields=["muster", "sha256"], name="muster_evidence_once"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="muster_evidence_sha256"),
        ]

    def __str__(self):
        return self.file.name


class Evaluation(models.Model):
    """双考评. street_to_department: the street rates one muster on timeliness, action and result
    (1–5 each). department_to_street: a summoned department says whether the call was justified."""

    class Direction(models.TextChoices):
        STREET_TO_DEPARTMENT = "street_to_department", _("街道评部门")
        DEPARTMENT_TO_STREET = "department_to_street", _("部门评街道")

    call = models.ForeignKey(WhistleCall, on_delete=models.CASCADE, related_name="evaluations")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    muster = models.ForeignKey(Muster, null=True, blank=True, on_delete=models.CASCADE, related_name="evaluations")
    direction = models.CharField(_("方向"), max_length=25, choices=Direction.choices)
    timeliness = models.PositiveSmallIntegerField(_("响应及时"), null=True, blank=True)
    action = models.PositiveSmallIntegerField(_("处置得力"), null=True, blank=True)
    result = models.PositiveSmallIntegerField(_("解决效果"), null=True, blank=True)
    justified = models.BooleanField(_("吹哨必要"), null=True, blank=True)
    comment = models.TextField(_("评语"), blank=True, default="")
    by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("双考评")
        verbose_name_plural = _("双考评")
        ordering = ["call", "direction", "department__code"]
        constraints = [
            models.UniqueConstraint(fields=["call", "department", "direction"], name="evaluation_once"),
            models.CheckConstraint(
                condition=(
                    Q(
                        direction="street_to_department",
                        muster__isnull=False,
                        justified__isnull=True,
                        timeliness__gte=1,
                        timeliness__lte=5,
                        action__gte=1,
                        action__lte=5,
                        result__gte=1,
                        result__lte=5,
                    )
                    | Q(
                        direction="department_to_street",
                        justified__isnull=False,
                        timeliness__isnull=True,
                        action__isnull=True,
                        result__isnull=True,
                    )
                ),
                name="evaluation_scores_valid",
            ),
        ]

    def __str__(self):
        return f"{self.get_direction_display()} {self.call_id}/{self.department_id}"


class WhistleEvent(models.Model):
    """History of every hotspot, suggestion, call and muster: one row per transition, written
    only by services._apply (and by the recompute for hotspots it finds or updates). Rows of a
    call and of its musters carry `call`, so a call's timeline is one query."""

    object_type = models.CharField(max_length=10)  # hotspot / suggestion / call / muster
    object_id = models.BigIntegerField()
    call = models.ForeignKey(WhistleCall, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=30)
    old_state = models.CharField(max_length=15, blank=True, default="")
    new_state = models.CharField(max_length=15, blank=True, default="")
    note = models.TextField(blank=True, default="")
    data = models.JSONField(encoder=DjangoJSONEncoder, default=dict, blank=True)

    class Meta:
        verbose_name = _("吹哨流转记录")
        verbose_name_plural = _("吹哨流转记录")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="whistle_event_object")]

    def __str__(self):
        return f"{self.object_type} {self.object_id}: {self.event}"


__all__ = [
    "CallState",
    "Evaluation",
    "Hotspot",
    "HotspotState",
    "Muster",
    "MusterEvidence",
    "MusterState",
    "SuggestionState",
    "WhistleCall",
    "WhistleEvent",
    "WhistleSuggestion",
]
