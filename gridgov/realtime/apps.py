from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "gridgov.realtime"
    verbose_name = "实时推送"
