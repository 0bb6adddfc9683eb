"""Start real outside servers (Alertmanager, Prometheus) on loopback for a test, and
always stop them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


@contextmanager
def running(args: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    binary = shutil.which(args[0])
    assert binary, f"{args[0]} is not installed (scripts/bootstrap.sh installs it)"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, *args[1:]], stdout=out, stderr=subprocess.STDOUT)
        try:
            try:
                wait_ready(ready_url)
            except TimeoutError:
                raise RuntimeError(f"{args[0]} did not start:\n{log.read_text()[-2000:]}") from None
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
