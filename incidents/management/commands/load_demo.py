from django.core.management.base import BaseCommand

from incidents.demo import load_demo
from incidents.models import Integration
from reliability import audit


class Command(BaseCommand):
    help = "Load the demo estate (teams, users per role, services, SLOs, integrations)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        with audit.audit_context(via="cli"):
            accounts = load_demo()
        self.stdout.write(self.style.SUCCESS("Demo accounts (password = username):"))
        for account in accounts:
            self.stdout.write(
                f"  {account.username:<22} {account.team:<10} {account.role:<10} "
                f"Token {account.token}"
            )
        self.stdout.write(self.style.SUCCESS("Webhook URLs:"))
        for integration in Integration.objects.order_by("name"):
            self.stdout.write(
                f"  {integration.name:<22} {base_url}/api/v1/ingest/{integration.token}/"
                f"  (Authorization: Bearer {integration.secret})"
            )
