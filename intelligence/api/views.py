"""The incident's analyses: read them, or ask for a fresh one."""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from incidents.models import Incident, TimelineEvent
from incidents.timeline import add_events
from incidents.visibility import can, incidents_for
from intelligence import dispatch
from intelligence.api.serializers import InsightSerializer
from intelligence.models import HypothesisVerdict, Insight
from intelligence.rca import service as rca_service
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


class TriggerThrottle(SimpleRateThrottle):
    """A user-fired trigger's rate, counted per user (``per='user'``) or per team of the
    incident (``per='team'``): the scope is ``<name>_<per>`` in DEFAULT_THROTTLE_RATES."""

    def __init__(self, name: str, per: str, incident: Incident) -> None:
        self.scope = f"{name}_{per}"
        self.per, self.incident = per, incident
        super().__init__()

    def get_cache_key(self, request, view) -> str:
        ident = request.user.pk if self.per == "user" else self.incident.team_id or 0
        return self.cache_format % {"scope": self.scope, "ident": ident}


def throttle_trigger(name: str, request, view, incident: Incident) -> None:
    """Refuse (429 with Retry-After, audited) a trigger over its per-user or per-team rate."""
    for per in ("user", "team"):
        throttle = TriggerThrottle(name, per, incident)
        if not throttle.allow_request(request, view):
            wait = throttle.wait()
            audit.record(
                f"incident.{name}_throttled",
                incident,
                actor=request.user,
                changes={"per": per, "retry_after_s": round(wait or 0, 1)},
            )
            raise Throttled(wait=wait)


