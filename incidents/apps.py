from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"

    def ready(self) -> None:
        from incidents import (  # noqa: F401  (connect signals, register Celery tasks)
            signals,
            tasks,
        )
        from incidents.models import Integration, Service
        from incidents.visibility import incidents_for
        from reliability import audit
        from reliability.permissions import objects_for

        audit.register_visibility("incidents.incident", incidents_for)
        audit.register_visibility(
            "incidents.service", lambda user: objects_for(user, "view", Service)
        )
        audit.register_visibility(
            "incidents.integration", lambda user: objects_for(user, "view", Integration)
        )
