"""The API's input fields: DRF's own, strict about JSON's types and about times. Every input
serializer of the API builds on these (tests/test_inputs.py checks that none uses DRF's
lenient ones), so one rule holds at every door.

JSON has types: a string is a string, a number a number, and `true` is not 1. DRF would turn
`"text": 123` into "123" and `"lng": true` into 1.0, and register an appeal nobody wrote;
here a value of the wrong type is refused with a field error. Text sources (a query string,
an HTML or multipart form, a CSV cell) have nothing but strings, which the field parses as
before: a serializer given a QueryDict, or the context key `text_input`, reads text.

Times: a time before settings.INPUT_EARLIEST (2000-01-01) or later than now plus
INPUT_FUTURE_SLACK_SECONDS is a typo or a forgery (year 0001 made a 13-digit ticket number;
`at=9999-01-01` asked for boundaries nobody drew). Plans (a review date, a muster deadline)
look ahead, up to PLANNING_HORIZON."""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers

# A review date or muster deadline further ahead than this is a typo, not a plan.
PLANNING_HORIZON = timedelta(days=10 * 366)


def from_text(field):
    """Whether `field` reads text (query string, form, CSV) rather than typed JSON."""
    root = field.root
    return isinstance(getattr(root, "initial_data", None), QueryDict) or bool(root.context.get("text_input"))


class _StrictText(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, str) and not from_text(self):
            raise serializers.ValidationError("须为字符串 / must be a string", code="invalid")
        return super().to_internal_value(data)


class CharField(_StrictText, serializers.CharField):
    pass


class RegexField(_StrictText, serializers.RegexField):
    pass


class SlugField(_StrictText, serializers.SlugField):
    pass


class UUIDField(_StrictText, serializers.UUIDField):
    pass


def _is_number(data):
    return isinstance(data, int | float) and not isinstance(data, bool)


class FloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if not _is_number(data) and not from_text(self):
            raise serializers.ValidationError("须为数字（不能是字符串或布尔值） / must be a number", code="invalid")
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if not (isinstance(data, int) and not isinstance(data, bool)) and not from_text(self):
            raise serializers.ValidationError("须为整数（不能是字符串或布尔值） / must be an integer", code="invalid")
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool) and not from_text(self):
            raise serializers.ValidationError("须为 true 或 false / must be true or false", code="invalid")
        return super().to_internal_value(data)


def time_window(ahead=None):
    """(earliest, latest) an input time may be, now: INPUT_EARLIEST to now + `ahead`
    (INPUT_FUTURE_SLACK_SECONDS unless given: a phone's clock a little fast is no error)."""
    earliest = timezone.make_aware(datetime.combine(settings.INPUT_EARLIEST, time.min))
    if ahead is None:
        ahead = timedelta(seconds=settings.INPUT_FUTURE_SLACK_SECONDS)
    return earliest, timezone.now() + ahead


class DateTimeField(serializers.DateTimeField):
    """An ISO time within time_window(ahead). `ahead`: how far after now it may be, for a
    time that plans rather than records (PLANNING_HORIZON)."""

    def __init__(self, *, ahead=None, **kwargs):
        self.ahead = ahead
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str | datetime):
            raise serializers.ValidationError("须为 ISO 8601 时间字符串 / must be an ISO 8601 string", code="invalid")
        value = super().to_internal_value(value)
        earliest, latest = time_window(self.ahead)
        if value < earliest:
            raise serializers.ValidationError(
                f"时间不能早于 {timezone.localtime(earliest):%Y-%m-%d} / must not be before {earliest:%Y-%m-%d}",
                code="too_early",
            )
        if value > latest:
            if self.ahead is None:
                raise serializers.ValidationError("时间不能晚于当前时间 / must not be in the future", code="too_late")
            raise serializers.ValidationError(
                f"时间不能晚于 {timezone.localtime(latest):%Y-%m-%d} / must not be after {latest:%Y-%m-%d}",
                code="too_late",
            )
        return value


STRICT_FIELDS = (_StrictText, FloatField, IntegerField, BooleanField, DateTimeField)
# DRF's fields that coerce types; an input serializer uses the strict ones above instead.
LENIENT_FIELDS = (
    serializers.CharField,
    serializers.FloatField,
    serializers.IntegerField,
    serializers.BooleanField,
    serializers.DateTimeField,
    serializers.UUIDField,
    serializers.DecimalField,
)
