from django.apps import AppConfig


class ReliabilityConfig(AppConfig):
    name = "reliability"
    verbose_name = "Reliability Studio"

    def ready(self) -> None:
        from reliability import signals  # noqa: F401  (connects guardian permission sync)
