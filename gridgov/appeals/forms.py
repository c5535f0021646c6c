"""The operator's intake form. Widgets and Chinese labels here; the rules are the API's
(AppealRegisterInput), so a form and an API call accept and refuse the same appeals."""

from typing import Any

from django import forms

from gridgov.appeals.models import Category, Channel, Kind
from gridgov.appeals.serializers import AppealRegisterInput

CRS_CHOICES = [
    ("wgs84", "WGS-84（GPS、天地图）"),
    ("gcj02", "GCJ-02（高德、腾讯地图）"),
    ("bd09", "BD-09（百度地图）"),
]


def chinese(message):
    """Our messages read '中文 / English'; the page shows the Chinese half."""
    return str(message).split(" / ", 1)[0]


def category_choices(empty_label):
    """Active leaves grouped under their level-2 parent, as <optgroup>s."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for leaf in Category.objects.filter(level=3, is_active=True).select_related("parent").order_by("code"):
        groups.setdefault(leaf.parent.name if leaf.parent_id else "", []).append(  # type: ignore[union-attr]
            (leaf.code, f"{leaf.name}（{leaf.code}）")
        )
    return [("", empty_label), *groups.items()]


class IntakeForm(forms.Form):
    text = forms.CharField(
        label="诉求内容",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "请记录诉求人反映的问题、时间、地点"}),
    )
    address_text = forms.CharField(label="事发地址", max_length=300, required=False)
    lng = forms.FloatField(label="经度", required=False, widget=forms.NumberInput(attrs={"step": "any"}))
    lat = forms.FloatField(label="纬度", required=False, widget=forms.NumberInput(attrs={"step": "any"}))
    crs = forms.ChoiceField(label="坐标系", choices=CRS_CHOICES, initial="wgs84")
    appellant_name = forms.CharField(label="诉求人", max_length=50, required=False)
    appellant_phone = forms.CharField(label="联系电话", max_length=30, required=False)
    channel = forms.ChoiceField(label="渠道", choices=Channel.choices, initial=Channel.PHONE)
    kind = forms.ChoiceField(label="诉求类型", choices=[("", "自动识别"), *Kind.choices], required=False)
    category_code = forms.ChoiceField(label="诉求分类", required=False)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fields["category_code"].choices = category_choices("自动分类")  # type: ignore[attr-defined]
        self.register_data: Any = None  # what clean() validated, for appeal_register

    def clean(self):
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        data = AppealRegisterInput(data={k: v for k, v in cleaned.items() if v not in (None, "")})
        if data.is_valid():
            self.register_data = data.register_data()
            return cleaned
        for field, errors in data.errors.items():
            for error in errors if isinstance(errors, list) else [errors]:
                self.add_error(field if field in self.fields else None, chinese(error))
        return cleaned
