"""The official ``kubernetes`` client against the lab, and remediation through it: the
right change clears the fault, a wrong one does not."""

from __future__ import annotations

import datetime as dt

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from lab.testing import running_lab


@pytest.fixture
def k8s_lab():
    with running_lab(
        seed=11,
        duration_s=780,
        faults=["bad_deploy:payments@-10m", "cpu_saturation:search@-8m", "memory_leak:cart@-12m"],
    ) as lab:
        cfg = client.Configuration()
        cfg.host = lab.kubernetes_url
        api = client.ApiClient(cfg)
        yield lab, client.AppsV1Api(api), client.CoreV1Api(api)
        api.close()


def _active(lab, kind: str) -> bool:
    return any(t["kind"] == kind and t["end"] is None for t in lab.ground_truth)


def test_reads_deserialize(k8s_lab) -> None:
    lab, apps, core = k8s_lab
    deps = apps.list_namespaced_deployment("prod")
    assert deps.kind == "DeploymentList" and deps.metadata.resource_version
    assert {d.metadata.name for d in deps.items} == set(lab.estate.names)
    d = apps.read_namespaced_deployment("payments", "prod")
    assert d.api_version == "apps/v1" and d.kind == "Deployment"
    assert d.metadata.uid and d.metadata.resource_version and d.metadata.generation >= 1
    assert isinstance(d.metadata.creation_timestamp, dt.datetime)
    assert d.spec.replicas == 2 and d.status.available_replicas == 2
    assert d.spec.selector.match_labels == {"app": "payments"}
    assert d.spec.template.spec.containers[0].image.endswith(
        ":" + lab.ground_truth[0]["version_to"]
    )
    assert {c.type for c in d.status.conditions} == {"Available", "Progressing"}
    rs = apps.list_namespaced_replica_set("prod", label_selector="app=payments").items
    revisions = sorted(int(r.metadata.annotations["deployment.kubernetes.io/revision"]) for r in rs)
    assert revisions == list(range(1, len(rs) + 1)) and len(rs) >= 3
    assert all(r.metadata.owner_references[0].name == "payments" for r in rs)
    pods = core.list_namespaced_pod("prod", label_selector="app=payments").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    cart = core.list_namespaced_pod("prod", label_selector="app=cart").items
    assert any(p.status.container_statuses[0].restart_count > 0 for p in cart)
    assert any(
        (
            p.status.container_statuses[0].last_state.terminated
            or client.V1ContainerStateTerminated(exit_code=0)
        ).reason
        == "OOMKilled"
        for p in cart
    )
    events = core.list_namespaced_event("prod").items
    reasons = {e.reason for e in events}
    assert {"ScalingReplicaSet", "OOMKilled", "BackOff", "Unhealthy"} <= reasons
    assert all(e.involved_object.name and e.count >= 1 for e in events)
    only_pay = core.list_namespaced_event(
        "prod", field_selector="involvedObject.name=payments"
    ).items
    assert only_pay and all(e.involved_object.name == "payments" for e in only_pay)


def test_not_found_is_a_kubernetes_status(k8s_lab) -> None:
    _, apps, _ = k8s_lab
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("nope", "prod")
    assert err.value.status == 404 and '"reason": "NotFound"' in err.value.body


