from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from reliability.admin import AuditedAdminMixin
from remediation.models import RemediationAction, Runbook


@admin.register(Runbook)
class RunbookAdmin(AuditedAdminMixin, GuardedModelAdmin):
    list_display = ["name", "team", "automatic", "min_confidence", "enabled", "updated_at"]
    list_filter = ["team", "automatic", "enabled"]
    search_fields = ["name", "description"]


@admin.register(RemediationAction)
class RemediationActionAdmin(admin.ModelAdmin):
    list_display = ["name", "incident", "action_type", "status", "requested_by", "created_at"]
    list_filter = ["action_type", "status"]
    search_fields = ["name", "incident__title"]
    readonly_fields = ["created_at", "finished_at"]
