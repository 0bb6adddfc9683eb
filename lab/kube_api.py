"""The subset of the Kubernetes REST API the official client and kubectl use on the lab's
cluster: discovery, deployments (get/list/patch/put, the scale subresource), replica sets,
pods and events, with label/field selectors and JSON, merge and strategic-merge patches.
Errors are ``Status`` objects, as the API server returns them."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable

from lab.kube import RESTARTED_AT, ApiError, Cluster, Deployment, object_uid, template_hash

_SELECTOR = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


def _selector_matches(selector: str, get: Callable[[str], str | None]) -> bool:
    for part in filter(None, (p.strip() for p in selector.split(","))):
        m = _SELECTOR.match(part)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        key, op, value = m.groups()
        actual = get(key)
        if (op == "!=") == (actual == value):
            return False
    return True


def _field(obj: dict, path: str) -> str | None:
    cur: object = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return None if cur is None else str(cur)


def _merge(target: object, patch: object, strategic: bool) -> object:
    """RFC 7386 merge patch; ``strategic`` also merges lists of named objects by name,
    as Kubernetes' strategic merge does for containers, ports and env."""
    if not isinstance(patch, dict):
        if (
            strategic
            and isinstance(patch, list)
            and isinstance(target, list)
            and all(isinstance(x, dict) and "name" in x for x in patch + target)
        ):
            out = [copy.deepcopy(x) for x in target]
            for item in patch:
                same = next((x for x in out if x["name"] == item["name"]), None)
                if same is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[out.index(same)] = _merge(same, item, strategic)
            return out
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value, strategic)
    return result


def _json_patch(doc: dict, ops: list) -> dict:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: object = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON patch op {op['op']!r}")
    return doc


def _resource(
    name: str, kind: str, verbs: list[str], short: str = "", namespaced: bool = True
) -> dict:
    out = {
        "name": name,
        "singularName": "" if "/" in name else kind.lower(),
        "namespaced": namespaced,
        "kind": kind,
        "verbs": verbs,
    }
    if short:
        out["shortNames"] = [short]
    return out


_READ = ["get", "list"]
_DISCOVERY: dict[str, dict] = {  # enough for kubectl and discovery-based clients
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            _resource("namespaces", "Namespace", _READ, "ns", namespaced=False),
            _resource("pods", "Pod", _READ, "po"),
            _resource("events", "Event", _READ, "ev"),
        ],
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            _resource("deployments", "Deployment", [*_READ, "patch", "update"], "deploy"),
            _resource("deployments/scale", "Scale", ["get", "patch", "update"]),
            _resource("replicasets", "ReplicaSet", _READ, "rs"),
        ],
    },
}


