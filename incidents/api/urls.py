from django.urls import include, path
from rest_framework.routers import SimpleRouter

from incidents.api import views
from incidents.api.webhooks import WebhookView

router = SimpleRouter()

router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("services", views.ServiceViewSet, basename="service")
router.register("dependencies", views.DependencyViewSet, basename="dependency")
router.register("slos", views.SLOViewSet, basename="slo")
router.register("integrations", views.IntegrationViewSet, basename="integration")
router.register("correlation-rules", views.CorrelationRuleViewSet, basename="correlation-rule")

urlpatterns = [
    path("ingest/<slug:token>/", WebhookView.as_view(), name="ingest-webhook"),
    path("", include(router.urls)),
]
