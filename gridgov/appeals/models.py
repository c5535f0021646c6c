"""Appeals and the catalogue they are sorted and routed by.

The catalogue: a three-level category taxonomy (诉求分类) whose leaves carry a time limit and
a default department, and the responsibility catalogue (职责清单) that says which department
handles a category in which area. Catalogue rows are effective-dated: a change ends the
current rule and starts a new one, so anything routed earlier can still be explained.
"""

from datetime import timedelta

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GistIndex
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridgov.accounts.models import Department
from gridgov.appeals.tiers import TIERS
from gridgov.appeals.workflow import OPEN_STATES, STATE_LABELS, ClosureType, State

# --- catalogue ------------------------------------------------------------------------------


_UNITS = {"h": "HOURS", "d": "DAYS"}


def _member_name(code: str) -> str:
    # "2h" → HOURS_2, "15d" → DAYS_15: the names the code has always used for the tiers.
    return f"{_UNITS[code[-1]]}_{code[:-1]}"


# 限时办结 tiers, as clock.TIERS defines them: "7d" and "15d" count working days unless
# TIME_LIMIT_MODES says a city counts calendar days; the catalogue stores only the tier.
# django-stubs type only a member's constructor, not Django's functional API (name, members).
TimeLimit: type[models.TextChoices] = models.TextChoices(  # type: ignore[call-overload]
    "TimeLimit", [(_member_name(t.code), (t.code, t.label)) for t in TIERS.values()]
)

# Each tier's length on the calendar clock (its working-day reading is the clock's business).
TIME_LIMIT_DURATIONS: dict[str, timedelta] = {TimeLimit(t.code): timedelta(hours=t.hours) for t in TIERS.values()}


class Category(models.Model):
    """诉求分类: level 1 → 2 → 3. Codes take two digits per level ("05", "0504", "050402"), so
    a leaf's code starts with its parent's. Only leaves (level 3) are assigned to appeals and
    carry a time limit."""

    class Level(models.IntegerChoices):
        FIRST = 1, _("一级分类")
        SECOND = 2, _("二级分类")
        LEAF = 3, _("三级分类")

    level = models.PositiveSmallIntegerField(_("层级"), choices=Level.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    code = models.CharField(_("编码"), max_length=6)
    name = models.CharField(_("名称"), max_length=100)
    time_limit = models.CharField(_("办理时限"), max_length=3, choices=TimeLimit.choices, blank=True, default="")
    default_department = models.ForeignKey(
        Department,
        verbose_name=_("默认承办单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("职责清单中没有适用规则时的主办单位"),
    )
    # For the keyword classifier: words that, found in an appeal's text, point to this leaf.
    keywords = ArrayField(models.CharField(max_length=30), verbose_name=_("关键词"), blank=True, default=list)
    # Retired categories stay (appeals refer to them) but are no longer offered.
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("诉求分类")
        verbose_name_plural = _("诉求分类")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="category_code_uniq"),
            models.CheckConstraint(condition=Q(level__in=[1, 2, 3]), name="category_level_valid"),
            models.CheckConstraint(
                condition=Q(level=1, code__regex=r"^\d{2}$")
                | Q(level=2, code__regex=r"^\d{4}$")
                | Q(level=3, code__regex=r"^\d{6}$"),
                name="category_code_format",
            ),
            models.CheckConstraint(
                condition=Q(level=1, parent__isnull=True) | Q(level__gt=1, parent__isnull=False),
                name="category_parent_matches_level",
            ),
            models.CheckConstraint(
                condition=Q(level=3, time_limit__in=TimeLimit.values) | (~Q(level=3) & Q(time_limit="")),
                name="category_leaf_time_limit",
            ),
        ]

    def __str__(self):
        return f"{self.name}（{self.code}）"

    @property
    def is_leaf(self):
        return self.level == self.Level.LEAF

    @property
    def time_limit_duration(self):
        return TIME_LIMIT_DURATIONS.get(self.time_limit)

    def clean(self):
        # A parent on another row cannot be checked by a database constraint.
        if self.parent_id is not None:
            parent = self.parent
            assert parent is not None
            if parent.level != self.level - 1 or not self.code.startswith(parent.code):
                raise ValidationError({"parent": _("上级分类的层级或编码与本分类不符")})


