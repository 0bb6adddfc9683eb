"""The estate's Kubernetes objects (deployments, replica sets, pods, events), how they
change (rollout, rollback, restart, scale) and how they render as API objects; the HTTP
surface is ``lab.kube_api``.

Pods carry lifetimes so the metric generator knows which pods exist at any instant; a
rollout, restart or scale changes those lifetimes and, through the callbacks the lab
registers, clears the faults the change remediates.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lab.estate import Estate, Service, stable_hash

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_uid(*parts: object) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:16]))


@dataclass
class Pod:
    name: str
    service: str
    rs: str
    index: int
    born: float
    died: float | None = None
    ip: str = ""
    node: str = ""
    restarts: int = 0
    last_oom: float | None = None
    uid: str = ""

    def alive(self, t: float) -> bool:
        return self.born <= t and (self.died is None or t < self.died)


@dataclass
class ReplicaSet:
    name: str
    service: str
    hash: str
    revision: int
    template: dict
    created: float
    replicas: int = 0
    uid: str = ""


@dataclass
class Event:
    name: str
    kind: str  # involved object's kind
    obj: str
    reason: str
    message: str
    type: str
    component: str
    first: float
    repeat_s: float = 0.0  # >0: the event recurs (count grows) until ``until``
    until: Callable[[], float | None] | None = None
    uid: str = ""


@dataclass
class Deployment:
    service: Service
    created: float
    replicas: int
    template: dict
    generation: int = 1
    uid: str = ""
    replica_sets: list[ReplicaSet] = field(default_factory=list)

    @property
    def current(self) -> ReplicaSet:
        return max(self.replica_sets, key=lambda rs: rs.revision)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _cpu(cores: float) -> str:
    """A CPU quantity in the canonical form the API server returns ("1", "500m")."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _drop_nulls(value: object) -> object:
    """Go clients send zero values (``creationTimestamp: null``, ``resources: {}``) that
    the stored template omits; they must not make the same template look different."""
    if isinstance(value, dict):
        cleaned = {k: _drop_nulls(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in cleaned.items() if v != {}}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def template_hash(template: dict) -> str:
    clean = _drop_nulls(copy.deepcopy(template))
    assert isinstance(clean, dict)
    clean.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    return stable_hash("template", json.dumps(clean, sort_keys=True), length=10)


class Cluster:
    """Deployments and friends in one namespace, with a clock and change callbacks."""

    def __init__(self, estate: Estate, start: float, clock: Callable[[], float]) -> None:
        self.estate = estate
        self.namespace = estate.namespace
        self.clock = clock
        self.lock = threading.RLock()
        self._rv = itertools.count(1000)
        self.resource_version = next(self._rv)
        self.deployments: dict[str, Deployment] = {}
        self.pods: dict[str, list[Pod]] = {}
        self.events: list[Event] = []
        self.on_change: list[Callable[[str, str, float, dict], None]] = []
        self._ip = itertools.count(11)
        for svc in estate:
            self._create(svc, start)

    # -- construction -----------------------------------------------------------------
    def _template(self, svc: Service, version: str) -> dict:
        return {
            "metadata": {"labels": {"app": svc.name, "tier": svc.tier}},
            "spec": {
                "containers": [
                    {
                        "name": svc.name,
                        "image": f"{svc.image}:{version}",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {
                            "limits": {
                                "cpu": _cpu(svc.cpu_limit),
                                "memory": f"{int(svc.memory_limit_bytes / 2**20)}Mi",
                            },
                            "requests": {
                                "cpu": _cpu(svc.cpu_limit / 2),
                                "memory": f"{int(svc.memory_limit_bytes / 2**21)}Mi",
                            },
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
            },
        }

    def _create(self, svc: Service, start: float) -> None:
        first = start + svc.versions[0].deployed_at
        dep = Deployment(
            svc, first, svc.replicas, {}, uid=object_uid(self.estate.seed, "deploy", svc.name)
        )
        self.deployments[svc.name] = dep
        self.pods[svc.name] = []
        for v in svc.versions:
            template = self._template(svc, v.version)
            self._new_rs(dep, template, start + v.deployed_at)
        dep.template = copy.deepcopy(dep.current.template)
        dep.template["metadata"]["labels"].pop("pod-template-hash", None)
        dep.generation = len(svc.versions)
        dep.current.replicas = svc.replicas
        for _ in range(svc.replicas):
            self._new_pod(dep, dep.current, dep.current.created)

    def _new_rs(self, dep: Deployment, template: dict, at: float) -> ReplicaSet:
        h = template_hash(template)
        template = copy.deepcopy(template)
        template["metadata"].setdefault("labels", {})["pod-template-hash"] = h
        revision = max((rs.revision for rs in dep.replica_sets), default=0) + 1
        rs = ReplicaSet(
            f"{dep.service.name}-{h}",
            dep.service.name,
            h,
            revision,
            template,
            at,
            uid=object_uid(self.estate.seed, "rs", dep.service.name, h),
        )
        dep.replica_sets.append(rs)
        return rs

    def _new_pod(self, dep: Deployment, rs: ReplicaSet, at: float) -> Pod:
        pods = self.pods[dep.service.name]
        index = len(pods)
        suffix = stable_hash(self.estate.seed, rs.name, index, at, length=5)
        n = next(self._ip)
        pod = Pod(
            f"{rs.name}-{suffix}",
            dep.service.name,
            rs.name,
            index,
            at,
            ip=f"10.42.{n // 250}.{n % 250 + 2}",
            node=f"node-{(n * 7) % 4 + 1}",
            uid=object_uid(self.estate.seed, "pod", rs.name, suffix),
        )
        pods.append(pod)
        return pod

    # -- reads used by the generator --------------------------------------------------
    def pods_of(self, service: str) -> list[Pod]:
        with self.lock:
            return list(self.pods[service])

    def replicas(self, service: str) -> int:
        return self.deployments[service].replicas

    def image_version(self, service: str) -> str:
        image = self.deployments[service].template["spec"]["containers"][0]["image"]
        return image.rsplit(":", 1)[-1]

    def add_event(
        self,
        kind: str,
        obj: str,
        reason: str,
        message: str,
        at: float,
        *,
        warning: bool = False,
        component: str = "kubelet",
        repeat_s: float = 0.0,
        until: Callable[[], float | None] | None = None,
    ) -> None:
        with self.lock:
            digest = hashlib.sha256(f"{obj}/{reason}/{at}/{message}".encode()).hexdigest()[:16]
            self.events.append(
                Event(
                    f"{obj}.{digest}",
                    kind,
                    obj,
                    reason,
                    message,
                    "Warning" if warning else "Normal",
                    component,
                    at,
                    repeat_s,
                    until,
                    uid=object_uid("event", obj, digest),
                )
            )
            self.resource_version = next(self._rv)

    def record_oom(self, pod: Pod, at: float) -> None:
        with self.lock:
            pod.restarts += 1
            pod.last_oom = at
        self.add_event(
            "Pod",
            pod.name,
            "OOMKilled",
            f"Container {pod.service} in pod {pod.name} was OOMKilled (exit code 137, memory "
            f"limit {int(self.estate[pod.service].memory_limit_bytes / 2**20)}Mi)",
            at,
            warning=True,
        )
        self.add_event(
            "Pod",
            pod.name,
            "BackOff",
            f"Back-off restarting failed container {pod.service} in pod {pod.name}_"
            f"{self.namespace}({pod.uid})",
            at + 5,
            warning=True,
        )

    # -- changes --------------------------------------------------------------------------
    def rollout(self, service: str, template: dict, at: float, cause: str) -> ReplicaSet:
        """Move the deployment to ``template``: reuse a matching old replica set (a
        rollback) or create a new one, then replace the pods over a short rolling window."""
        with self.lock:
            dep = self.deployments[service]
            old = dep.current
            h = template_hash(template)
            match = next((rs for rs in dep.replica_sets if rs.hash == h), None)
            if match is old:
                return old
            if match is not None:
                match.revision = max(rs.revision for rs in dep.replica_sets) + 1
                match.created = min(match.created, at)
                new = match
            else:
                new = self._new_rs(dep, template, at)
            dep.template = copy.deepcopy(template)
            dep.template["metadata"].get("labels", {}).pop("pod-template-hash", None)
            dep.generation += 1
            alive = [p for p in self.pods[service] if p.alive(at) or p.born > at]
            step = 20.0 if at < self.clock() - 1 else 0.0  # history rolls; live switches at once
            for i, pod in enumerate(alive):
                pod.died = at + step * (i + 1)
            for i in range(dep.replicas):
                pod = self._new_pod(dep, new, at + step * i)
                image = template["spec"]["containers"][0]["image"]
                for offset, reason, message in (
                    (
                        0.0,
                        "Scheduled",
                        f"Successfully assigned {self.namespace}/{pod.name} to {pod.node}",
                    ),
                    (2.0, "Pulled", f'Container image "{image}" already present on machine'),
                    (3.0, "Started", f"Started container {service}"),
                ):
                    self.add_event(
                        "Pod",
                        pod.name,
                        reason,
                        message,
                        pod.born + offset,
                        component="default-scheduler" if reason == "Scheduled" else "kubelet",
                    )
            new.replicas, old.replicas = dep.replicas, 0
            self.add_event(
                "Deployment",
                service,
                "ScalingReplicaSet",
                f"Scaled up replica set {new.name} to {dep.replicas}",
                at,
                component="deployment-controller",
            )
            self.add_event(
                "Deployment",
                service,
                "ScalingReplicaSet",
                f"Scaled down replica set {old.name} to 0 from {dep.replicas}",
                at + step * dep.replicas,
                component="deployment-controller",
            )
            self.resource_version = next(self._rv)
            kind = "rollback" if match is not None else cause
            for cb in self.on_change:
                cb(kind, service, at, {"from": old.name, "to": new.name})
            return new

    def scale(self, service: str, replicas: int, at: float) -> None:
        with self.lock:
            dep = self.deployments[service]
            before = dep.replicas
            if replicas == before:
                return
            dep.replicas = replicas
            rs = dep.current
            rs.replicas = replicas
            alive = [p for p in self.pods[service] if p.died is None]
            if replicas > before:
                for _ in range(replicas - before):
                    self._new_pod(dep, rs, at)
            else:
                for pod in sorted(alive, key=lambda p: -p.born)[: before - replicas]:
                    pod.died = at
            verb = "up" if replicas > before else "down"
            self.add_event(
                "Deployment",
                service,
                "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs.name} to {replicas} from {before}",
                at,
                component="deployment-controller",
            )
            self.resource_version = next(self._rv)
        for cb in self.on_change:
            cb("scale", service, at, {"from": before, "to": replicas})

    def restart(self, service: str, at: float) -> ReplicaSet:
        template = copy.deepcopy(self.deployments[service].template)
        template["metadata"].setdefault("annotations", {})[RESTARTED_AT] = rfc3339(at)
        return self.rollout(service, template, at, "restart")

    def rollback(self, service: str, at: float) -> ReplicaSet:
        """Go back to the previous *version*: the newest older revision whose image differs
        (``kubectl rollout undo`` right after a restart would only undo the restart)."""
        dep = self.deployments[service]
        history = sorted(dep.replica_sets, key=lambda rs: rs.revision)
        if len(history) < 2:
            raise ApiError(400, "BadRequest", f"no rollout history for {service}")

        def image(rs: ReplicaSet) -> str:
            return rs.template["spec"]["containers"][0]["image"]

        older = [rs for rs in history[:-1] if image(rs) != image(history[-1])]
        template = copy.deepcopy((older or history[:-1])[-1].template)
        return self.rollout(service, template, at, "rollout")

    def set_image(self, service: str, version: str, at: float) -> ReplicaSet:
        template = copy.deepcopy(self.deployments[service].template)
        container = template["spec"]["containers"][0]
        container["image"] = f"{container['image'].rsplit(':', 1)[0]}:{version}"
        return self.rollout(service, template, at, "rollout")

    # -- rendering ----------------------------------------------------------------------------
    def meta(self, name: str, uid: str, created: float, **extra: object) -> dict:
        meta = {
            "name": name,
            "namespace": self.namespace,
            "uid": uid,
            "resourceVersion": str(self.resource_version),
            "creationTimestamp": rfc3339(created),
        }
        meta.update(extra)
        return meta

    def render_deployment(self, dep: Deployment) -> dict:
        now = self.clock()
        svc = dep.service
        alive = [p for p in self.pods[svc.name] if p.alive(now)]
        cur = dep.current
        updated = sum(1 for p in alive if p.rs == cur.name)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.meta(
                svc.name,
                dep.uid,
                dep.created,
                generation=dep.generation,
                labels={"app": svc.name, "tier": svc.tier},
                annotations={REVISION: str(cur.revision)},
            ),
            "spec": {
                "replicas": dep.replicas,
                "selector": {"matchLabels": {"app": svc.name}},
                "template": copy.deepcopy(dep.template),
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {
                "observedGeneration": dep.generation,
                "replicas": len(alive),
                "updatedReplicas": updated,
                "readyReplicas": len(alive),
                "availableReplicas": len(alive),
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "lastUpdateTime": rfc3339(cur.created),
                        "lastTransitionTime": rfc3339(dep.created),
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "lastUpdateTime": rfc3339(cur.created),
                        "lastTransitionTime": rfc3339(dep.created),
                        "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{cur.name}" has successfully progressed.',
                    },
                ],
            },
        }

    def render_replica_set(self, dep: Deployment, rs: ReplicaSet) -> dict:
        now = self.clock()
        alive = sum(1 for p in self.pods[dep.service.name] if p.rs == rs.name and p.alive(now))
        labels = dict(rs.template["metadata"].get("labels", {}))
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": self.meta(
                rs.name,
                rs.uid,
                rs.created,
                generation=1,
                labels=labels,
                annotations={
                    REVISION: str(rs.revision),
                    "deployment.kubernetes.io/desired-replicas": str(dep.replicas),
                    "deployment.kubernetes.io/max-replicas": str(dep.replicas + 1),
                },
                ownerReferences=[self._owner("apps/v1", "Deployment", dep.service.name, dep.uid)],
            ),
            "spec": {
                "replicas": rs.replicas,
                "selector": {
                    "matchLabels": {"app": dep.service.name, "pod-template-hash": rs.hash}
                },
                "template": copy.deepcopy(rs.template),
            },
            "status": {
                "replicas": alive,
                "fullyLabeledReplicas": alive,
                "readyReplicas": alive,
                "availableReplicas": alive,
                "observedGeneration": 1,
            },
        }

    @staticmethod
    def _owner(api: str, kind: str, name: str, uid: str) -> dict:
        return {
            "apiVersion": api,
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def render_pod(self, pod: Pod) -> dict:
        dep = self.deployments[pod.service]
        rs = next(r for r in dep.replica_sets if r.name == pod.rs)
        now = self.clock()
        started = pod.last_oom + 10 if pod.last_oom else pod.born
        container = copy.deepcopy(rs.template["spec"]["containers"][0])
        status: dict = {
            "name": container["name"],
            "image": container["image"],
            "imageID": f"{container['image']}@sha256:{_sha(container['image'])}",
            "containerID": f"containerd://{hashlib.sha256(pod.name.encode()).hexdigest()}",
            "ready": True,
            "started": True,
            "restartCount": pod.restarts,
            "state": {"running": {"startedAt": rfc3339(started)}},
        }
        if pod.last_oom:
            status["lastState"] = {
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "startedAt": rfc3339(pod.born),
                    "finishedAt": rfc3339(pod.last_oom),
                    "containerID": status["containerID"],
                }
            }
        phase = "Running" if pod.alive(now) else "Succeeded"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self.meta(
                pod.name,
                pod.uid,
                pod.born,
                labels=dict(rs.template["metadata"]["labels"]),
                ownerReferences=[self._owner("apps/v1", "ReplicaSet", rs.name, rs.uid)],
                generateName=f"{rs.name}-",
            ),
            "spec": {**copy.deepcopy(rs.template["spec"]), "nodeName": pod.node},
            "status": {
                "phase": phase,
                "hostIP": f"192.168.0.{int(pod.node.split('-')[1]) + 10}",
                "podIP": pod.ip,
                "podIPs": [{"ip": pod.ip}],
                "startTime": rfc3339(pod.born),
                "qosClass": "Burstable",
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": rfc3339(started)}
                    for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
                ],
                "containerStatuses": [status],
            },
        }

    def render_event(self, ev: Event, now: float) -> dict:
        count, last = 1, ev.first
        if ev.repeat_s > 0:
            stop = ev.until() if ev.until else None
            horizon = now if stop is None else min(now, stop)
            count = max(1, int((horizon - ev.first) // ev.repeat_s) + 1)
            last = ev.first + (count - 1) * ev.repeat_s
        api = "apps/v1" if ev.kind == "Deployment" else "v1"
        uid = ""
        if ev.kind == "Deployment" and ev.obj in self.deployments:
            uid = self.deployments[ev.obj].uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": self.meta(ev.name, ev.uid, ev.first),
            "involvedObject": {
                "kind": ev.kind,
                "namespace": self.namespace,
                "name": ev.obj,
                "apiVersion": api,
                "uid": uid,
            },
            "reason": ev.reason,
            "message": ev.message,
            "source": {"component": ev.component},
            "firstTimestamp": rfc3339(ev.first),
            "lastTimestamp": rfc3339(last),
            "count": count,
            "type": ev.type,
            "eventTime": None,
            "reportingComponent": ev.component,
            "reportingInstance": "",
        }
