"""The place registry (地名地址库): roads, residential compounds, buildings and points of
interest with a position, which the geocoder (geocode.py) matches appeals' address text
against. Positions are stored in WGS-84, like every geometry in the database."""

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Place(models.Model):
    class Kind(models.TextChoices):
        ROAD = "road", _("道路")
        COMPOUND = "compound", _("小区")
        BUILDING = "building", _("楼宇")
        POI = "poi", _("兴趣点")

    name = models.CharField(_("名称"), max_length=100)
    # Other names people use: 简称, former names, the name on the gate.
    aliases = ArrayField(models.CharField(max_length=100), verbose_name=_("别名"), blank=True, default=list)
    kind = models.CharField(_("类型"), max_length=10, choices=Kind.choices, default=Kind.POI)
    address = models.CharField(_("地址"), max_length=300, blank=True, default="")
    point = models.PointField(_("位置"), srid=4326)
    polygon = models.MultiPolygonField(_("范围"), srid=4326, null=True, blank=True)
    # The grid the point lies in when the place was imported ('' outside every grid).
    grid_code = models.CharField(_("网格编码"), max_length=15, blank=True, default="", db_index=True)
    source = models.CharField(_("来源"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("地名")
        verbose_name_plural = _("地名地址库")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["road", "compound", "building", "poi"]), name="place_kind_valid"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="place_name_not_empty"),
            models.CheckConstraint(
                condition=Q(grid_code="") | Q(grid_code__regex=r"^\d{15}$"), name="place_grid_code_format"
            ),
        ]
        indexes = [
            # Trigram index for fuzzy name search (geocode.py): pg_trgm hashes CJK trigrams.
            GinIndex(fields=["name"], opclasses=["gin_trgm_ops"], name="place_name_trgm"),
            GinIndex(fields=["aliases"], name="place_aliases_gin"),
        ]

    def __str__(self):
        return f"{self.name}（{self.get_kind_display()}）"
