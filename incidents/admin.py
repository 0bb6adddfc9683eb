from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import transaction
from guardian.admin import GuardedModelAdmin

from incidents import actions, correlating
from incidents.lifecycle import IllegalTransition
from incidents.models import (
    SLO,
    Alert,
    CooccurrenceSnapshot,
    CorrelationFeedback,
    CorrelationRule,
    Dependency,
    Incident,
    Integration,
    Service,
    TimelineEvent,
)
from reliability import audit
from reliability.admin import AuditedAdminMixin


class DependencyInline(admin.TabularInline):
    model = Dependency
    fk_name = "service"
    extra = 1
    autocomplete_fields = ["depends_on"]


class SLOInline(admin.TabularInline):
    model = SLO
    extra = 0


@admin.register(Service)
class ServiceAdmin(AuditedAdminMixin, GuardedModelAdmin):
    list_display = ["slug", "name", "team", "tier", "dependency_list"]
    list_filter = ["tier", "team"]
    search_fields = ["slug", "name", "description"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["owners"]
    inlines = [DependencyInline, SLOInline]

    @admin.display(description="depends on")
    def dependency_list(self, obj) -> str:
        return ", ".join(s.slug for s in obj.depends_on.all())

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("team").prefetch_related("depends_on")


@admin.register(SLO)
class SLOAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "service", "objective", "window_days"]
    list_filter = ["service__team", "window_days"]
    search_fields = ["name", "service__slug"]


@admin.register(Integration)
class IntegrationAdmin(AuditedAdminMixin, GuardedModelAdmin):
    list_display = ["name", "kind", "team", "enabled", "webhook_path", "group_window_minutes"]
    list_filter = ["kind", "enabled", "team"]
    search_fields = ["name"]
    readonly_fields = ["token", "webhook_path", "created_at"]

    @admin.display(description="webhook URL path")
    def webhook_path(self, obj) -> str:
        return f"/api/v1/ingest/{obj.token}/"


class TimelineInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "kind", "actor", "message", "data"]

    def has_add_permission(self, request, obj=None):
        return False


class AlertInline(admin.TabularInline):
    model = Alert
    extra = 0
    can_delete = False
    fields = ["name", "status", "service", "fingerprint", "starts_at", "last_received_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


def _transition_action(name: str):
    def run(modeladmin, request, queryset):
        done = 0
        for incident in queryset:
            try:
                with transaction.atomic():
                    actions.transition(incident, name, request.user, note="from the admin")
                done += 1
            except IllegalTransition as exc:
                modeladmin.message_user(request, f"{incident.reference}: {exc}", messages.WARNING)
        modeladmin.message_user(request, f"{name}: {done} incident(s)")

    run.short_description = f"{name.capitalize()} selected incidents"
    run.__name__ = f"{name}_incidents"
    return run


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = [
        "reference",
        "title",
        "status",
        "severity",
        "team",
        "alert_count",
        "firing_count",
        "commander",
        "origin_service",
        "created_at",
    ]
    list_filter = ["status", "severity", "team", "services"]
    list_select_related = ["team", "commander", "origin_service"]
    search_fields = ["title", "number", "alerts__name"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "number",
        "status",
        "group_key",
        "created_at",
        "updated_at",
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "last_alert_at",
        "alert_count",
        "firing_count",
        "merged_into",
        "origin_service",
    ]
    fields = ["title", "severity", "summary", "commander", "services", *readonly_fields]
    filter_horizontal = ["services"]
    inlines = [AlertInline, TimelineInline]
    actions = [
        *(_transition_action(a) for a in ("acknowledge", "mitigate", "resolve", "reopen")),
        "merge_into_oldest",
    ]

    @admin.action(description="Merge selected incidents into the oldest one")
    def merge_into_oldest(self, request, queryset):
        chosen = list(queryset.filter(merged_into__isnull=True).order_by("created_at"))
        if len(chosen) < 2:
            self.message_user(request, "Select at least two unmerged incidents.", messages.WARNING)
            return
        target, sources = chosen[0], chosen[1:]
        with transaction.atomic():
            correlating.record_merge(target, sources, request.user)
            actions.merge(target, sources, request.user)
        self.message_user(request, f"merged {len(sources)} incident(s) into {target.reference}")

    @admin.display(description="incident", ordering="number")
    def reference(self, obj) -> str:
        return obj.reference

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit.record(
            "incident.updated", obj, actor=request.user, changes={"fields": form.changed_data}
        )


class MoveAlertsForm(ActionForm):
    incident = forms.IntegerField(
        required=False, label="incident number", help_text="for “move to incident”"
    )


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    action_form = MoveAlertsForm
    actions = ["split_out", "move_to_incident"]

    @admin.action(description="Split selected alerts into a new incident")
    def split_out(self, request, queryset):
        alerts = list(queryset.filter(incident__isnull=False).select_related("service"))
        by_incident: dict[int, list[Alert]] = {}
        for alert in alerts:
            by_incident.setdefault(alert.incident_id, []).append(alert)
        for incident_id, moved in by_incident.items():
            new = correlating.split(Incident.objects.get(pk=incident_id), moved, request.user)
            self.message_user(request, f"{len(moved)} alert(s) split into {new.reference}")

    @admin.action(description="Move selected alerts to incident (number below)")
    def move_to_incident(self, request, queryset):
        number = request.POST.get("incident")
        target = Incident.objects.filter(number=number or 0, merged_into__isnull=True).first()
        if target is None:
            self.message_user(request, "Give the number of an unmerged incident.", messages.ERROR)
            return
        alerts = list(
            queryset.filter(incident__isnull=False)
            .exclude(incident=target)
            .select_related("service")
        )
        with transaction.atomic():
            correlating.move_alerts(alerts, target, request.user, kind="move")
        self.message_user(request, f"moved {len(alerts)} alert(s) to {target.reference}")

    list_display = [
        "name",
        "status",
        "service",
        "incident",
        "integration",
        "starts_at",
        "last_received_at",
    ]
    list_filter = ["status", "integration", "service"]
    search_fields = ["name", "fingerprint"]
    date_hierarchy = "starts_at"
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CorrelationRule)
class CorrelationRuleAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "enabled",
        "position",
        "matchers",
        "group_by",
        "window_seconds",
        "min_alerts",
        "reuse_resolved",
    ]
    list_editable = ["enabled", "position"]
    list_filter = ["team", "enabled"]
    search_fields = ["name", "description"]


@admin.register(CorrelationFeedback)
class CorrelationFeedbackAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "incident", "source", "together", "actor"]
    list_filter = ["kind", "together"]
    readonly_fields = [f.name for f in CorrelationFeedback._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CooccurrenceSnapshot)
class CooccurrenceSnapshotAdmin(admin.ModelAdmin):
    list_display = ["trained_at", "incidents", "feedback"]
    readonly_fields = ["trained_at", "incidents", "feedback", "model"]

    def has_add_permission(self, request):
        return False
