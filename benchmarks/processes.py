"""Processes a benchmark runs beside itself (web server, Celery worker): started from the
project root with the benchmark's environment, and always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stop(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Terminate, and kill what does not exit in ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(
    command: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(list(command), cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        yield process
    finally:
        stop(process)


@contextmanager
def celery_worker(env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """One Celery worker process on the correlation and default queues, as deployed, once
    it answers a ping."""
    from reliability.celery import app

    command = [
        sys.executable,
        "-m",
        "celery",
        "--quiet",
        "-A",
        "reliability",
        "worker",
        "-Q",
        "correlation,default",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "-l",
        "warning",
        "--without-gossip",
        "--without-mingle",
    ]
    quiet = {"CELERY_TASK_ALWAYS_EAGER": "false", "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING"}
    with running(command, {**quiet, **(env or {})}) as process:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
        yield process
