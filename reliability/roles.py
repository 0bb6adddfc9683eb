"""Roles and the object permissions each one grants on what a team owns.

A user holds one role per team (``TeamMembership``). The role decides which guardian object
permissions the team's role group gets on the team's services and integrations; incidents,
alerts and timelines are visible through a join to those services (see ``visibility``).
"""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    RESPONDER = "responder"
    SRE = "sre"
    ADMIN = "admin"


ROLE_ORDER = [Role.VIEWER, Role.RESPONDER, Role.SRE, Role.ADMIN]

# Capabilities a role has on an owned object. Each maps to a permission codename
# "<capability>_<model>", e.g. "respond_service".
CAPABILITIES: dict[Role, tuple[str, ...]] = {
    Role.VIEWER: ("view",),
    Role.RESPONDER: ("view", "respond"),
    Role.SRE: ("view", "respond", "remediate"),
    Role.ADMIN: ("view", "respond", "remediate", "change", "delete"),
}

# Which capabilities exist on which owned model (app_label.model).
OWNED_MODELS: dict[str, tuple[str, ...]] = {
    "reliability.team": ("view", "change"),
    "incidents.service": ("view", "respond", "remediate", "change", "delete"),
    "incidents.integration": ("view", "change", "delete"),
}


def permissions_for(role: Role, model_label: str) -> list[str]:
    """The guardian codenames a role gets on one object of ``model_label``."""
    model = model_label.split(".")[1]
    allowed = OWNED_MODELS[model_label]
    return [f"{cap}_{model}" for cap in CAPABILITIES[Role(role)] if cap in allowed]
