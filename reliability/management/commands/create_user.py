from django.core.management.base import BaseCommand, CommandError

from reliability import audit
from reliability.accounts import ensure_user
from reliability.models import Team
from reliability.roles import ROLE_ORDER


class Command(BaseCommand):
    help = (
        "Create (or update) a user or service account with a role in a team; print its API token."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--team", help="team slug (created if missing with --create-team)")
        parser.add_argument("--role", choices=[str(r) for r in ROLE_ORDER])
        parser.add_argument("--create-team", action="store_true")
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument("--password", help="for logging in to the admin (optional)")

    def handle(self, *args, username, team, role, create_team, superuser, password, **options):
        if bool(team) != bool(role):
            raise CommandError("--team and --role go together.")
        team_obj = None
        if team:
            team_obj = Team.objects.filter(slug=team).first()
            if team_obj is None and not create_team:
                raise CommandError(f"No team {team!r}; pass --create-team to create it.")
            if team_obj is None:
                team_obj = Team.objects.create(name=team, slug=team)
        with audit.audit_context(via="cli"):
            _user, token = ensure_user(
                username, team=team_obj, role=role, superuser=superuser, password=password
            )
        self.stdout.write(token)
