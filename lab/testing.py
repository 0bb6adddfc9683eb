"""Test entry point: a lab with history, serving every API on one loopback port.

with running_lab(faults=["bad_deploy:payments@-20m"]) as lab:
    httpx.get(f"{lab.loki_url}/loki/api/v1/labels")
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from lab.estate import Estate
from lab.faults import Fault, FaultSpec
from lab.server import LabServer
from lab.sim import Lab, build_history
from lab.tsdb import TSDB

LIVE_TICK_S = 1.0


@dataclass
class RunningLab:
    lab: Lab
    server: LabServer

    @property
    def base_url(self) -> str:
        return self.server.base_url

    prometheus_url = loki_url = tempo_url = kubernetes_url = base_url

    @property
    def ground_truth(self) -> list[dict]:
        return self.lab.ground_truth()

    @property
    def estate(self) -> Estate:
        return self.lab.estate

    @property
    def tsdb(self) -> TSDB:
        return self.lab.tsdb

    def inject(self, spec: FaultSpec | str) -> Fault:
        return self.lab.inject(spec)

    def advance(self) -> None:
        """Generate up to the clock now instead of waiting for the next live tick."""
        self.lab.generate_until(self.lab.clock(), step=LIVE_TICK_S)


@contextmanager
def running_lab(
    seed: int = 7,
    duration_s: float = 7200,
    faults: Sequence[FaultSpec | str] = (),
    webhook_url: str | None = None,
) -> Iterator[RunningLab]:
    """History of ``duration_s`` ending now, then live ticks, all APIs on 127.0.0.1:<free>."""
    lab = build_history(seed, duration_s, faults, end=time.time(), clock=time.time)
    server = LabServer(lab, port=0, webhook_url=webhook_url, tick=LIVE_TICK_S).start()
    try:
        yield RunningLab(lab, server)
    finally:
        server.stop()
