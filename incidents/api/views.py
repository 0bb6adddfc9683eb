"""Thin API views: restrict, validate, call the domain, serialize."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from incidents import actions, correlating
from incidents.api.filters import AlertFilter, IncidentFilter
from incidents.api.serializers import (
    AlertDetailSerializer,
    AlertIdsSerializer,
    AlertSerializer,
    CommanderSerializer,
    CorrelationRuleSerializer,
    DependencySerializer,
    IncidentDetailSerializer,
    IncidentSerializer,
    IntegrationSerializer,
    MergeSerializer,
    NoteSerializer,
    ServiceSerializer,
    SLOSerializer,
    TimelineEventSerializer,
    TransitionSerializer,
)
from incidents.lifecycle import IllegalTransition
from incidents.models import (
    SLO,
    Alert,
    CorrelationRule,
    Dependency,
    Incident,
    Integration,
    Service,
    TimelineEvent,
    new_secret,
)
from incidents.visibility import alerts_for, can, incidents_for
from reliability import audit
from reliability.api.exceptions import Conflict
from reliability.api.viewsets import (
    AuditedModelViewSet,
    CapabilityViewSetMixin,
    OwnedModelViewSet,
    snapshot,
)
from reliability.models import Team
from reliability.permissions import has_capability, objects_for

READ = {"list": "view", "retrieve": "view"}
WRITE = {"create": "change", "update": "change", "partial_update": "change", "destroy": "delete"}


class ServiceViewSet(OwnedModelViewSet):
    serializer_class = ServiceSerializer
    capabilities = {**READ, **WRITE}
    filterset_fields = ["tier", "team__slug"]
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["slug", "tier", "created_at"]
    lookup_field = "slug"

    def get_queryset(self):
        return (
            objects_for(self.request.user, "view", Service)
            .select_related("team")
            .prefetch_related("owners", "depends_on", "dependents")
        )


class DependencyViewSet(OwnedModelViewSet):
    serializer_class = DependencySerializer
    capabilities = {**READ, "create": "change", "destroy": "change"}
    http_method_names = ["get", "post", "delete", "head", "options"]
    filterset_fields = ["service__slug", "depends_on__slug"]
    owner_field = "service"
    owner_decides = True

    def get_queryset(self):
        visible = objects_for(self.request.user, "view", Service)
        return Dependency.objects.filter(service__in=visible).select_related(
            "service", "depends_on"
        )


class SLOViewSet(OwnedModelViewSet):
    serializer_class = SLOSerializer
    capabilities = {
        **READ,
        "create": "change",
        "update": "change",
        "partial_update": "change",
        "destroy": "change",
    }
    filterset_fields = ["service__slug"]
    search_fields = ["name"]
    owner_field = "service"
    owner_decides = True

    def get_queryset(self):
        visible = objects_for(self.request.user, "view", Service)
        return SLO.objects.filter(service__in=visible).select_related("service")


class IntegrationViewSet(OwnedModelViewSet):
    serializer_class = IntegrationSerializer
    capabilities = {**READ, **WRITE, "rotate_secret": "change"}
    filterset_fields = ["kind", "enabled", "team__slug"]
    search_fields = ["name"]

    def get_queryset(self):
        return objects_for(self.request.user, "view", Integration).select_related("team")

    @extend_schema(request=None, responses=IntegrationSerializer)
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request, pk=None):
        """Issue a new webhook secret; the old one stops working at once."""
        integration = self.get_object()
        with transaction.atomic():
            old, integration.secret = integration.secret, new_secret()
            integration.save(update_fields=["secret"])
            # the audit row says that it changed; redaction keeps both values out of it
            audit.record(
                "integration.secret_rotated",
                integration,
                actor=request.user,
                changes={"secret": [old, integration.secret]},
            )
        return Response(self.get_serializer(integration).data)


class IncidentViewSet(
    CapabilityViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Incidents you can see; state changes are actions (acknowledge, mitigate, ...)."""

    capabilities = {
        **READ,
        "update": "respond",
        "partial_update": "respond",
        "timeline": "view",
        "acknowledge": "respond",
        "mitigate": "respond",
        "resolve": "respond",
        "reopen": "respond",
        "assign_commander": "respond",
        "add_note": "respond",
        "merge": "respond",
        "split": "respond",
        "move_alerts": "respond",
    }
    filterset_class = IncidentFilter
    search_fields = ["title", "summary", "=number", "alerts__name"]
    ordering_fields = ["created_at", "updated_at", "number", "severity", "status", "alert_count"]
    ordering = ["-created_at"]

    def get_queryset(self):
        queryset = incidents_for(self.request.user).select_related(
            "team", "commander", "origin_service"
        )
        queryset = queryset.prefetch_related("services")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(
                Prefetch("alerts", queryset=Alert.objects.select_related("service", "incident")),
                Prefetch("timeline", queryset=TimelineEvent.objects.select_related("actor")),
            )
        return queryset

    def get_serializer_class(self):
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentSerializer

    def has_capability(self, user, capability, obj):
        return capability == "view" or can(user, capability, obj)

    def perform_update(self, serializer):
        with transaction.atomic():
            before = snapshot(serializer.instance)
            incident = serializer.save()
            audit.record(
                "incident.updated",
                incident,
                actor=self.request.user,
                changes=audit.diff(before, snapshot(incident)),
            )

    def _transition(self, request, name: str):
        incident = self.get_object()
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            incident = actions.transition(
                incident, name, request.user, body.validated_data.get("note", "")
            )
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from exc
        return Response(IncidentSerializer(incident, context={"request": request}).data)

    @extend_schema(request=TransitionSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._transition(request, "acknowledge")

    @extend_schema(request=TransitionSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def mitigate(self, request, pk=None):
        return self._transition(request, "mitigate")

    @extend_schema(request=TransitionSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._transition(request, "resolve")

    @extend_schema(request=TransitionSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._transition(request, "reopen")

    @extend_schema(request=CommanderSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"], url_path="assign-commander")
    def assign_commander(self, request, pk=None):
        incident = self.get_object()
        body = CommanderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["commander"]
        commander = get_user_model().objects.filter(username=name, is_active=True).first()
        if commander is None or not can(commander, "respond", incident):
            # unknown, inactive, of another team or not a responder: one answer, so the
            # endpoint tells nobody which usernames exist elsewhere
            message = f"No user {name!r} can respond to this incident."
            raise ValidationError({"commander": [message]})
        incident = actions.assign_commander(incident, commander, request.user)
        return Response(IncidentSerializer(incident, context={"request": request}).data)

    @extend_schema(request=NoteSerializer, responses={201: TimelineEventSerializer})
    @action(detail=True, methods=["post"], url_path="notes")
    def add_note(self, request, pk=None):
        incident = self.get_object()
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = actions.add_note(incident, body.validated_data["text"], request.user)
        return Response(TimelineEventSerializer(event).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=TimelineEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        incident = self.get_object()
        page = self.paginate_queryset(incident.timeline.select_related("actor"))
        return self.get_paginated_response(TimelineEventSerializer(page, many=True).data)

    @extend_schema(request=MergeSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge other incidents into this one (their alerts move here)."""
        target = self.get_object()
        body = MergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = set(body.validated_data["incidents"]) - {target.pk}
        allowed = incidents_for(request.user, "respond").filter(pk__in=wanted)
        sources = list(Incident.objects.filter(pk__in=allowed.values("pk")))
        if len(sources) != len(wanted):
            missing = sorted(wanted - {s.pk for s in sources})
            raise PermissionDenied(f"You cannot act on incidents {missing} (or they do not exist).")
        if any(s.merged_into_id for s in sources):
            raise Conflict("An incident that was already merged cannot be merged again.")
        with transaction.atomic():
            correlating.record_merge(target, sources, request.user)
            target = actions.merge(target, sources, request.user)
        return Response(IncidentSerializer(target, context={"request": request}).data)

    def _alerts_from(self, request, *, inside: Incident | None = None) -> list[Alert]:
        """The alerts named in the body, all visible and in incidents the user may act on."""
        body = AlertIdsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = set(body.validated_data["alerts"])
        found = list(
            alerts_for(request.user).filter(pk__in=wanted).select_related("service", "incident")
        )
        if len(found) != len(wanted):
            missing = sorted(wanted - {a.pk for a in found})
            raise PermissionDenied(f"You cannot see alerts {missing} (or they do not exist).")
        for alert in found:
            if inside is not None and alert.incident_id != inside.pk:
                raise Conflict(f"Alert {alert.pk} is not in {inside.reference}.")
            if alert.incident is None or not can(request.user, "respond", alert.incident):
                raise PermissionDenied(f"You cannot move alert {alert.pk} out of its incident.")
        return found

    @extend_schema(request=AlertIdsSerializer, responses={201: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def split(self, request, pk=None):
        """Take some alerts out of this incident into a new one; kept as feedback."""
        incident = self.get_object()
        alerts = self._alerts_from(request, inside=incident)
        if len(alerts) == incident.alerts.count():
            raise Conflict("Splitting every alert out would leave an empty incident.")
        new = correlating.split(incident, alerts, request.user)
        return Response(
            IncidentSerializer(new, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=AlertIdsSerializer, responses=IncidentSerializer)
    @action(detail=True, methods=["post"], url_path="move-alerts")
    def move_alerts(self, request, pk=None):
        """Move alerts from other incidents into this one; kept as feedback."""
        target = self.get_object()
        if target.merged_into_id:
            raise Conflict("This incident was merged; move the alerts to its target.")
        alerts = [a for a in self._alerts_from(request) if a.incident_id != target.pk]
        with transaction.atomic():
            if alerts:
                correlating.move_alerts(alerts, target, request.user, kind="move")
            audit.record(
                "incident.alerts_moved",
                target,
                actor=request.user,
                changes={"alerts": [a.pk for a in alerts]},
            )
        target.refresh_from_db()
        return Response(IncidentSerializer(target, context={"request": request}).data)


class AlertViewSet(CapabilityViewSetMixin, viewsets.ReadOnlyModelViewSet):
    capabilities = READ
    filterset_class = AlertFilter
    search_fields = ["name", "fingerprint"]
    ordering_fields = ["last_received_at", "starts_at", "name", "status"]
    ordering = ["-last_received_at"]

    def get_queryset(self):
        return alerts_for(self.request.user).select_related("service", "incident", "integration")

    def get_serializer_class(self):
        return AlertDetailSerializer if self.action == "retrieve" else AlertSerializer

    def has_capability(self, user, capability, obj):
        return True  # visibility is the restricted queryset; alerts are read-only


class CorrelationRuleViewSet(AuditedModelViewSet):
    """Correlation rules curated through the API (the admin and correlation-rules.yml hold
    the same fields). A team's rule applies to that team's alerts only: its viewers read it,
    its admins write it. Rules without a team apply to every team: everyone signed in reads
    them, only superusers write them. Other teams' rules are invisible (404)."""

    serializer_class = CorrelationRuleSerializer
    capabilities = {**READ, **WRITE}
    queryset = CorrelationRule.objects.none()  # for the schema; get_queryset restricts
    search_fields = ["name", "description"]
    filterset_fields = ["team__slug", "enabled"]

    def get_queryset(self):
        user = self.request.user
        rules = CorrelationRule.objects.select_related("team")
        if user.is_superuser:
            return rules.all()
        teams = objects_for(user, "view", Team).values("pk")
        return rules.filter(Q(team__isnull=True) | Q(team__in=teams))

    def has_capability(self, user, capability, obj):
        if capability == "view":
            return True  # the queryset is the restriction
        return _may_write_rule_for(user, obj.team)

    def check_create(self, serializer) -> None:
        self._check_owner(serializer.validated_data.get("team"))

    def check_update(self, serializer) -> None:
        if "team" in serializer.validated_data:
            self._check_owner(serializer.validated_data["team"])

    def _check_owner(self, team) -> None:
        if not _may_write_rule_for(self.request.user, team):
            if team is None:
                raise PermissionDenied("Only superusers write rules for every team; set a team.")
            raise PermissionDenied("You need the change permission on the team.")


def _may_write_rule_for(user, team) -> bool:
    """Global rules act on every team's alerts: superusers only. A team's: its admins."""
    if team is None:
        return bool(user.is_superuser)
    return has_capability(user, "change", team)
