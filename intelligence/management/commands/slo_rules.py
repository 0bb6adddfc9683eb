"""``manage.py slo_rules``: the SLOs as Prometheus recording and alerting rules."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from incidents.models import SLO
from intelligence.slo.rules import rules_yaml
from intelligence.slo.service import spec_of


class Command(BaseCommand):
    help = (
        "Write Prometheus rules (error ratio per window, budget left, multiwindow burn "
        "alerts) for every SLO, or those of --service, to --output or stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="rules file to write (default: stdout)")
        parser.add_argument(
            "--service", action="append", default=[], help="only this service (repeatable)"
        )

    def handle(self, *args, **options) -> None:
        slos = SLO.objects.select_related("service").order_by("service__slug", "name")
        if options["service"]:
            slos = slos.filter(service__slug__in=options["service"])
            missing = set(options["service"]) - {s.service.slug for s in slos}
            if missing:
                raise CommandError(f"no SLO for service(s): {', '.join(sorted(missing))}")
        text = rules_yaml(spec_of(slo) for slo in slos)
        if options["output"]:
            options["output"].write_text(text)
            self.stderr.write(f"wrote rules for {len(slos)} SLO(s) to {options['output']}")
        else:
            self.stdout.write(text, ending="")
