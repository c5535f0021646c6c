from django.apps import AppConfig


class WhistlesConfig(AppConfig):
    name = "gridgov.whistles"
    verbose_name = "热点与吹哨报到"
