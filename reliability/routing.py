"""WebSocket URL root: each app's consumers are listed here, under /ws/."""

from django.urls import path

from incidents.consumers import IncidentConsumer, IncidentListConsumer

websocket_urlpatterns = [
    path("ws/incidents/", IncidentListConsumer.as_asgi()),
    path("ws/incidents/<int:incident_id>/", IncidentConsumer.as_asgi()),
]
