"""No team role reaches another team: correlation rules are team-scoped, and an object of
another team answers exactly like one that does not exist (no existence oracles)."""

from __future__ import annotations

import pytest

from incidents.models import Alert, CorrelationRule, Dependency, Incident, Service
from tests.conftest import am_alert, am_payload

pytestmark = pytest.mark.django_db

HOLD_EVERYTHING = {
    "name": "hold-everything",
    "matchers": ['alertname=~".+"'],
    "group_by": ["alertname"],
    "min_alerts": 1000,
}


def test_a_team_admins_rule_never_holds_back_another_teams_alerts(
    integrations, services, users, api, post_webhook
):
    admin = api(users["admin"])
    created = admin.post(
        "/api/v1/correlation-rules/", {**HOLD_EVERYTHING, "team": "own"}, format="json"
    )
    assert created.status_code == 201, created.content
    # it does act on its own team's alerts...
    post_webhook(integrations["alertmanager"], am_payload([am_alert("Own", "payments")], "g1"))
    assert Alert.objects.get(name="Own").incident is None
    # ...and never on another team's: their critical alert still opens their incident
    other = am_payload([am_alert("Critical", "search", severity="critical")], "g2")
    assert post_webhook(integrations["other"], other).status_code == 200
    incident = Incident.objects.get()
    assert (incident.team.slug, incident.severity) == ("other", "critical")


@pytest.mark.parametrize(
    ("team", "status"),
    [
        (None, 403),  # every team's alerts: superusers only
        ("other", 400),  # a team you cannot see: exactly as a team that does not exist
        ("no-such-team", 400),
    ],
)
def test_a_team_admin_cannot_write_a_rule_for_other_teams(team, status, users, teams, api):
    response = api(users["admin"]).post(
        "/api/v1/correlation-rules/", {**HOLD_EVERYTHING, "team": team}, format="json"
    )
    assert response.status_code == status, response.content
    assert not CorrelationRule.objects.exists()


def test_rules_of_other_teams_are_invisible_and_global_rules_read_only(users, teams, api):
    theirs = CorrelationRule.objects.create(name="theirs", team=teams["other"])
    everyone = CorrelationRule.objects.create(name="everyone")
    mine = CorrelationRule.objects.create(name="mine", team=teams["own"])
    admin = api(users["admin"])
    listed = {r["name"] for r in admin.get("/api/v1/correlation-rules/").json()["results"]}
    assert listed == {"everyone", "mine"}
    url = "/api/v1/correlation-rules/{}/"
    assert admin.get(url.format(theirs.pk)).status_code == 404
    assert admin.patch(url.format(theirs.pk), {"min_alerts": 9}, format="json").status_code == 404
    assert admin.delete(url.format(theirs.pk)).status_code == 404
    assert admin.patch(url.format(everyone.pk), {"min_alerts": 9}, format="json").status_code == 403
    assert admin.delete(url.format(everyone.pk)).status_code == 403
    # nor can a team rule be turned into a global one, or handed to another team
    assert admin.patch(url.format(mine.pk), {"team": None}, format="json").status_code == 403
    assert admin.patch(url.format(mine.pk), {"team": "other"}, format="json").status_code == 400
    assert admin.patch(url.format(mine.pk), {"min_alerts": 3}, format="json").status_code == 200
    assert (
        api(users["sre"]).patch(url.format(mine.pk), {"min_alerts": 4}, format="json").status_code
        == 403
    )
    for rule in (theirs, everyone, mine):
        rule.refresh_from_db()
    assert (theirs.min_alerts, everyone.min_alerts, mine.min_alerts) == (1, 1, 3)
    assert (mine.team.slug, theirs.team.slug, everyone.team) == ("own", "other", None)
    root = api(users["root"])
    assert root.patch(url.format(everyone.pk), {"min_alerts": 2}, format="json").status_code == 200


def _same_answer(first, second) -> None:
    assert first.status_code == second.status_code, (first.content, second.content)
    a, b = first.json(), second.json()
    assert a.keys() == b.keys()


def test_a_dependency_to_an_invisible_service_answers_like_an_unknown_one(services, users, api):
    admin = api(users["admin"])
    url = "/api/v1/dependencies/"
    invisible = admin.post(url, {"service": "payments", "depends_on": "search"})
    unknown = admin.post(url, {"service": "payments", "depends_on": "no-such-service"})
    assert invisible.status_code == 400
    _same_answer(invisible, unknown)
    assert invisible.json()["depends_on"][0].replace("search", "X") == unknown.json()["depends_on"][
        0
    ].replace("no-such-service", "X")
    assert not Dependency.objects.filter(depends_on__slug="search").exists()


def test_another_teams_services_and_people_are_not_revealed_through_references(
    services, users, api
):
    admin = api(users["admin"])
    # a service's team and owners resolve only among what you can see
    for body, field in (
        ({"name": "n", "slug": "n1", "team": "other"}, "team"),
        ({"name": "n", "slug": "n2", "team": "own", "owners": ["other-admin"]}, "owners"),
    ):
        invisible = admin.post("/api/v1/services/", body, format="json")
        unknown_body = {**body, field: "nobody-here" if field == "team" else ["nobody-here"]}
        unknown = admin.post("/api/v1/services/", unknown_body, format="json")
        assert invisible.status_code == unknown.status_code == 400, invisible.content
        assert invisible.json().keys() == unknown.json().keys() == {field}
    assert not Service.objects.filter(slug__in=["n1", "n2"]).exists()
    # the other end of a cross-team edge is not shown to who cannot see it
    Dependency.objects.create(service=services["search"], depends_on=services["payments"])
    payments = admin.get("/api/v1/services/payments/").json()
    assert "search" not in payments["dependents"]
    assert "checkout" in payments["dependents"]
    # filters by id treat another team's object like a missing one
    other_alert_integration = services["search"].team.integrations.first()
    for query in ("incident=999999", "integration=999999"):
        assert admin.get(f"/api/v1/alerts/?{query}").status_code == 200
    if other_alert_integration is not None:
        got = admin.get(f"/api/v1/alerts/?integration={other_alert_integration.pk}")
        assert got.status_code == 200 and got.json()["count"] == 0
    assert admin.get("/api/v1/audit-log/?actor=999999").status_code == 200
    assert admin.get(f"/api/v1/audit-log/?actor={users['root'].pk}").status_code == 200
