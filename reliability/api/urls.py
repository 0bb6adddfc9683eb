"""The /api/v1/ root: every app registers its viewsets on one router."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from reliability.api import views

router = DefaultRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("audit-log", views.AuditLogViewSet, basename="auditlog")

urlpatterns = [
    path("", include("intelligence.api.urls")),
    path("", include("incidents.api.urls")),
    path("", include(router.urls)),
]
