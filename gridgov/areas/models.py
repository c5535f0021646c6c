"""District → Street → Community → Grid, each boundary versioned.

The hierarchy lives in the codes (GB/T 2260 district + 3 + 3 + 3 digits), so a grid's street
is `codes.street_code_of(code)` whatever version either boundary is at. Re-importing a changed boundary closes
the current row (`valid_to`) and adds a new version; rows are never edited in place, so
anything located earlier keeps pointing at the version it was located in (mapit's
generations, per area).
"""

from django.contrib.gis.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from gridgov import areacodes as codes


class AreaQuerySet(models.QuerySet):
    def current(self):
        return self.filter(valid_to__isnull=True)

    def at(self, when=None):
        if when is None:
            return self.current()
        return self.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=when), valid_from__lte=when)


def level_constraints(prefix, code_length):
    return [
        models.UniqueConstraint(fields=["code", "version"], name=f"{prefix}_code_version_uniq"),
        models.UniqueConstraint(fields=["code"], condition=Q(valid_to__isnull=True), name=f"{prefix}_one_current"),
        models.CheckConstraint(condition=Q(code__regex=rf"^\d{{{code_length}}}$"), name=f"{prefix}_code_format"),
        models.CheckConstraint(
            condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")), name=f"{prefix}_valid_range"
        ),
    ]


class AreaVersion(models.Model):
    CODE_LENGTH = 0  # set per level
    LEVEL = ""

    code = models.CharField(_("编码"), max_length=15, db_index=True)
    name = models.CharField(_("名称"), max_length=100)
    geom = models.MultiPolygonField(_("边界"), srid=4326)
    version = models.PositiveIntegerField(_("版本"), default=1)
    valid_from = models.DateTimeField(_("生效时间"), default=timezone.now)
    valid_to = models.DateTimeField(_("失效时间"), null=True, blank=True)
    import_run = models.ForeignKey(
        "areas.ImportRun", verbose_name=_("导入批次"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = AreaQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["code", "version"]

    def __str__(self):
        return f"{self.name}（{self.code}）"

    @property
    def is_current(self):
        return self.valid_to is None


class District(AreaVersion):
    CODE_LENGTH = codes.DISTRICT_LENGTH
    LEVEL = "district"

    class Meta(AreaVersion.Meta):
        verbose_name = _("区")
        verbose_name_plural = _("区")
        constraints = level_constraints("district", codes.DISTRICT_LENGTH)


class Street(AreaVersion):
    CODE_LENGTH = codes.STREET_LENGTH
    LEVEL = "street"

    class Meta(AreaVersion.Meta):
        verbose_name = _("街道")
        verbose_name_plural = _("街道")
        constraints = level_constraints("street", codes.STREET_LENGTH)


class Community(AreaVersion):
    CODE_LENGTH = codes.COMMUNITY_LENGTH
    LEVEL = "community"

    class Meta(AreaVersion.Meta):
        verbose_name = _("社区")
        verbose_name_plural = _("社区")
        constraints = level_constraints("community", codes.COMMUNITY_LENGTH)


class Grid(AreaVersion):
    CODE_LENGTH = codes.GRID_LENGTH
    LEVEL = "grid"

    class Meta(AreaVersion.Meta):
        verbose_name = _("网格")
        verbose_name_plural = _("网格")
        constraints = level_constraints("grid", codes.GRID_LENGTH)


LEVELS = {"district": District, "street": Street, "community": Community, "grid": Grid}
LEVEL_BY_LENGTH = {m.CODE_LENGTH: m for m in LEVELS.values()}


parent_code = codes.parent_code  # where the importer and the admin have always found it


class ImportRun(models.Model):
    """One run of import_areas (or the demo generator): who, what file, what it changed and the
    validation report. It is also the audit record of every boundary change."""

    level = models.CharField(_("层级"), max_length=10, choices=[(k, k) for k in LEVELS])
    source = models.CharField(_("来源文件"), max_length=500)
    crs = models.CharField(_("坐标系"), max_length=20)
    started_at = models.DateTimeField(_("开始时间"), default=timezone.now)
    actor = models.CharField(_("操作人"), max_length=150, blank=True, default="")
    created = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    report = models.JSONField(_("校验报告"), default=dict)

    class Meta:
        verbose_name = _("边界导入记录")
        verbose_name_plural = _("边界导入记录")
        ordering = ["-id"]
