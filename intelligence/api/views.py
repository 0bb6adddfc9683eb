"""The incident's analyses: read them, or ask for a fresh one."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from incidents.models import Incident
from incidents.visibility import can, incidents_for
from intelligence import dispatch
from intelligence.api.serializers import InsightSerializer
from intelligence.models import Insight
from reliability import audit
from reliability.api.viewsets import CapabilityViewSetMixin


class AnalysisRerunThrottle(SimpleRateThrottle):
    """Re-runs per user and per team of the incident: analyses cost data-source queries."""

    scope = "analysis_rerun"

    def __init__(self, incident: Incident) -> None:
        super().__init__()
        self.incident = incident

    def get_cache_key(self, request, view) -> str:
        ident = f"{request.user.pk}:{self.incident.team_id or 0}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IncidentInsightViewSet(CapabilityViewSetMixin, viewsets.GenericViewSet):
    """``GET``: the incident's analysis runs, newest first (status, progress, evidence).
    ``POST``: analyse it again now (responders; rate limited per user and team)."""

    serializer_class = InsightSerializer
    capabilities = {"list": "view", "create": "respond"}
    queryset = Insight.objects.none()

    def incident(self) -> Incident:
        incident = get_object_or_404(
            incidents_for(self.request.user), pk=self.kwargs["incident_id"]
        )
        self.check_object_permissions(self.request, incident)
        return incident

    def has_capability(self, user, capability, obj) -> bool:
        return capability == "view" or can(user, capability, obj)

    def get_queryset(self):
        return Insight.objects.filter(incident=self.incident()).select_related("requested_by")

    def list(self, request, incident_id=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses={202: InsightSerializer})
    def create(self, request, incident_id=None):
        incident = self.incident()
        throttle = AnalysisRerunThrottle(incident)
        if not throttle.allow_request(request, self):
            raise Throttled(wait=throttle.wait())
        with transaction.atomic():
            requested = dispatch.request_and_dispatch(incident.pk, "manual", user=request.user)
            if requested is None:
                return Response(
                    {"detail": "This incident was merged; analyse its target.", "code": "merged"},
                    status=status.HTTP_409_CONFLICT,
                )
            audit.record(
                "incident.analysis_requested",
                incident,
                actor=request.user,
                changes={"insight": requested.insight.pk},
            )
        requested.insight.refresh_from_db()
        return Response(
            self.get_serializer(requested.insight).data, status=status.HTTP_202_ACCEPTED
        )
