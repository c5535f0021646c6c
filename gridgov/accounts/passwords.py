"""Password rules: Django's validators, where Django's own Chinese falls short."""

from django.contrib.auth.password_validation import MinimumLengthValidator as DjangoMinimumLengthValidator
from django.utils.translation import gettext as _


class MinimumLengthValidator(DjangoMinimumLengthValidator):
    # Django 5.2's message ("at least %d character") no longer matches its zh_Hans catalogue's
    # msgid ("%(min_length)d"), so it showed in English: say it in Chinese here.
    def get_error_message(self) -> str:
        return _("这个密码太短，至少需要 %(min_length)d 个字符。") % {"min_length": self.min_length}
