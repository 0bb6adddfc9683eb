"""The webhook endpoint every integration posts to: ``/api/v1/ingest/<token>/``.

Checks are ordered cheapest first and each failure has its own status: unknown integration
404, disabled 403, bad secret 401, over the rate limit 429 (Retry-After), not JSON 415,
too large 413, malformed JSON 400, invalid fields 400 with a path per field (NUL characters,
lone surrogates and nesting deeper than 64 levels included: see ``reliability.jsonsafety``).
Nothing is written unless the whole payload is valid.
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import (
    AuthenticationFailed,
    NotFound,
    ParseError,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.ingest.parsers import PARSERS, PayloadError, now_utc
from incidents.ingest.service import ingest
from incidents.models import Integration
from reliability.api.exceptions import PayloadTooLarge
from reliability.api.throttles import IntegrationRateThrottle
from reliability.jsonsafety import UnsafeJSON, parse_json


def _presented_secret(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.query_params.get("secret", "")


class WebhookView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IntegrationRateThrottle]
    parser_classes: list = []  # the body is read by hand, after the size check

    def initial(self, request, *args, **kwargs):
        # resolve the integration before throttling, so unknown tokens cost nothing
        token = kwargs["token"]
        integration = Integration.objects.select_related("team").filter(token=token).first()
        if integration is None:
            raise NotFound("Unknown integration.")
        if not integration.enabled:
            raise PermissionDenied("This integration is disabled.")
        if integration.secret and not hmac.compare_digest(
            _presented_secret(request).encode(), integration.secret.encode()
        ):
            raise AuthenticationFailed("Missing or wrong integration secret.")
        self.integration = integration
        super().initial(request, *args, **kwargs)

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="integration"'

    @extend_schema(
        request={"application/json": dict},
        responses={
            200: OpenApiResponse(description="stored and correlated; counts per outcome"),
            400: OpenApiResponse(description="malformed JSON or invalid fields"),
            401: OpenApiResponse(description="wrong secret"),
            413: OpenApiResponse(description="body too large"),
            415: OpenApiResponse(description="not JSON"),
            429: OpenApiResponse(description="rate limited"),
        },
    )
    def post(self, request, token: str):
        """Receive alerts from Alertmanager, Grafana or a generic JSON source."""
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType(content_type or "none")
        limit = settings.INGEST_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Body is {declared} bytes; the limit is {limit}.")
        body = request._request.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"Body exceeds the limit of {limit} bytes.")
        try:
            payload = parse_json(body)
        except UnsafeJSON as exc:  # legal JSON we cannot store exactly: say where
            raise ValidationError(exc.errors) from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        now = now_utc()
        try:
            alerts = PARSERS[self.integration.kind](payload, now)
        except PayloadError as exc:
            raise ValidationError(exc.errors) from exc
        result = ingest(self.integration, alerts, now)
        return Response(result.as_dict(), status=status.HTTP_200_OK)
