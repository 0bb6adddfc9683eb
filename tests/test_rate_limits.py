"""Rate limits per integration and per token: 429 with Retry-After, nothing written."""

import pytest
from rest_framework.settings import api_settings

from incidents.models import Alert
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch):
    def set_rate(scope: str, rate: str) -> None:
        monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, scope, rate)

    return set_rate


def test_integration_burst_over_the_limit_is_refused_cleanly(
    rates, integrations, services, post_webhook
):
    rates("integration", "3/min")
    am = integrations["alertmanager"]
    for i in range(3):
        assert post_webhook(am, am_payload([am_alert(f"A{i}", "payments")])).status_code == 200
    refused = post_webhook(am, am_payload([am_alert("Over", "payments")]))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert not Alert.objects.filter(name="Over").exists()
    assert Alert.objects.count() == 3
    # another integration has its own budget
    assert post_webhook(integrations["generic"], {"name": "Fine"}).status_code == 200


def test_invalid_requests_count_against_the_limit_too(rates, integrations, post_webhook):
    rates("integration", "2/min")
    am = integrations["alertmanager"]
    post_webhook(am, "{bad")
    post_webhook(am, "{bad")
    assert post_webhook(am, am_payload([am_alert("A", "payments")])).status_code == 429


def test_per_token_limit(rates, integrations, users, api):
    rates("user", "5/min")
    viewer, responder = api(users["viewer"]), api(users["responder"])
    codes = [viewer.get("/api/v1/incidents/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    last = viewer.get("/api/v1/services/")
    assert last.status_code == 429 and "Retry-After" in last.headers
    assert responder.get("/api/v1/incidents/").status_code == 200
