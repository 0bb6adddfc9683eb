from django.apps import AppConfig


class ReliabilityConfig(AppConfig):
    name = "reliability"
    verbose_name = "Reliability Studio"

    def ready(self) -> None:
        from reliability import audit, signals  # noqa: F401  (connects permission sync)
        from reliability.models import Team
        from reliability.permissions import objects_for

        audit.register_visibility("reliability.team", lambda user: objects_for(user, "view", Team))
