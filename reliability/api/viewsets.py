"""Base viewsets: restricted querysets, declared capabilities, audited writes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from rest_framework import viewsets

from reliability import audit
from reliability.api.permissions import CapabilityPermission
from reliability.permissions import has_capability


def snapshot(obj) -> dict[str, Any]:
    data = model_to_dict(obj)
    return {
        k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v))
        for k, v in data.items()
    }


class CapabilityViewSetMixin:
    """``capabilities`` maps each action to the capability it needs on the object."""

    permission_classes = [CapabilityPermission]
    capabilities: dict[str, str] = {}

    def has_capability(self, user, capability: str, obj) -> bool:
        return has_capability(user, capability, obj)


class AuditedModelViewSet(CapabilityViewSetMixin, viewsets.ModelViewSet):
    """Create, update and delete write an audit row in the same transaction."""

    def perform_create(self, serializer) -> None:
        with transaction.atomic():
            self.check_create(serializer)
            obj = serializer.save()
            audit.record(
                f"{obj._meta.model_name}.created",
                obj,
                actor=self.request.user,
                changes=snapshot(obj),
            )

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            before = snapshot(serializer.instance)
            self.check_update(serializer)
            obj = serializer.save()
            audit.record(
                f"{obj._meta.model_name}.updated",
                obj,
                actor=self.request.user,
                changes=audit.diff(before, snapshot(obj)),
            )

    def perform_destroy(self, instance) -> None:
        with transaction.atomic():
            audit.record(
                f"{instance._meta.model_name}.deleted",
                instance,
                actor=self.request.user,
                changes=snapshot(instance),
            )
            instance.delete()

    def check_create(self, serializer) -> None:
        """Refuse (PermissionDenied) creating what the user may not own."""

    def check_update(self, serializer) -> None:
        """Refuse moving an object to a place the user may not own."""
