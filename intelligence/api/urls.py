from django.urls import path

from intelligence.api.slo import SLOStatusViewSet

urlpatterns = [
    # before incidents' router, whose slos/<pk>/ would take "status" for a pk
    path("slos/status/", SLOStatusViewSet.as_view({"get": "list"}), name="slo-status-list"),
    path(
        "slos/<int:slo_id>/status/",
        SLOStatusViewSet.as_view({"get": "retrieve"}),
        name="slo-status-detail",
    ),
]
