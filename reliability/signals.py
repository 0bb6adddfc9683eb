"""Keep guardian permissions in step with teams and memberships."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from reliability.models import Team, TeamMembership
from reliability.permissions import drop_membership, grant_team_permissions, sync_membership


@receiver(post_save, sender=Team)
def team_saved(sender, instance: Team, created: bool, **kwargs) -> None:
    if created:
        grant_team_permissions(instance)


@receiver(post_save, sender=TeamMembership)
def membership_saved(sender, instance: TeamMembership, **kwargs) -> None:
    sync_membership(instance)


@receiver(post_delete, sender=TeamMembership)
def membership_deleted(sender, instance: TeamMembership, **kwargs) -> None:
    drop_membership(instance)
