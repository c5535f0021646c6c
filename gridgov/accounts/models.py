"""People and organisations: users with one role each, and the departments they may work for."""

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from gridgov.areacodes import DISTRICT_LENGTH, STREET_LENGTH

code_digits = RegexValidator(r"^\d+$", _("只能包含数字"))


class Role(models.TextChoices):
    GRID_WORKER = "grid_worker", _("网格员")
    STREET_OFFICE = "street_office", _("街道办")
    DEPARTMENT = "department", _("部门")
    LEADER = "leader", _("领导")
    OPERATOR = "operator", _("坐席")
    HOTLINE_CENTER = "hotline_center", _("热线中心")
    ADMIN = "admin", _("管理员")


class Department(models.Model):
    """A city or district bureau, or a public-service company, that appeals are dispatched to."""

    class Kind(models.TextChoices):
        BUREAU = "bureau", _("职能部门")
        UTILITY = "utility", _("公共服务企业")
        POLICE = "police", _("公安")

    code = models.SlugField(_("编码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=20, choices=Kind.choices, default=Kind.BUREAU)
    # Blank: city-wide. Otherwise the 6-digit code of the district it serves.
    district_code = models.CharField(
        _("所属区编码"), max_length=DISTRICT_LENGTH, blank=True, default="", validators=[code_digits]
    )
    phone = models.CharField(_("值班电话"), max_length=30, blank=True, default="")
    # Set for a street office (街道办事处) as a department: the street it is the locality of
    # (属地). Routing and field work find a street's office by this, never by its code.
    street_code = models.CharField(
        _("街道编码"),
        max_length=STREET_LENGTH,
        blank=True,
        default="",
        validators=[code_digits],
        help_text=_("街道办事处填写所在街道的9位编码；其他部门留空"),
    )

    class Meta:
        verbose_name = _("部门")
        verbose_name_plural = _("部门")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(street_code="") | models.Q(street_code__regex=rf"^\d{{{STREET_LENGTH}}}$"),
                name="department_street_code_format",
            ),
            # One street office per street: the locality of a grid is never a choice.
            models.UniqueConstraint(
                fields=["street_code"], condition=~models.Q(street_code=""), name="department_one_office_per_street"
            ),
        ]

    def __str__(self):
        return self.name


class User(AbstractUser):
    role = models.CharField(_("角色"), max_length=20, choices=Role.choices, default=Role.OPERATOR)
    # The jurisdiction: a street code for a street office, a district code (or blank: city)
    # for a leader. Grid workers use grid_codes; department staff their department's scope.
    area_code = models.CharField(_("辖区编码"), max_length=15, blank=True, default="", validators=[code_digits])
    grid_codes = ArrayField(
        models.CharField(max_length=15, validators=[code_digits]),
        verbose_name=_("负责网格"),
        blank=True,
        default=list,
    )
    department = models.ForeignKey(
        Department, verbose_name=_("部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    phone = models.CharField(_("手机号"), max_length=20, blank=True, default="")

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="user_role_valid"),
            models.CheckConstraint(
                condition=~models.Q(role="street_office") | models.Q(area_code__regex=r"^\d{9}$"),
                name="street_office_has_street",
            ),
            models.CheckConstraint(
                condition=~models.Q(role="department") | models.Q(department__isnull=False),
                name="department_user_has_department",
            ),
        ]
