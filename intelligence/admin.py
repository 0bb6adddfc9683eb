from django.contrib import admin

from intelligence.models import Insight


@admin.register(Insight)
class InsightAdmin(admin.ModelAdmin):
    list_display = ["incident", "status", "confidence_score", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["incident__title", "summary"]
    readonly_fields = ["created_at", "finished_at"]
