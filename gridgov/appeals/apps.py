from django.apps import AppConfig


class AppealsConfig(AppConfig):
    name = "gridgov.appeals"
    verbose_name = "诉求与职责清单"
