"""Who may see and act on what: the one place that restricts incident-side querysets.

Services and integrations carry guardian object permissions (granted to their team's role
groups). Incidents, alerts and timelines are restricted by a join to those: an incident is
visible to the teams owning its services and to the team of the integration that opened it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from incidents.models import Alert, Incident, Integration, Service
from reliability.models import Team
from reliability.permissions import has_capability, objects_for


def visible_services(user: Any) -> QuerySet[Service]:
    return objects_for(user, "view", Service)


def visible_teams(user: Any) -> QuerySet[Team]:
    return objects_for(user, "view", Team)


def incidents_for(user: Any, capability: str = "view") -> QuerySet[Incident]:
    """Incidents on which ``user`` has ``capability`` (view, respond, remediate)."""
    if getattr(user, "is_superuser", False):
        return Incident.objects.all()
    services = objects_for(user, capability, Service).values("pk")
    if capability == "view":
        teams = visible_teams(user).values("pk")
    else:
        # acting on an incident with no services needs the capability on one of the
        # team's services, so "respond" still means "responder in the owning team".
        teams = objects_for(user, capability, Service).values("team_id")
    matching = Incident.objects.filter(Q(services__in=services) | Q(team__in=teams))
    return Incident.objects.filter(pk__in=matching.values("pk"))


def alerts_for(user: Any) -> QuerySet[Alert]:
    if getattr(user, "is_superuser", False):
        return Alert.objects.all()
    return Alert.objects.filter(
        Q(integration__in=objects_for(user, "view", Integration).values("pk"))
        | Q(incident__in=incidents_for(user).values("pk"))
        | Q(service__in=visible_services(user).values("pk"))
    )


def can(user: Any, capability: str, incident: Incident) -> bool:
    return incidents_for(user, capability).filter(pk=incident.pk).exists()


__all__ = ["alerts_for", "can", "has_capability", "incidents_for", "visible_services"]
