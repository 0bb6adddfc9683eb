from django.db.models import CharField, Q
from django.db.models.functions import Cast
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied

from reliability import audit
from reliability.api.filters import AuditLogFilter
from reliability.api.serializers import AuditLogSerializer, TeamSerializer
from reliability.api.viewsets import AuditedModelViewSet, CapabilityViewSetMixin
from reliability.models import AuditLog, Team
from reliability.permissions import objects_for


class TeamViewSet(AuditedModelViewSet):
    """Teams you belong to. Creating a team is for superusers; team admins may edit theirs."""

    serializer_class = TeamSerializer
    capabilities = {
        "list": "view",
        "retrieve": "view",
        "create": "create",
        "update": "change",
        "partial_update": "change",
    }
    search_fields = ["name", "slug"]
    lookup_field = "slug"

    def get_queryset(self):
        return objects_for(self.request.user, "view", Team).prefetch_related("memberships__user")

    def check_create(self, serializer):
        if not self.request.user.is_superuser:
            raise PermissionDenied("Only superusers create teams.")


class AuditLogViewSet(CapabilityViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log, read-only: entries about what you can see, and your own actions."""

    serializer_class = AuditLogSerializer
    queryset = AuditLog.objects.none()  # for the schema; get_queryset restricts
    capabilities = {"list": "view", "retrieve": "view"}
    filterset_class = AuditLogFilter
    search_fields = ["object_repr", "actor_repr", "action"]
    ordering_fields = ["timestamp"]

    def has_capability(self, user, capability, obj):
        return True  # the queryset below is the restriction

    def get_queryset(self):
        user = self.request.user
        if user.is_superuser:
            return AuditLog.objects.all()
        return AuditLog.objects.filter(Q(actor=user) | self._visible_objects(user))

    @staticmethod
    def _visible_objects(user) -> Q:
        condition = Q()
        for label, visible in audit.visibility_providers().items():
            ids = visible(user).annotate(key=Cast("pk", CharField())).values("key")
            condition |= Q(object_type=label, object_id__in=ids)
        return condition
