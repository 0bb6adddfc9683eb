from django.contrib import admin

from intelligence.models import Insight, SLOStatus


@admin.register(Insight)
class InsightAdmin(admin.ModelAdmin):
    list_display = ["incident", "status", "confidence_score", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["incident__title", "summary"]
    readonly_fields = ["created_at", "finished_at"]


@admin.register(SLOStatus)
class SLOStatusAdmin(admin.ModelAdmin):
    """Written by the beat job only: read-only here."""

    list_display = ["slo", "severity", "sli", "budget_remaining", "evaluated_at", "error_at"]
    list_filter = ["severity", "slo__service__team"]
    search_fields = ["slo__name", "slo__service__slug"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
