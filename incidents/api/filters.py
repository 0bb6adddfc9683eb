import django_filters as filters

from incidents.lifecycle import IncidentStatus, Severity
from incidents.models import Alert, Incident


class IncidentFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=IncidentStatus.choices)
    severity = filters.MultipleChoiceFilter(choices=Severity.choices)
    service = filters.CharFilter(field_name="services__slug", distinct=True)
    team = filters.CharFilter(field_name="team__slug")
    commander = filters.CharFilter(field_name="commander__username")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    open = filters.BooleanFilter(method="filter_open", label="not resolved")

    class Meta:
        model = Incident
        fields = ["status", "severity", "service", "team", "commander", "number"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        op = queryset.exclude if value else queryset.filter
        return op(status=IncidentStatus.RESOLVED)


class AlertFilter(filters.FilterSet):
    service = filters.CharFilter(field_name="service__slug")
    # plain ids, not choices: an id of another team's object filters to nothing, exactly
    # like an id that does not exist (a choice field would answer 400 for one of them)
    incident = filters.NumberFilter(field_name="incident_id")
    integration = filters.NumberFilter(field_name="integration_id")
    label = filters.CharFilter(method="filter_label", label="label=value")

    class Meta:
        model = Alert
        fields = ["status", "fingerprint", "name", "incident", "integration", "service"]

    def filter_label(self, queryset, name, value):
        key, _, wanted = value.partition("=")
        return queryset.filter(**{f"labels__{key}": wanted}) if key else queryset
