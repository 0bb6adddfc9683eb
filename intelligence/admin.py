"""Analyses in the admin: read-only (they are written by the analysis, never by hand), with
the evidence laid out as a ranked table whose every row shows the query behind it."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from incidents.models import Service
from incidents.visibility import incidents_for
from intelligence.models import HypothesisVerdict, Insight, SLOStatus
from reliability.permissions import objects_for


@admin.register(Insight)
class InsightAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "incident",
        "status",
        "reason",
        "progress",
        "finding_count",
        "confidence_score",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "reason"]
    search_fields = ["incident__title", "summary"]
    list_select_related = ["incident"]
    fields = [
        "incident",
        "status",
        "reason",
        "requested_by",
        "progress",
        "summary",
        "confidence_score",
        "rca_view",
        "evidence_table",
        "impact_view",
        "steps_table",
        "gaps",
        "context",
        "calls",
        "call_seconds",
        "superseded_by",
        "created_at",
        "started_at",
        "first_finding_at",
        "finished_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(incident__in=incidents_for(request.user).values("pk"))

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        """Staff read the analyses of the incidents they may see (the queryset restricts)."""
        if not self.has_module_permission(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="findings")
    def finding_count(self, obj: Insight) -> int:
        return len(obj.findings)

    @admin.display(description="root-cause hypotheses")
    def rca_view(self, obj: Insight) -> str:
        """Ranked hypotheses with confidence and the pointers behind them (intelligence/rca)."""
        if not obj.hypotheses:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0%}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    h.get("rank"),
                    h.get("service"),
                    h.get("kind"),
                    float(h.get("confidence") or 0),
                    format_html_join(
                        "",
                        "<div>{} <code>{}</code></div>",
                        (
                            (
                                e.get("reason"),
                                (e.get("finding") or {}).get("pointer", {}).get("query"),
                            )
                            for e in h.get("supporting", [])[:4]
                        ),
                    ),
                    "; ".join(e.get("reason", "") for e in h.get("contradicting", [])[:3]),
                )
                for h in obj.hypotheses
            ),
        )
        rca = (obj.evidence or {}).get("rca") or {}
        steps = format_html_join("", "<li>{}</li>", ((s,) for s in rca.get("next_steps", [])))
        return format_html(
            "<table><thead><tr><th>rank</th><th>service</th><th>kind</th><th>confidence</th>"
            "<th>supporting (query)</th><th>against</th></tr></thead><tbody>{}</tbody></table>"
            "<p>next steps:</p><ul>{}</ul>",
            rows,
            steps,
        )

    @admin.display(description="evidence (ranked)")
    def evidence_table(self, obj: Insight) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td><code>{}</code><br><small>{} → {}</small></td></tr>",
            (
                (
                    rank,
                    f.get("kind", ""),
                    f.get("service", ""),
                    f"{float(f.get('score') or 0):.2f}",
                    f.get("title", ""),
                    f.get("onset") or "",
                    (f.get("pointer") or {}).get("query", ""),
                    (f.get("pointer") or {}).get("source", ""),
                    (f.get("pointer") or {}).get("start") or "",
                )
                for rank, f in enumerate(obj.findings, 1)
            ),
        )
        if not obj.findings:
            return "no findings"
        return format_html(
            "<table><thead><tr><th>#</th><th>kind</th><th>service</th><th>score</th>"
            "<th>finding</th><th>onset</th><th>query (source, from)</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="impact")
    def impact_view(self, obj: Insight) -> str:
        impact = (obj.evidence or {}).get("impact") or {}
        if not impact:
            return "-"
        affected = ", ".join(a["service"] for a in impact.get("affected_services", []))
        doors = ", ".join(e["service"] for e in impact.get("entry_points", []))
        slos = format_html_join(
            "",
            "<li>{} {}: burn {} ({} failed requests)</li>",
            (
                (s["service"], s["name"], s.get("burn_rate", "?"), s.get("failed_requests", "?"))
                for s in impact.get("slos", [])
            ),
        )
        return format_html(
            "affected: {}<br>entry points: {}<br>failed requests so far: {}<ul>{}</ul>",
            affected or "-",
            doors or "-",
            impact.get("failed_requests") if impact.get("failed_requests") is not None else "?",
            slos,
        )

    @admin.display(description="steps")
    def steps_table(self, obj: Insight) -> str:
        if not obj.steps:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    s.get("name"),
                    s.get("source"),
                    s.get("status"),
                    s.get("seconds"),
                    s.get("findings"),
                    "; ".join(s.get("gaps") or []),
                )
                for s in obj.steps
            ),
        )
        return format_html(
            "<table><thead><tr><th>step</th><th>source</th><th>status</th><th>seconds</th>"
            "<th>findings</th><th>gaps</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(HypothesisVerdict)
class HypothesisVerdictAdmin(admin.ModelAdmin):
    """Responders' verdicts on hypotheses: read-only, kept for evaluating RCA."""

    list_display = [
        "incident",
        "service",
        "kind",
        "verdict",
        "rank",
        "confidence",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["verdict", "kind"]
    search_fields = ["service", "incident__title", "note"]
    readonly_fields = [f.name for f in HypothesisVerdict._meta.fields]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("incident", "decided_by")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(incident__in=incidents_for(request.user).values("pk"))


@admin.register(SLOStatus)
class SLOStatusAdmin(admin.ModelAdmin):
    """Written by the beat job only: read-only here, visible as the SLO's service."""

    list_display = ["slo", "severity", "sli", "budget_remaining", "evaluated_at", "error_at"]
    list_filter = ["severity", "slo__service__team"]
    search_fields = ["slo__name", "slo__service__slug"]
    list_select_related = ["slo__service"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(slo__service__in=objects_for(request.user, "view", Service))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