class ResponsibilityRuleQuerySet(models.QuerySet):
    def in_force(self, at=None):
        """Rules in force at `at` (default: now). Validity is half-open, [valid_from, valid_to),
        so at the moment of a change the new rule applies and the old one no longer does."""
        at = at or timezone.now()
        return self.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at), valid_from__lte=at)


class ResponsibilityRule(models.Model):
    """职责清单 row: in `area_code` (a prefix: '' the whole city, 6 digits a district, 9 a
    street), appeals of `category` go to `department` as lead (主办) or assisting (协办) unit.
    Rules are never edited: a change ends this one (`valid_to`) and adds its successor (see
    gridgov.appeals.routing.catalogue), so an appeal routed last year still shows the rule it followed."""

    class Role(models.TextChoices):
        LEAD = "lead", _("主办")
        ASSIST = "assist", _("协办")

    category = models.ForeignKey(Category, verbose_name=_("诉求分类"), on_delete=models.PROTECT, related_name="rules")
    area_code = models.CharField(_("适用区域编码"), max_length=9, blank=True, default="")
    department = models.ForeignKey(
        Department, verbose_name=_("承办单位"), on_delete=models.PROTECT, related_name="responsibility_rules"
    )
    role = models.CharField(_("承办角色"), max_length=10, choices=Role.choices, default=Role.LEAD)
    valid_from = models.DateTimeField(_("生效时间"), default=timezone.now)
    valid_to = models.DateTimeField(_("失效时间"), null=True, blank=True)
    note = models.CharField(_("依据"), max_length=200, blank=True, default="")

    objects = ResponsibilityRuleQuerySet.as_manager()

    class Meta:
        verbose_name = _("职责清单规则")
        verbose_name_plural = _("职责清单")
        ordering = ["category__code", "area_code", "role", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "area_code", "role", "department"],
                condition=Q(valid_to__isnull=True),
                name="rule_one_current",
            ),
            models.CheckConstraint(
                condition=Q(area_code="") | Q(area_code__regex=r"^(\d{6}|\d{9})$"), name="rule_area_code_format"
            ),
            models.CheckConstraint(condition=Q(role__in=["lead", "assist"]), name="rule_role_valid"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")), name="rule_valid_range"
            ),
        ]
        indexes = [models.Index(fields=["category", "area_code"], name="rule_category_area")]

    def __str__(self):
        return (
            f"{self.category.name} @ {self.area_code or '全市'} → {self.department.name}（{self.get_role_display()}）"
        )


# --- appeals -------------------------------------------------------------------------------


class Channel(models.TextChoices):
    PHONE = "phone", _("12345热线电话")
    WEB = "web", _("网站")
    APP = "app", _("APP/小程序")
    GRID_REPORT = "grid_report", _("网格上报")
    PETITION = "petition", _("信访")
    LEADER_MAILBOX = "leader_mailbox", _("领导信箱")
    MEDIA = "media", _("媒体")
    MERGED_HOTLINE = "merged_hotline", _("归并热线（12315、12328等）")


class Kind(models.TextChoices):
    CONSULTATION = "consultation", _("咨询")
    SUGGESTION = "suggestion", _("建议")
    HELP = "help", _("求助")
    COMPLAINT = "complaint", _("投诉")
    REPORT = "report", _("举报")


class WarningColour(models.TextChoices):
    NONE = "none", _("正常")
    YELLOW = "yellow", _("黄色提醒")
    ORANGE = "orange", _("橙色督办")
    RED = "red", _("红色提级")


