from django.apps import AppConfig


class PlacesConfig(AppConfig):
    name = "gridgov.places"
    verbose_name = "地名地址库"
