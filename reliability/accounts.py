"""Users, roles and API tokens for people and service accounts."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from reliability import audit
from reliability.models import Team, TeamMembership
from reliability.roles import Role


@transaction.atomic
def ensure_user(
    username: str,
    *,
    team: Team | None = None,
    role: Role | str | None = None,
    superuser: bool = False,
    password: str | None = None,
) -> tuple[object, str]:
    """Create or update a user, give them ``role`` in ``team``; return (user, token key)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if superuser:
        user.is_superuser = user.is_staff = True
    elif role == Role.ADMIN:
        user.is_staff = True  # team admins curate their objects in the Django admin
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.save()
    if team is not None and role is not None:
        TeamMembership.objects.update_or_create(team=team, user=user, defaults={"role": Role(role)})
    token, _ = Token.objects.get_or_create(user=user)
    audit.record(
        "user.created" if created else "user.updated",
        user,
        changes={"team": team.slug if team else None, "role": str(role) if role else None},
    )
    return user, token.key
