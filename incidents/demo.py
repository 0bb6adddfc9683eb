"""The built-in demo estate: two teams, users for every role, twelve services with their
dependencies, SLOs and one integration per source. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from incidents.models import SLO, Dependency, Integration, Service
from reliability.accounts import ensure_user
from reliability.models import Team
from reliability.roles import ROLE_ORDER

TEAMS = {"platform": "Platform", "commerce": "Commerce"}

# slug: (team, tier, depends on); the same estate the telemetry lab simulates
SERVICES: dict[str, tuple[str, int, list[str]]] = {
    "gateway": ("platform", 1, ["auth", "catalog", "search", "cart", "checkout"]),
    "auth": ("platform", 1, ["cache"]),
    "catalog": ("commerce", 2, ["cache", "database"]),
    "search": ("commerce", 2, ["cache", "catalog"]),
    "cart": ("commerce", 1, ["cache", "inventory"]),
    "checkout": ("commerce", 1, ["cart", "inventory", "payments", "queue"]),
    "payments": ("commerce", 1, ["database"]),
    "inventory": ("commerce", 2, ["database"]),
    "notifications": ("platform", 3, ["queue"]),
    "database": ("platform", 1, []),
    "cache": ("platform", 1, []),
    "queue": ("platform", 2, []),
}


@dataclass
class DemoAccount:
    username: str
    team: str
    role: str
    token: str


def _slo_queries(slug: str) -> tuple[str, str]:
    total = f'sum(rate(http_requests_total{{service="{slug}"}}[5m]))'
    good = f'sum(rate(http_requests_total{{service="{slug}",code!~"5.."}}[5m]))'
    return good, total


@transaction.atomic
def load_demo() -> list[DemoAccount]:
    teams = {
        slug: Team.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for slug, name in TEAMS.items()
    }
    accounts = []
    for team_slug, team in teams.items():
        for role in ROLE_ORDER:
            username = f"{team_slug}-{role}"
            _user, token = ensure_user(username, team=team, role=role, password=username)
            accounts.append(DemoAccount(username, team_slug, str(role), token))
    _user, token = ensure_user("admin", superuser=True, password="admin")
    accounts.append(DemoAccount("admin", "*", "superuser", token))

    services = {}
    for slug, (team_slug, tier, _deps) in SERVICES.items():
        services[slug], _ = Service.objects.get_or_create(
            slug=slug, defaults={"name": slug.capitalize(), "team": teams[team_slug], "tier": tier}
        )
    for slug, (_team, _tier, deps) in SERVICES.items():
        for dep in deps:
            Dependency.objects.get_or_create(service=services[slug], depends_on=services[dep])
    for slug in ("gateway", "checkout", "payments", "auth"):
        good, total = _slo_queries(slug)
        SLO.objects.get_or_create(
            service=services[slug],
            name="availability",
            defaults={"objective": "99.9", "good_query": good, "total_query": total},
        )
    for team_slug, team in teams.items():
        for kind in Integration.Kind.values:
            Integration.objects.get_or_create(
                name=f"{team_slug}-{kind}",
                defaults={"kind": kind, "team": team, "group_by": []},
            )
    # the telemetry lab's alerts arrive here in the demo (Alertmanager format)
    Integration.objects.get_or_create(
        name="lab", defaults={"kind": Integration.Kind.ALERTMANAGER, "team": teams["platform"]}
    )
    return accounts
