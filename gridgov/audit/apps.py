from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "gridgov.audit"
    verbose_name = "审计日志"