def test_scale_subresource_and_scale_up_clears_cpu_saturation(k8s_lab) -> None:
    lab, apps, core = k8s_lab
    assert apps.read_namespaced_deployment_scale("search", "prod").spec.replicas == 2
    apps.patch_namespaced_deployment_scale("search", "prod", {"spec": {"replicas": 1}})
    assert _active(lab, "cpu_saturation")  # scaling down is the wrong fix
    scale = apps.patch_namespaced_deployment_scale("search", "prod", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4 and scale.status.replicas == 4
    assert len(core.list_namespaced_pod("prod", label_selector="app=search").items) == 4
    assert not _active(lab, "cpu_saturation")
    truth = next(t for t in lab.ground_truth if t["kind"] == "cpu_saturation")
    assert truth["cleared_by"] == "scale"


def test_patch_replicas_merge_and_strategic(k8s_lab) -> None:
    _, apps, _ = k8s_lab
    d = apps.patch_namespaced_deployment("catalog", "prod", {"spec": {"replicas": 5}})
    assert d.spec.replicas == 5
    apps.patch_namespaced_deployment(
        "catalog", "prod", {"spec": {"replicas": 2}}, _content_type="application/merge-patch+json"
    )
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    assert apps.patch_namespaced_deployment("catalog", "prod", ops).spec.replicas == 3
    assert apps.read_namespaced_deployment("catalog", "prod").spec.replicas == 3


def test_rollout_restart_clears_memory_leak_not_bad_deploy(k8s_lab) -> None:
    lab, apps, core = k8s_lab
    before = {
        p.metadata.name
        for p in core.list_namespaced_pod("prod", label_selector="app=payments").items
    }
    stamp = dt.datetime.now(dt.UTC).isoformat()
    body = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}
        }
    }
    apps.patch_namespaced_deployment("payments", "prod", body)  # wrong fix for a bad deploy
    assert _active(lab, "bad_deploy")
    after = {
        p.metadata.name
        for p in core.list_namespaced_pod("prod", label_selector="app=payments").items
    }
    assert after and not after & before
    d = apps.patch_namespaced_deployment("cart", "prod", body)
    assert d.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == stamp
    assert not _active(lab, "memory_leak")


def test_rollback_via_replica_set_history_clears_bad_deploy(k8s_lab) -> None:
    lab, apps, _ = k8s_lab
    truth = lab.ground_truth[0]
    rs = apps.list_namespaced_replica_set("prod", label_selector="app=payments").items
    by_rev = sorted(
        rs, key=lambda r: int(r.metadata.annotations["deployment.kubernetes.io/revision"])
    )
    previous = by_rev[-2]
    assert previous.spec.template.spec.containers[0].image.endswith(":" + truth["version_from"])
    template = apps.api_client.sanitize_for_serialization(previous.spec.template)
    template["metadata"]["labels"].pop("pod-template-hash")
    apps.patch_namespaced_deployment("payments", "prod", {"spec": {"template": template}})
    d = apps.read_namespaced_deployment("payments", "prod")
    assert d.spec.template.spec.containers[0].image.endswith(":" + truth["version_from"])
    assert int(d.metadata.annotations["deployment.kubernetes.io/revision"]) == len(by_rev) + 1
    assert not _active(lab, "bad_deploy")
    assert lab.ground_truth[0]["cleared_by"] == "rollback"


def test_symptoms_clear_after_remediation(k8s_lab) -> None:
    """After a rollback, new payments requests stop failing (live generation continues)."""
    import numpy as np

    from lab.tsdb import Matcher

    lab, _, _ = k8s_lab
    lab.lab.remediate({"action": "rollback", "deployment": "payments"})
    cleared = lab.ground_truth[0]["end"]
    assert cleared is not None
    lab.lab.generate_until(cleared + 90, step=1.0)
    sel = [
        Matcher("__name__", "=", "http_requests_total"),
        Matcher("service", "=", "payments"),
        Matcher("code", "=", "500"),
    ]
    late = sum(np.ptp(s.values) for s in lab.tsdb.select(sel, cleared + 60, cleared + 90))
    early = sum(np.ptp(s.values) for s in lab.tsdb.select(sel, cleared - 60, cleared))
    assert early > 5 and late == 0


def test_discovery_and_version(k8s_lab) -> None:
    _, apps, _ = k8s_lab
    api = apps.api_client
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(api).get_api_versions().groups
    assert [g.name for g in groups] == ["apps"]
    names = {r.name for r in apps.get_api_resources().resources}
    assert {"deployments", "deployments/scale", "replicasets"} <= names
    core = {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    assert {"pods", "events"} <= core
