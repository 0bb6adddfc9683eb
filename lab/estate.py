"""The simulated estate: services, their call graph, deployments and feature flags.

Everything random about the estate (versions, hashes, base load) comes from one seed, so a
scenario generated twice is the same scenario.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

DEFAULT_ESTATE = Path(__file__).with_name("estate.yml")
_POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated names


@dataclass(frozen=True)
class Call:
    """One downstream call a route makes per request."""

    service: str
    route: str
    count: float = 1.0
    weight: float = 1.0  # share of the callee's failures that fail the caller


@dataclass
class Route:
    method: str
    path: str
    latency_ms: float
    calls: list[Call]
    entry_rps: float = 0.0  # traffic arriving from outside the estate
    rps: float = 0.0  # total base traffic, entry plus callers (computed)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Version:
    revision: int
    version: str
    deployed_at: float  # seconds relative to the scenario start (negative: before it)


@dataclass
class Service:
    name: str
    tier: str
    replicas: int
    image: str
    cpu_limit: float
    memory_limit_bytes: float
    routes: list[Route]
    flags: dict[str, bool] = field(default_factory=dict)
    db_pool: int = 0
    versions: list[Version] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    load_factor: float = 1.0

    def route(self, key: str) -> Route:
        """A route by ``METHOD path`` or, for data-tier operations, by its path alone."""
        found = next((r for r in self.routes if key in (r.key, r.path)), None)
        if found is None:
            raise KeyError(f"{self.name} has no route {key!r}")
        return found

    @property
    def version(self) -> str:
        return self.versions[-1].version

    @property
    def memory_base_bytes(self) -> float:
        return self.memory_limit_bytes * 0.45


@dataclass
class Estate:
    namespace: str
    seed: int
    services: dict[str, Service]

    def __iter__(self):
        return iter(self.services.values())

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    @property
    def names(self) -> list[str]:
        return list(self.services)

    def callers_of(self, name: str) -> list[str]:
        return [s.name for s in self if name in s.depends_on]

    def upstream_of(self, name: str) -> set[str]:
        """Every service whose requests (transitively) reach ``name``: its blast radius."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            for caller in self.callers_of(todo.pop()):
                if caller not in seen:
                    seen.add(caller)
                    todo.append(caller)
        return seen

    def topological(self) -> list[str]:
        """Callees before callers, so a caller's state can be built from its callees'."""
        order: list[str] = []
        done: set[str] = set()

        def visit(n: str) -> None:
            if n in done:
                return
            done.add(n)
            for d in self.services[n].depends_on:
                visit(d)
            order.append(n)

        for n in self.services:
            visit(n)
        return order

    def to_dict(self) -> dict:
        return {
            "namespace": self.namespace,
            "seed": self.seed,
            "services": [
                {
                    "name": s.name,
                    "tier": s.tier,
                    "replicas": s.replicas,
                    "depends_on": s.depends_on,
                    "version": s.version,
                    "flags": s.flags,
                    "routes": [r.key for r in s.routes],
                }
                for s in self
            ],
        }


def stable_hash(*parts: object, length: int = 10) -> str:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return "".join(_POD_ALPHABET[b % len(_POD_ALPHABET)] for b in digest[:length])


def seed_for(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def _versions(rng: np.random.Generator) -> list[Version]:
    major, minor, patch = 1 + int(rng.integers(0, 3)), int(rng.integers(2, 30)), 0
    count = int(rng.integers(3, 6))
    ages = np.sort(rng.uniform(1, 40, count))[::-1] * 86400.0
    out = []
    for i, age in enumerate(ages):
        if rng.random() < 0.6:
            patch += 1
        else:
            minor, patch = minor + 1, 0
        out.append(Version(i + 1, f"{major}.{minor}.{patch}", -float(age)))
    return out


@functools.lru_cache(maxsize=16)
def _read_topology(path: str) -> dict:
    """Parsed once per file: tests and benchmarks build many estates (never mutated)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(), Loader=loader)  # safe: SafeLoader or its C twin


def load_estate(path: str | Path | None = None, seed: int = 7) -> Estate:
    """Read a topology file (the default shop when ``path`` is None) and seed its details."""
    raw = _read_topology(str(Path(path or DEFAULT_ESTATE).resolve()))
    rng = np.random.default_rng(seed)
    services: dict[str, Service] = {}
    for spec in raw["services"]:
        routes = []
        for r in spec.get("routes", []):
            calls = [
                Call(
                    c[0],
                    c[1],
                    float(c[2]) if len(c) > 2 else 1.0,
                    float(c[3]) if len(c) > 3 else 1.0,
                )
                for c in r.get("calls", [])
            ]
            routes.append(
                Route(r["method"], r["path"], float(r["latency_ms"]), calls, float(r.get("rps", 0)))
            )
        svc = Service(
            name=spec["name"],
            tier=spec.get("tier", "core"),
            replicas=int(spec.get("replicas", 1)),
            image=spec.get("image", spec["name"]),
            cpu_limit=float(spec.get("cpu_limit", 1.0)),
            memory_limit_bytes=float(spec.get("memory_limit_mib", 512)) * 2**20,
            routes=routes,
            flags=dict(spec.get("flags") or {}),
            db_pool=int(spec.get("db_pool", 0)),
            versions=[
                Version(v["revision"], v["version"], v["deployed_at"]) for v in spec["versions"]
            ]
            if "versions" in spec
            else _versions(rng),
            load_factor=float(rng.uniform(0.85, 1.15)),
        )
        svc.depends_on = sorted({c.service for r in routes for c in r.calls})
        services[svc.name] = svc
    estate = Estate(raw.get("namespace", "prod"), seed, services)
    for name in estate.topological():
        estate.services[name]  # validates names exist
    _propagate_rps(estate)
    return estate


def _propagate_rps(estate: Estate) -> None:
    """Base traffic of every route: entry traffic plus what callers send it."""
    for s in estate:
        for r in s.routes:
            r.rps = r.entry_rps * s.load_factor
    for name in reversed(estate.topological()):  # callers first
        for r in estate[name].routes:
            for c in r.calls:
                estate[c.service].route(c.route).rps += r.rps * c.count
