import json

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from reliability import audit
from reliability.models import AuditLog, Team, TeamMembership
from reliability.redaction import redact


class AuditedAdminMixin:
    """Every change made in the admin is written to the audit log."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = form.changed_data if change else sorted(form.cleaned_data)
        audit.record(
            f"{obj._meta.model_name}.{'updated' if change else 'created'}",
            obj,
            actor=request.user,
            changes={"fields": changed},
        )

    def delete_model(self, request, obj):
        audit.record(f"{obj._meta.model_name}.deleted", obj, actor=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit.record(f"{obj._meta.model_name}.deleted", obj, actor=request.user)
        super().delete_queryset(request, queryset)


class MembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, GuardedModelAdmin):
    list_display = ["name", "slug", "member_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, obj) -> int:
        return obj.memberships.count()


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the audit log cannot be added to, changed or deleted from the admin."""

    list_display = [
        "timestamp",
        "actor_repr",
        "action",
        "object_type",
        "object_repr",
        "via",
        "source_ip",
    ]
    list_filter = ["action", "object_type", "via"]
    search_fields = ["actor_repr", "object_repr", "object_id", "request_id"]
    date_hierarchy = "timestamp"
    exclude = ["changes"]  # shown redacted below (rows written before redaction existed)
    readonly_fields = [f.name for f in AuditLog._meta.fields if f.name != "changes"] + [
        "redacted_changes"
    ]

    @admin.display(description="changes")
    def redacted_changes(self, obj) -> str:
        return json.dumps(redact(obj.changes), indent=2, sort_keys=True, default=str)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
