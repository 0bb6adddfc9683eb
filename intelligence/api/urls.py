from django.urls import path

from intelligence.api.views import IncidentInsightViewSet

urlpatterns = [
    path(
        "incidents/<int:incident_id>/insights/",
        IncidentInsightViewSet.as_view({"get": "list", "post": "create"}),
        name="incident-insights",
    ),
]
