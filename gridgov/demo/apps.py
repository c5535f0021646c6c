from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo city and its life: load_demo_city, load_demo_history, simulate, demo_logins."""

    name = "gridgov.demo"
    verbose_name = "演示数据"
