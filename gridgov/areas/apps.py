from django.apps import AppConfig


class AreasConfig(AppConfig):
    name = "gridgov.areas"
    verbose_name = "区划与网格"
