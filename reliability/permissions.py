"""Object permissions on team-owned things, in one place.

Each team has one Django group per role. Saving a team-owned object (a service, an
integration, the team itself) grants that object's permissions to the team's role groups
with guardian; adding a member puts the user in the role group. ``objects_for`` is the one
query that decides what a user may see or act on.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from reliability.models import Team, TeamMembership
from reliability.roles import OWNED_MODELS, ROLE_ORDER, permissions_for


def owning_team(obj: models.Model) -> Team | None:
    return obj if isinstance(obj, Team) else getattr(obj, "team", None)


def grant_team_permissions(obj: models.Model, previous_team: Team | None = None) -> None:
    """Give the owning team's role groups their permissions on ``obj`` (idempotent)."""
    label = obj._meta.label_lower
    if previous_team is not None:
        for role, group in previous_team.role_groups().items():
            for codename in permissions_for(role, label):
                remove_perm(f"{obj._meta.app_label}.{codename}", group, obj)
    team = owning_team(obj)
    if team is None:
        return
    for role, group in team.role_groups().items():
        for codename in permissions_for(role, label):
            assign_perm(f"{obj._meta.app_label}.{codename}", group, obj)


def sync_membership(membership: TeamMembership) -> None:
    """Keep the user in exactly the role group their membership names."""
    groups = membership.team.role_groups()
    membership.user.groups.remove(*[g for r, g in groups.items() if r != membership.role])
    membership.user.groups.add(groups[membership.role])


def drop_membership(membership: TeamMembership) -> None:
    membership.user.groups.remove(*membership.team.role_groups().values())


def objects_for(user: Any, capability: str, model: type[models.Model]) -> models.QuerySet:
    """The objects of a team-owned ``model`` on which ``user`` has ``capability``."""
    label = model._meta.label_lower
    if label not in OWNED_MODELS:
        raise ValueError(f"{label} is not team-owned")
    perm = f"{model._meta.app_label}.{capability}_{model._meta.model_name}"
    if not getattr(user, "is_authenticated", False):
        return model.objects.none()
    if user.is_superuser:
        return model.objects.all()
    return get_objects_for_user(
        user, perm, klass=model, accept_global_perms=False, with_superuser=False
    )


def has_capability(user: Any, capability: str, obj: models.Model) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    perm = f"{obj._meta.app_label}.{capability}_{obj._meta.model_name}"
    return user.is_superuser or user.has_perm(perm, obj)


def user_role_in(user: Any, team: Team) -> str | None:
    membership = TeamMembership.objects.filter(user=user, team=team).first()
    return membership.role if membership else None


__all__ = [
    "ROLE_ORDER",
    "drop_membership",
    "grant_team_permissions",
    "has_capability",
    "objects_for",
    "owning_team",
    "sync_membership",
    "user_role_in",
]
