from django.apps import AppConfig


class IntelligenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "intelligence"

    def ready(self) -> None:
        from intelligence import (  # noqa: F401  (connect receivers, register Celery tasks)
            receivers,
            tasks,
        )
