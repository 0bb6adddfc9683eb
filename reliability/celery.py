"""The Celery app. Tasks live in each app's ``tasks.py`` and stay thin."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reliability.settings")

app = Celery("reliability")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_secrets_in_worker_logs(logger, **_kwargs) -> None:
    """Celery sets up its own handlers; give them the same redaction as Django's."""
    from reliability.redaction import install_log_redaction

    install_log_redaction(logger)