class VerdictSerializer(serializers.Serializer):
    service = serializers.SlugField(max_length=100)
    kind = serializers.CharField(max_length=40)
    verdict = serializers.ChoiceField(choices=HypothesisVerdict.Verdict.choices)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class IncidentRcaView(CapabilityViewSetMixin, viewsets.GenericViewSet):
    """``GET``: the root-cause analysis of the incident's latest finished analysis: ranked
    ``suspects`` (service slug, kind, confidence, rank), the hypotheses with their evidence,
    the timeline, what was not checked, next steps and the verdicts given (docs/rca.md).
    ``POST verdicts/``: a responder confirms or rejects a hypothesis (audited, kept)."""

    capabilities = {"retrieve": "view", "verdict": "respond", "summarise": "respond"}
    queryset = Insight.objects.none()
    serializer_class = VerdictSerializer

    def has_capability(self, user, capability, obj) -> bool:
        return capability == "view" or can(user, capability, obj)

    def incident(self) -> Incident:
        incident = get_object_or_404(
            incidents_for(self.request.user), pk=self.kwargs["incident_id"]
        )
        self.check_object_permissions(self.request, incident)
        return incident

    @staticmethod
    def latest(incident: Incident) -> Insight | None:
        return (
            Insight.objects.filter(
                incident=incident, status__in=[Insight.Status.COMPLETE, Insight.Status.PARTIAL]
            )
            .exclude(hypotheses=[])
            .first()
        )

    @staticmethod
    def not_analysed() -> Response:
        return Response(
            {"detail": "No root-cause analysis yet.", "code": "not_analysed"},
            status=status.HTTP_404_NOT_FOUND,
        )

    @extend_schema(responses={200: dict})
    def retrieve(self, request, incident_id=None):
        incident = self.incident()
        insight = self.latest(incident)
        if insight is None:
            return self.not_analysed()
        rca = dict((insight.evidence or {}).get("rca") or {})
        verdicts = [
            {
                "service": v.service,
                "kind": v.kind,
                "verdict": v.verdict,
                "note": v.note,
                "by": v.decided_by.get_username() if v.decided_by else None,
                "at": v.decided_at,
                "insight": v.insight_id,
            }
            for v in incident.rca_verdicts.select_related("decided_by")
        ]
        return Response(
            {
                "incident": incident.pk,
                "insight": insight.pk,
                "status": insight.status,
                "finished_at": insight.finished_at,
                "summary": insight.summary,
                "confidence": insight.confidence_score,
                "partial": rca.get("partial", insight.status == Insight.Status.PARTIAL),
                "suspects": rca.get("suspects", []),
                "hypotheses": insight.hypotheses,
                "timeline": rca.get("timeline", []),
                "not_checked": rca.get("not_checked", []),
                "next_steps": rca.get("next_steps", []),
                "verdicts": verdicts,
            }
        )

    @extend_schema(request=VerdictSerializer, responses={201: dict})
    def verdict(self, request, incident_id=None):
        incident = self.incident()
        serializer = VerdictSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        insight = self.latest(incident)
        if insight is None:
            return self.not_analysed()
        hypothesis = next(
            (
                h
                for h in insight.hypotheses
                if h.get("service") == data["service"] and h.get("kind") == data["kind"]
            ),
            None,
        )
        if hypothesis is None:
            raise ValidationError(
                {
                    "service": [
                        f"{data['service']} / {data['kind']} is not a hypothesis of "
                        f"analysis {insight.pk}."
                    ]
                }
            )
        with transaction.atomic():
            verdict = HypothesisVerdict.objects.create(
                insight=insight,
                incident=incident,
                service=data["service"],
                kind=data["kind"],
                verdict=data["verdict"],
                note=data.get("note", ""),
                rank=hypothesis.get("rank"),
                confidence=hypothesis.get("confidence"),
                decided_by=request.user,
            )
            audit.record(
                "incident.rca_verdict",
                incident,
                actor=request.user,
                changes={
                    "insight": insight.pk,
                    "service": verdict.service,
                    "kind": verdict.kind,
                    "verdict": verdict.verdict,
                    "note": verdict.note,
                },
            )
            add_events(
                [
                    TimelineEvent(
                        incident=incident,
                        kind=TimelineEvent.Kind.ANALYSIS,
                        actor=request.user,
                        message=f"root cause {verdict.service} / "
                        f"{verdict.kind.replace('_', ' ')} {verdict.verdict}",
                        data={
                            "insight": insight.pk,
                            "service": verdict.service,
                            "kind": verdict.kind,
                            "verdict": verdict.verdict,
                        },
                    )
                ]
            )
        return Response(
            {
                "id": verdict.pk,
                "service": verdict.service,
                "kind": verdict.kind,
                "verdict": verdict.verdict,
                "rank": verdict.rank,
                "confidence": verdict.confidence,
                "insight": insight.pk,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={200: dict})
    def summarise(self, request, incident_id=None):
        """Have the configured LLM rewrite the latest analysis' summary (rate limited per user
        and per team, audited); 409 ``llm_disabled`` when no LLM is configured."""
        incident = self.incident()
        insight = self.latest(incident)
        if insight is None:
            return self.not_analysed()
        if not rca_service.llm_settings().enabled:
            return Response(
                {"detail": "No LLM is configured (RELIABILITY_LLM_URL).", "code": "llm_disabled"},
                status=status.HTTP_409_CONFLICT,
            )
        throttle_trigger("rca_summary", request, self, incident)
        doc = rca_service.stored_document(insight.hypotheses, insight.evidence or {})
        doc = rca_service.with_llm_summary(doc, incident)
        hypotheses, rest = rca_service.stored_rca(doc)
        with transaction.atomic():
            Insight.objects.filter(pk=insight.pk).update(
                hypotheses=hypotheses,
                evidence={**(insight.evidence or {}), "rca": rest},
                summary=rest["summary"],
                confidence_score=rest["confidence"],
            )
            audit.record(
                "incident.rca_summary_requested",
                incident,
                actor=request.user,
                changes={"insight": insight.pk, "llm": rest.get("llm", {})},
            )
        return Response(
            {"insight": insight.pk, "summary": rest["summary"], "llm": rest.get("llm", {})}
        )
