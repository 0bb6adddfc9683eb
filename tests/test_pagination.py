"""Walking a list page by page sees every row exactly once, whatever the ordering."""

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from incidents.api.urls import router as incidents_router
from reliability.api.filters import with_tie_breaker
from reliability.api.urls import router as reliability_router
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


def walk(client, url: str, page_size: int) -> list[int]:
    seen: list[int] = []
    page = 1
    while True:
        sep = "&" if "?" in url else "?"
        body = client.get(f"{url}{sep}page_size={page_size}&page={page}").json()
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            return seen
        page += 1


def test_walking_alert_pages_sees_every_alert_once(
    integrations, services, users, api, post_webhook
):
    """One webhook's alerts share their receipt time: without a tie-breaker PostgreSQL's
    top-N sort returns the ties in a different order for each page."""
    alerts = [am_alert(f"A{i % 3}", "payments", fingerprint=f"fp-{i}") for i in range(90)]
    assert post_webhook(integrations["alertmanager"], am_payload(alerts)).status_code == 200
    client = api(users["viewer"])
    for ordering in ("", "name", "-status", "starts_at"):
        url = "/api/v1/alerts/" + (f"?ordering={ordering}" if ordering else "")
        seen = walk(client, url, 9)
        assert (len(seen), len(set(seen))) == (90, 90), ordering


def test_every_list_orders_by_a_unique_key_last(integrations, services, users):
    """Every registered list, default and each ``ordering_fields`` choice, ends with pk."""
    factory = APIRequestFactory()
    checked = 0
    for router in (incidents_router, reliability_router):
        for prefix, viewset, basename in router.registry:
            if not hasattr(viewset, "list"):
                continue
            fields = getattr(viewset, "ordering_fields", None) or []
            choices = [""] + [f"{sign}{f}" for f in fields for sign in ("", "-")]
            for choice in choices:
                request = factory.get(f"/api/v1/{prefix}/", {"ordering": choice} if choice else {})
                view = viewset(action="list", request=Request(request), format_kwarg=None)
                view.request.user = users["root"]
                view.kwargs = {}
                ordering = list(view.filter_queryset(view.get_queryset()).query.order_by)
                assert ordering and ordering[-1] in ("pk", "-pk", "id", "-id"), (
                    basename,
                    choice,
                    ordering,
                )
                checked += 1
    assert checked >= 9


def test_tie_breaker_follows_the_first_direction_and_is_not_doubled():
    assert with_tie_breaker(["-last_received_at"]) == ["-last_received_at", "-pk"]
    assert with_tie_breaker(["slug"]) == ["slug", "pk"]
    assert with_tie_breaker(["-timestamp", "-id"]) == ["-timestamp", "-id"]
    assert with_tie_breaker([]) == ["pk"]