class KubernetesAPI:
    """Routes Kubernetes REST paths to the cluster and renders the public JSON."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            with self.cluster.lock:
                status, payload = self._dispatch(method, path, query, body, content_type)
        except ApiError as exc:
            status, payload = exc.code, self._status(exc.code, exc.reason, exc.message)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            status, payload = 400, self._status(400, "BadRequest", f"bad request: {exc}")
        return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    @staticmethod
    def _status(code: int, reason: str, message: str) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }

    def _list(self, kind: str, api: str, items: list[dict], query: dict) -> dict:
        label_sel = query.get("labelSelector", [""])[0]
        field_sel = query.get("fieldSelector", [""])[0]
        out = [
            i
            for i in items
            if _selector_matches(label_sel, lambda k, i=i: i["metadata"].get("labels", {}).get(k))
            and _selector_matches(field_sel, lambda k, i=i: _field(i, k))
        ]
        limit = int(query.get("limit", ["0"])[0] or 0)
        if limit:
            out = out[:limit]
        return {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"resourceVersion": str(self.cluster.resource_version)},
            "items": out,
        }

    def _deployment(self, name: str) -> Deployment:
        dep = self.cluster.deployments.get(name)
        if dep is None:
            raise ApiError(404, "NotFound", f'deployments.apps "{name}" not found')
        return dep

    def _scale(self, dep: Deployment) -> dict:
        c = self.cluster
        now = c.clock()
        alive = sum(1 for p in c.pods[dep.service.name] if p.alive(now))
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": c.meta(dep.service.name, dep.uid, dep.created),
            "spec": {"replicas": dep.replicas},
            "status": {"replicas": alive, "selector": f"app={dep.service.name}"},
        }

    def _patch_body(self, current: dict, body: bytes, content_type: str) -> dict:
        patch = json.loads(body or b"{}")
        ctype = content_type.split(";")[0].strip()
        if ctype == "application/json-patch+json":
            if not isinstance(patch, list):
                raise ApiError(
                    400,
                    "BadRequest",
                    "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
                )
            return _json_patch(current, patch)
        if not isinstance(patch, dict):
            raise ApiError(
                400,
                "BadRequest",
                "json: cannot unmarshal array into Go value of type map[string]interface {}",
            )
        return _merge(current, patch, strategic=ctype != "application/merge-patch+json")

    def _dispatch(
        self, method: str, path: str, query: dict, body: bytes, content_type: str
    ) -> tuple[int, dict]:
        c = self.cluster
        ns = c.namespace
        parts = [p for p in path.split("/") if p]
        if path in ("/version", "/version/"):
            return 200, {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.0-lab",
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.22.5",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        discovery = _DISCOVERY.get(path.rstrip("/"))
        if discovery is not None:
            return 200, discovery
        apps = parts[:2] == ["apis", "apps"] and parts[2:3] == ["v1"]
        core = parts[:2] == ["api", "v1"]
        rest = parts[3:] if apps else parts[2:] if core else None
        if rest is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            if rest[1] != ns:
                if len(rest) == 3:  # an empty namespace lists nothing
                    kind = self._kind_list(rest[2])
                    return 200, self._list(kind, "apps/v1" if apps else "v1", [], query)
                raise ApiError(404, "NotFound", f'{rest[2]} "{rest[3]}" not found')
            rest = rest[2:]
        now = c.clock()
        if apps and rest[0] == "deployments":
            if len(rest) == 1:
                items = [c.render_deployment(d) for d in c.deployments.values()]
                return 200, self._list("DeploymentList", "apps/v1", items, query)
            dep = self._deployment(rest[1])
            if len(rest) == 2:
                if method == "GET":
                    return 200, c.render_deployment(dep)
                if method in ("PATCH", "PUT"):
                    current = c.render_deployment(dep)
                    new = (
                        json.loads(body)
                        if method == "PUT"
                        else self._patch_body(current, body, content_type)
                    )
                    self._apply_deployment(dep, new, now)
                    return 200, c.render_deployment(dep)
            if len(rest) == 3 and rest[2] == "scale":
                if method == "GET":
                    return 200, self._scale(dep)
                if method in ("PATCH", "PUT"):
                    current = self._scale(dep)
                    new = (
                        json.loads(body)
                        if method == "PUT"
                        else self._patch_body(current, body, content_type)
                    )
                    replicas = int(new["spec"]["replicas"])
                    if replicas < 0:
                        raise ApiError(422, "Invalid", "spec.replicas: must be non-negative")
                    c.scale(dep.service.name, replicas, now)
                    return 200, self._scale(dep)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        if apps and rest[0] == "replicasets":
            pairs = [(d, rs) for d in c.deployments.values() for rs in d.replica_sets]
            if len(rest) == 1:
                items = [c.render_replica_set(d, rs) for d, rs in pairs]
                return 200, self._list("ReplicaSetList", "apps/v1", items, query)
            for d, rs in pairs:
                if rs.name == rest[1]:
                    return 200, c.render_replica_set(d, rs)
            raise ApiError(404, "NotFound", f'replicasets.apps "{rest[1]}" not found')
        if core and rest[0] == "pods":
            pods = [p for ps in c.pods.values() for p in ps if p.alive(now)]
            if len(rest) == 1:
                return 200, self._list("PodList", "v1", [c.render_pod(p) for p in pods], query)
            for p in pods:
                if p.name == rest[1]:
                    return 200, c.render_pod(p)
            raise ApiError(404, "NotFound", f'pods "{rest[1]}" not found')
        if core and rest[0] == "events":
            items = [
                c.render_event(e, now)
                for e in sorted(c.events, key=lambda e: e.first)
                if e.first <= now
            ]
            if len(rest) == 1:
                return 200, self._list("EventList", "v1", items, query)
            for item in items:
                if item["metadata"]["name"] == rest[1]:
                    return 200, item
            raise ApiError(404, "NotFound", f'events "{rest[1]}" not found')
        if core and rest[0] == "namespaces" and len(rest) == 1:
            item = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": c.meta(ns, object_uid("ns", ns), 0.0),
                "spec": {},
                "status": {"phase": "Active"},
            }
            return 200, self._list("NamespaceList", "v1", [item], query)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    @staticmethod
    def _kind_list(resource: str) -> str:
        return {
            "deployments": "DeploymentList",
            "replicasets": "ReplicaSetList",
            "pods": "PodList",
            "events": "EventList",
        }.get(resource, "List")

    def _apply_deployment(self, dep: Deployment, new: dict, now: float) -> None:
        """A changed template means a rollout; changed replicas mean a scale."""
        spec = new.get("spec", {})
        template = spec.get("template")
        if template is not None and template_hash(template) != template_hash(dep.template):
            if not template.get("spec", {}).get("containers"):
                raise ApiError(422, "Invalid", "spec.template.spec.containers: Required value")
            self.cluster.rollout(dep.service.name, template, now, self._cause(dep, template))
        replicas = spec.get("replicas")
        if replicas is not None and int(replicas) != dep.replicas:
            self.cluster.scale(dep.service.name, int(replicas), now)

    @staticmethod
    def _cause(dep: Deployment, template: dict) -> str:
        old = dep.template.get("metadata", {}).get("annotations", {}).get(RESTARTED_AT)
        new = template.get("metadata", {}).get("annotations", {}).get(RESTARTED_AT)
        return "restart" if new and new != old else "rollout"
