from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from incidents.models import Integration


class Command(BaseCommand):
    help = "Print an integration's webhook URL (with ?secret= when --with-secret)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="integration name")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--with-secret", action="store_true")

    def handle(self, *args, name, base_url, with_secret, **options):
        integration = Integration.objects.filter(name=name).first()
        if integration is None:
            raise CommandError(f"No integration named {name!r}.")
        url = base_url.rstrip("/") + reverse("ingest-webhook", kwargs={"token": integration.token})
        if with_secret and integration.secret:
            url += f"?secret={integration.secret}"
        self.stdout.write(url)
