from rest_framework import serializers

from intelligence.models import Insight


class InsightSerializer(serializers.ModelSerializer):
    """One analysis run: its status and progress, then its ranked evidence."""

    incident = serializers.PrimaryKeyRelatedField(read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    findings = serializers.SerializerMethodField()

    class Meta:
        model = Insight
        fields = [
            "id",
            "incident",
            "status",
            "reason",
            "requested_by",
            "progress",
            "steps",
            "gaps",
            "summary",
            "confidence_score",
            "findings",
            "evidence",
            "hypotheses",
            "context",
            "calls",
            "call_seconds",
            "superseded_by",
            "created_at",
            "started_at",
            "first_finding_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_findings(self, obj: Insight) -> int:
        return len(obj.findings)
