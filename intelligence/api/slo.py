"""SLO status on the SLO API: ``/api/v1/slos/status/`` and ``/api/v1/slos/<id>/status/``.

Read from the rows the beat job stores (``SLOStatus``), never from Prometheus, so the API
answers at once and still answers when Prometheus is down. Visible as the SLO is: to the
team of its service.
"""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, serializers, viewsets

from incidents.models import SLO, Service
from intelligence.models import SLOStatus
from reliability.api.viewsets import CapabilityViewSetMixin
from reliability.permissions import has_capability, objects_for

STATUS_FIELDS = [
    "evaluated_at",
    "sli",
    "window_error_ratio",
    "budget_remaining",
    "windows",
    "firing",
    "severity",
    "queries",
    "error",
    "error_at",
]


class SLOStatusSerializer(serializers.ModelSerializer):
    """An SLO with its last evaluation (fields null until the beat job has run once)."""

    slo = serializers.IntegerField(source="pk", read_only=True)
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    error_budget = serializers.FloatField(read_only=True)
    burning = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    class Meta:
        model = SLO
        fields = [
            "slo",
            "service",
            "name",
            "objective",
            "window_days",
            "error_budget",
            "burning",
            "status",
        ]

    def _status(self, slo: SLO) -> SLOStatus:
        try:
            return slo.burn_status
        except SLOStatus.DoesNotExist:
            return SLOStatus(slo=slo)

    def get_burning(self, slo: SLO) -> bool:
        return bool(self._status(slo).firing)

    def get_status(self, slo: SLO) -> dict[str, Any]:
        status = self._status(slo)
        data = {name: getattr(status, name) for name in STATUS_FIELDS}
        for name in ("evaluated_at", "error_at"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


class SLOStatusViewSet(
    CapabilityViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """SLI, error budget left and burn rate per window of the SLOs you can see."""

    serializer_class = SLOStatusSerializer
    capabilities = {"list": "view", "retrieve": "view"}
    filterset_fields = ["service__slug"]
    lookup_url_kwarg = "slo_id"

    def get_queryset(self):
        visible = objects_for(self.request.user, "view", Service)
        return (
            SLO.objects.filter(service__in=visible)
            .select_related("service", "burn_status")
            .order_by("service__slug", "name")
        )

    def has_capability(self, user, capability: str, obj) -> bool:
        return has_capability(user, capability, obj.service)