class Appeal(models.Model):
    """诉求 / 工单. Every decision the intake pipeline made is kept on the record (which grid and
    how it was found, the classifier's guesses, the rule that routed it), so a dispatcher can
    see why an appeal went where it went."""

    ticket_no = models.CharField(_("工单编号"), max_length=20, unique=True)
    # The 12345 platform's own id: sending the same ticket twice never makes two appeals.
    source_system = models.CharField(_("来源系统"), max_length=40, blank=True, default="")
    external_id = models.CharField(_("外部编号"), max_length=64, blank=True, default="")
    channel = models.CharField(_("渠道"), max_length=20, choices=Channel.choices, default=Channel.PHONE)
    kind = models.CharField(_("诉求类型"), max_length=20, choices=Kind.choices, default=Kind.COMPLAINT)
    text = models.TextField(_("诉求内容"))
    address_text = models.CharField(_("地址"), max_length=300, blank=True, default="")
    appellant_name = models.CharField(_("诉求人"), max_length=50, blank=True, default="")
    appellant_phone = models.CharField(_("联系电话"), max_length=30, blank=True, default="")
    received_at = models.DateTimeField(_("受理时间"), default=timezone.now, db_index=True)
    reporter = models.ForeignKey(
        "accounts.User", verbose_name=_("上报人"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # 1. where
    position = models.PointField(_("位置"), srid=4326, null=True, blank=True)
    position_input = models.JSONField(_("原始坐标"), default=dict, blank=True)  # {"lng", "lat", "crs"} as sent
    grid = models.ForeignKey(
        "areas.Grid",
        verbose_name=_("网格（定位时版本）"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The grid's code, kept beside the versioned row: jurisdiction filters are code prefixes.
    grid_code = models.CharField(_("网格编码"), max_length=15, blank=True, default="", db_index=True)
    location = models.JSONField(_("定位依据"), default=dict, blank=True)  # method, confidence, candidates

    # 2. what
    category = models.ForeignKey(
        Category, verbose_name=_("诉求分类"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    classification = models.JSONField(_("分类依据"), default=dict, blank=True)  # top-3 guesses, confirmed by
    time_limit = models.CharField(_("办理时限"), max_length=3, choices=TimeLimit.choices, blank=True, default="")
    risk = models.JSONField(_("风险提示"), default=dict, blank=True)  # flags, words, emergency transfer

    # 3. merged
    lead_appeal = models.ForeignKey(
        "self", verbose_name=_("主单"), null=True, blank=True, on_delete=models.PROTECT, related_name="merged_appeals"
    )
    duplicates = models.JSONField(_("疑似重复"), default=list, blank=True)

    # 4. to whom
    department = models.ForeignKey(
        Department, verbose_name=_("主办单位"), null=True, blank=True, on_delete=models.PROTECT, related_name="appeals"
    )
    route = models.JSONField(_("派单依据"), default=dict, blank=True)

    # 5. clock
    deadline = models.DateTimeField(_("办结时限"), null=True, blank=True, db_index=True)
    warning_colour = models.CharField(
        _("预警"), max_length=6, choices=WarningColour.choices, default=WarningColour.NONE
    )
    next_colour_at = models.DateTimeField(_("下次预警时间"), null=True, blank=True, db_index=True)

    state = models.CharField(_("状态"), max_length=20, default=State.REGISTERED, choices=list(STATE_LABELS.items()))
    closure_type = models.CharField(_("办结类型"), max_length=12, blank=True, default="", choices=ClosureType.CHOICES)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("诉求")
        verbose_name_plural = _("诉求")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_system", "external_id"], condition=~Q(external_id=""), name="appeal_external_id_uniq"
            ),
            models.CheckConstraint(condition=Q(state__in=list(STATE_LABELS)), name="appeal_state_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="appeal_channel_valid"),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="appeal_kind_valid"),
            models.CheckConstraint(condition=Q(warning_colour__in=WarningColour.values), name="appeal_colour_valid"),
            # A merged appeal names its lead; once closed with the lead it keeps naming it, so
            # its appellant's outcome can always be traced. Any other appeal has no lead.
            models.CheckConstraint(
                condition=Q(state="merged", lead_appeal__isnull=False)
                | Q(state="closed")
                | (~Q(state__in=["merged", "closed"]) & Q(lead_appeal__isnull=True)),
                name="appeal_merged_has_lead",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "warning_colour"], name="appeal_state_colour"),
            models.Index(fields=["department", "state"], name="appeal_department_state"),
            models.Index(fields=["grid_code", "received_at"], name="appeal_grid_received"),
            # The duplicate search (pipeline.duplicate_candidates): open appeals around a point
            # in the time window, one index scan. Open appeals are the recent few among millions;
            # the GiST index of every position would hand the window each appeal ever made at
            # that spot, the state and time indexes a hundred thousand rows to intersect. The
            # database's copy is written by hand (migration 0004: the predicate as text[]).
            GistIndex(
                F("position"), F("received_at"), name="appeal_open_position", condition=Q(state__in=sorted(OPEN_STATES))
            ),
        ]

    def __str__(self):
        return self.ticket_no


class AppealAssignment(models.Model):
    """A unit on an appeal: the lead (主办) and any assisting (协办) units, with the rule that
    put it there. Ended (not deleted) on reassignment."""

    class Role(models.TextChoices):
        LEAD = "lead", _("主办")
        ASSIST = "assist", _("协办")
        FIRST_RECEIVER = "first_receiver", _("首接负责")

    appeal = models.ForeignKey(Appeal, on_delete=models.CASCADE, related_name="assignments")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="assignments")
    role = models.CharField(_("角色"), max_length=16, choices=Role.choices)
    rule = models.ForeignKey(ResponsibilityRule, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("承办单位")
        verbose_name_plural = _("承办单位")
        constraints = [
            models.UniqueConstraint(
                fields=["appeal", "department"], condition=Q(ended_at__isnull=True), name="assignment_one_active"
            ),
        ]

    def __str__(self):
        return f"{self.appeal_id} → {self.department_id} ({self.role})"


class AppealEvent(models.Model):
    """The appeal's history: one row per transition, written only by appeal_transition."""

    appeal = models.ForeignKey(Appeal, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=30)
    old_state = models.CharField(max_length=20)
    new_state = models.CharField(max_length=20)
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("诉求流转记录")
        verbose_name_plural = _("诉求流转记录")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["appeal", "at"]), models.Index(fields=["event", "department"])]

    def __str__(self):
        return f"{self.appeal_id}: {self.old_state} → {self.new_state}"


class LongTermItem(models.Model):
    """挂账: an appeal that cannot be solved within its limit, tracked until solved."""

    appeal = models.OneToOneField(Appeal, on_delete=models.CASCADE, related_name="long_term")
    reason = models.TextField(_("挂账原因"))
    plan = models.TextField(_("解决计划"), blank=True, default="")
    review_at = models.DateTimeField(_("下次复核时间"), db_index=True)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("挂账事项")
        verbose_name_plural = _("挂账台账")

    def __str__(self):
        return f"挂账 {self.appeal_id}"


class Attachment(models.Model):
    """A file on an appeal: the citizen's, or field evidence. The type is sniffed from the bytes."""

    class Kind(models.TextChoices):
        PHOTO = "photo", _("照片")
        VIDEO = "video", _("视频")
        AUDIO = "audio", _("音频")
        DOCUMENT = "document", _("文件")

    appeal = models.ForeignKey(Appeal, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="appeals/%Y/%m/")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=60)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)
    purpose = models.CharField(max_length=20, blank=True, default="")  # e.g. before / after / report
    meta = models.JSONField(default=dict, blank=True)  # EXIF time and position, dimensions, thumbnail

    class Meta:
        verbose_name = _("附件")
        verbose_name_plural = _("附件")
        constraints = [models.UniqueConstraint(fields=["appeal", "sha256"], name="attachment_once_per_appeal")]

    def __str__(self):
        return self.file.name
