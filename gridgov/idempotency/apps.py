from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "gridgov.idempotency"
    verbose_name = "幂等请求记录"
