"""gridgov/inputs.py: the API's input fields take JSON's types as they are and times within a
sane window (#11); every input serializer of the API is built from them."""

import importlib
import inspect
from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers

from gridgov import inputs

INPUT_MODULES = [
    "gridgov.appeals.serializers",
    "gridgov.areas.serializers",
    "gridgov.whistles.serializers",
    "mobile_api.v1.serializers",
    "mobile_api.v1.task_serializers",
]


def input_serializers():
    for name in INPUT_MODULES:
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, serializers.Serializer)
                and cls.__module__ == name
                and cls_name.endswith(("Input", "Query", "Bulk"))
            ):
                yield cls


def all_fields(fields):
    for f in fields.values():
        yield f
        child = getattr(f, "child", None)
        if child is not None:
            yield child


def test_every_input_serializer_uses_the_strict_fields():
    classes = list(input_serializers())
    assert len(classes) > 25  # the modules were read
    lenient = [
        f"{cls.__module__}.{cls.__name__}.{f.field_name or 'child'}: {type(f).__name__}"
        for cls in classes
        for f in all_fields(cls().fields)
        if isinstance(f, inputs.LENIENT_FIELDS) and not isinstance(f, inputs.STRICT_FIELDS)
    ]
    assert lenient == []


class Probe(serializers.Serializer):
    text = inputs.CharField(required=False)
    code = inputs.RegexField(r"^\d+$", required=False)
    lng = inputs.FloatField(required=False)
    n = inputs.IntegerField(required=False)
    ids = serializers.ListField(child=inputs.IntegerField(), required=False)
    flag = inputs.BooleanField(required=False)
    key = inputs.UUIDField(required=False)
    at = inputs.DateTimeField(required=False)
    plan = inputs.DateTimeField(required=False, ahead=inputs.PLANNING_HORIZON)


@pytest.mark.parametrize(
    "field,value",
    [
        ("text", 123),
        ("text", 1.5),
        ("text", True),
        ("code", 123),
        ("lng", True),
        ("lng", "116.4"),
        ("n", "5"),
        ("n", 5.0),
        ("n", False),
        ("ids", [1, "2"]),
        ("ids", [True]),
        ("flag", 1),
        ("flag", "true"),
        ("key", 5),
        ("at", 1700000000),
        ("at", "0001-01-01T00:00:00Z"),
        ("at", "9999-01-01T00:00:00+08:00"),
        ("plan", "2999-01-01T00:00:00+08:00"),
        ("plan", "1999-01-01T00:00:00+08:00"),
    ],
)
def test_json_values_of_the_wrong_type_or_time_are_refused(field, value):
    probe = Probe(data={field: value})
    assert not probe.is_valid() and list(probe.errors) == [field], probe.errors
    message = str(probe.errors[field][0] if field != "ids" else next(iter(probe.errors[field].values()))[0])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message  # said in Chinese


def test_json_values_of_the_right_type_pass():
    soon = timezone.now() + timedelta(minutes=5)
    probe = Probe(
        data={
            "text": "垃圾",
            "code": "0101",
            "lng": 116,
            "n": 3,
            "ids": [1, 2],
            "flag": False,
            "key": "7c3a3a3e-9b1e-4d0e-8f6b-1f6f0f0f0f0f",
            "at": soon.isoformat(),
            "plan": (timezone.now() + timedelta(days=365)).isoformat(),
        }
    )
    assert probe.is_valid(), probe.errors
    assert probe.validated_data["lng"] == 116.0 and probe.validated_data["flag"] is False


def test_text_sources_are_parsed_as_text():
    query = QueryDict("lng=116.4&n=5&ids=1&ids=2&flag=true&text=123&key=7c3a3a3e-9b1e-4d0e-8f6b-1f6f0f0f0f0f")
    probe = Probe(data=query)
    assert probe.is_valid(), probe.errors
    assert probe.validated_data == {
        "lng": 116.4,
        "n": 5,
        "ids": [1, 2],
        "flag": True,
        "text": "123",
        "key": probe.validated_data["key"],
    }
    csv = Probe(data={"lng": "116.4", "n": "5"}, context={"text_input": True})
    assert csv.is_valid() and csv.validated_data == {"lng": 116.4, "n": 5}
    # The time window holds for text too.
    assert not Probe(data=QueryDict("at=9999-01-01T00:00:00Z")).is_valid()


def test_the_window_follows_the_settings(settings):
    settings.INPUT_EARLIEST = timezone.datetime(2020, 1, 1).date()
    settings.INPUT_FUTURE_SLACK_SECONDS = 0
    assert not Probe(data={"at": "2019-12-31T23:00:00+08:00"}).is_valid()
    assert Probe(data={"at": "2020-01-01T00:00:00+08:00"}).is_valid()
    assert not Probe(data={"at": (timezone.now() + timedelta(minutes=1)).isoformat()}).is_valid()
