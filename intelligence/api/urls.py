from django.urls import path

from intelligence.api.slo import SLOStatusViewSet
from intelligence.api.views import IncidentInsightViewSet, IncidentRcaView

urlpatterns = [
    # before incidents' router, whose slos/<pk>/ would take "status" for a pk
    path("slos/status/", SLOStatusViewSet.as_view({"get": "list"}), name="slo-status-list"),
    path(
        "slos/<int:slo_id>/status/",
        SLOStatusViewSet.as_view({"get": "retrieve"}),
        name="slo-status-detail",
    ),
    path(
        "incidents/<int:incident_id>/insights/",
        IncidentInsightViewSet.as_view({"get": "list", "post": "create"}),
        name="incident-insights",
    ),
    path(
        "incidents/<int:incident_id>/rca/",
        IncidentRcaView.as_view({"get": "retrieve"}),
        name="incident-rca",
    ),
    path(
        "incidents/<int:incident_id>/rca/verdicts/",
        IncidentRcaView.as_view({"post": "verdict"}),
        name="incident-rca-verdicts",
    ),
    path(
        "incidents/<int:incident_id>/rca/summary/",
        IncidentRcaView.as_view({"post": "summarise"}),
        name="incident-rca-summary",
    ),
]
