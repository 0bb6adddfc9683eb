"""Grant the owning team's role groups their object permissions on services and
integrations, and move them when the owner changes; announce incident activity to the apps
above (which the incident core never imports)."""

from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver

from incidents.models import Integration, Service
from reliability.models import Team
from reliability.permissions import grant_team_permissions

# Sent (robustly: a receiver's error never reaches the sender) inside the transaction that
# opened incidents or attached firing alerts to them, with ``opened`` and ``grown``: lists
# of incident ids. Receivers that start work should do so on commit (the analysis does).
incident_activity = Signal()


@receiver(pre_save, sender=Service)
@receiver(pre_save, sender=Integration)
def remember_team(sender, instance, **kwargs) -> None:
    instance._previous_team_id = (
        sender.objects.filter(pk=instance.pk).values_list("team_id", flat=True).first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=Service)
@receiver(post_save, sender=Integration)
def owned_object_saved(sender, instance, created: bool, **kwargs) -> None:
    previous = getattr(instance, "_previous_team_id", None)
    if created or previous != instance.team_id:
        old_team = None
        if previous and previous != instance.team_id:
            old_team = Team.objects.get(pk=previous)
        grant_team_permissions(instance, previous_team=old_team)
