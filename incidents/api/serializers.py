from django.urls import reverse
from rest_framework import serializers

from incidents.models import (
    SLO,
    Alert,
    CorrelationRule,
    Dependency,
    Incident,
    Integration,
    Service,
    TimelineEvent,
)
from reliability.api.serializers import (
    TeamRefField,
    UserRefField,
    VisibleSlugRelatedField,
    requesting_user,
)
from reliability.permissions import has_capability, objects_for


class ServiceRefField(VisibleSlugRelatedField):
    """A service by slug, among the services the user may see."""

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "slug")
        kwargs.setdefault("queryset", Service.objects.all())
        super().__init__(**kwargs)

    def visible(self, user, queryset):
        return queryset.filter(pk__in=objects_for(user, "view", Service).values("pk"))


def _visible_service_slugs(serializer: serializers.Serializer) -> set[str] | None:
    """Slugs of the services the requesting user may see (None: all), once per request."""
    user = requesting_user(serializer)
    if user is None or getattr(user, "is_superuser", False):
        return None
    cache = serializer.context.setdefault("_visible_service_slugs", {})
    if "slugs" not in cache:
        cache["slugs"] = set(objects_for(user, "view", Service).values_list("slug", flat=True))
    return cache["slugs"]


def _string_dict(value):
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise serializers.ValidationError("Expected an object of string labels.")
    return value


class ServiceSerializer(serializers.ModelSerializer):
    team = TeamRefField()
    owners = UserRefField(many=True, required=False)
    depends_on = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    dependents = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    alert_labels = serializers.JSONField(required=False, validators=[_string_dict])

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "slug",
            "team",
            "owners",
            "tier",
            "description",
            "alert_labels",
            "depends_on",
            "dependents",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        visible = _visible_service_slugs(self)
        if visible is not None:  # the other end of an edge may be another team's service
            data["depends_on"] = [s for s in data["depends_on"] if s in visible]
            data["dependents"] = [s for s in data["dependents"] if s in visible]
        return data


class DependencySerializer(serializers.ModelSerializer):
    service = ServiceRefField()
    depends_on = ServiceRefField()

    class Meta:
        model = Dependency
        fields = ["id", "service", "depends_on", "description"]

    def validate(self, attrs):
        if attrs["service"] == attrs["depends_on"]:
            raise serializers.ValidationError({"depends_on": "A service cannot depend on itself."})
        if Dependency.objects.filter(
            service=attrs["service"], depends_on=attrs["depends_on"]
        ).exists():
            raise serializers.ValidationError({"depends_on": "This dependency already exists."})
        return attrs


class SLOSerializer(serializers.ModelSerializer):
    service = ServiceRefField()
    error_budget = serializers.FloatField(read_only=True)

    class Meta:
        model = SLO
        fields = [
            "id",
            "service",
            "name",
            "objective",
            "window_days",
            "good_query",
            "total_query",
            "description",
            "error_budget",
        ]

    def validate_objective(self, value):
        if not 0 < value < 100:
            raise serializers.ValidationError("Must be between 0 and 100 (exclusive), in percent.")
        return value


class IntegrationSerializer(serializers.ModelSerializer):
    team = TeamRefField()
    url = serializers.SerializerMethodField()
    group_by = serializers.ListField(child=serializers.CharField(max_length=100), required=False)

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "kind",
            "team",
            "url",
            "secret",
            "enabled",
            "group_by",
            "group_window_minutes",
            "auto_resolve",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        extra_kwargs = {"secret": {"required": False}}

    def get_url(self, obj) -> str:
        path = reverse("ingest-webhook", kwargs={"token": obj.token})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not has_capability(request.user, "change", instance):
            data.pop("secret", None)  # only who may change the integration sees its secret
        return data


class TimelineEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = TimelineEvent
        fields = ["id", "kind", "actor", "message", "data", "created_at"]


class AlertSerializer(serializers.ModelSerializer):
    integration = serializers.PrimaryKeyRelatedField(read_only=True)
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    incident = serializers.PrimaryKeyRelatedField(read_only=True)
    incident_reference = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "fingerprint",
            "name",
            "status",
            "labels",
            "annotations",
            "starts_at",
            "ends_at",
            "generator_url",
            "group_key",
            "integration",
            "service",
            "incident",
            "incident_reference",
            "received_at",
            "last_received_at",
            "receive_count",
        ]

    def get_incident_reference(self, obj) -> str | None:
        return f"INC-{obj.incident.number}" if obj.incident_id else None


class AlertDetailSerializer(AlertSerializer):
    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "raw"]


class IncidentSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    services = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    commander = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    # where correlation thinks the failure started: the first place responders look
    origin_service = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "number",
            "reference",
            "title",
            "severity",
            "status",
            "team",
            "services",
            "commander",
            "summary",
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
        read_only_fields = [f for f in fields if f not in ("title", "severity", "summary")]


class IncidentDetailSerializer(IncidentSerializer):
    alerts = AlertSerializer(many=True, read_only=True)
    timeline = TimelineEventSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "alerts", "timeline"]


class TransitionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10000)


class CommanderSerializer(serializers.Serializer):
    commander = serializers.CharField(
        max_length=150, help_text="username of someone who can respond to the incident"
    )


class MergeSerializer(serializers.Serializer):
    incidents = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=100,
        help_text="ids of the incidents to merge into this one",
    )


class CorrelationRuleSerializer(serializers.ModelSerializer):
    team = TeamRefField(
        required=False,
        allow_null=True,
        help_text="the team whose alerts it applies to; null: every team's (superusers only)",
    )

    class Meta:
        model = CorrelationRule
        validators: list = []  # uniqueness per team is checked in validate()
        fields = [
            "id",
            "name",
            "team",
            "description",
            "enabled",
            "position",
            "matchers",
            "group_by",
            "window_seconds",
            "min_alerts",
            "reuse_resolved",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        candidate = CorrelationRule(**{**self._current(), **attrs})
        try:
            candidate.as_rule()
        except (ValueError, TypeError, KeyError) as exc:
            raise serializers.ValidationError(str(exc)) from exc
        clash = CorrelationRule.objects.filter(name=candidate.name, team=candidate.team)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"name": "A rule of this name exists for this team."})
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in self.Meta.fields if f not in ("id",)}


class AlertIdsSerializer(serializers.Serializer):
    alerts = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=1000)
