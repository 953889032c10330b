"""Skew judgement over hand-built inventories: revisions, tags, defaults, messages (no cluster)."""

from __future__ import annotations

import pytest

from kubectl_waypoint.discovery import (
    ISTIO_CNI, WAYPOINT, ZTUNNEL, ControlPlane, MeshInventory, SailResources, group_workloads, reduce_pod,
)
from kubectl_waypoint.ownership import SELECTOR, Claim, ControlPlaneIndex
from kubectl_waypoint.skew import judge_inventory
from kubectl_waypoint.versions import parse_version


def pod(name, namespace, image, *, container="istio-proxy", labels=None, annotations=None, owner=("DaemonSet", "ztunnel")):
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}, "annotations": annotations or {},
                     "ownerReferences": [{"kind": owner[0], "name": owner[1]}]},
        "spec": {"containers": [{"name": "other", "image": "busybox:1.36"}, {"name": container, "image": image}],
                 "nodeName": "node-1"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": container, "image": image, "restartCount": 2}]},
    }


def plane(revision, version, namespace="istio-system"):
    return ControlPlane(namespace, revision, f"istiod-{revision}", parse_version(version), "test", 1, 1)


def inventory(planes, workloads, tags=None):
    return MeshInventory(planes, tags or {}, workloads, SailResources(), True, [])


def ztunnel_pods(*images, namespace="istio-system"):
    return [reduce_pod(pod(f"ztunnel-{i}", namespace, image), ZTUNNEL.container) for i, image in enumerate(images)]


def test_reduce_pod_reads_the_named_container_not_the_first():
    record = reduce_pod(pod("z", "istio-system", "hub/ztunnel:1.28.6"), "istio-proxy")
    assert record.image == "hub/ztunnel:1.28.6" and record.ready and record.restarts == 2
    assert record.workload == "ztunnel"


def test_replicaset_owner_gives_deployment_name():
    raw = pod("waypoint-7b6bcffd55-lj54j", "bookinfo", "hub/proxyv2:1.28.6",
              labels={"pod-template-hash": "7b6bcffd55"}, owner=("ReplicaSet", "reviews-v1-7b6bcffd55"))
    assert reduce_pod(raw, "istio-proxy").workload == "reviews-v1"


def test_daemonset_on_many_nodes_is_one_entry_per_version():
    pods = ztunnel_pods(*(["hub/ztunnel:1.28.6"] * 500 + ["hub/ztunnel:1.27.3"] * 3))
    groups = group_workloads(ZTUNNEL, pods, SailResources())
    assert sorted((g.version.raw, len(g.pods)) for g in groups) == [("1.27.3", 3), ("1.28.6", 500)]


@pytest.mark.parametrize("cp, dp, status, skew", [
    ("1.28.6-asm-r3", "1.28.6-asm-r3", "ok", 0),
    ("1.28.6", "1.27.3", "ok", 1),
    ("1.28.6", "1.29.0", "ahead", -1),
    ("1.28.6", "1.26.1", "too-old", 2),
])
def test_each_rule_outcome_with_a_message(cp, dp, status, skew):
    result = judge_inventory(inventory([plane("default", cp)],
                                       group_workloads(ZTUNNEL, ztunnel_pods(f"hub/ztunnel:{dp}"), SailResources())))
    (component,) = result.components
    assert (component.status, component.minor_skew) == (status, skew)
    assert result.result == ("pass" if status == "ok" else "fail")
    if status == "ahead":
        assert component.message == ("ztunnel 1.29 is ahead of control plane 1.28 (revision default): "
                                     "upgrade the control plane first, or roll ztunnel back to 1.28")
    if status == "too-old":
        assert "upgrade ztunnel to 1.28 now" in component.message


def test_digest_only_image_is_unknown_and_inconclusive():
    image = "hub/install-cni@sha256:" + "a" * 64
    pods = [reduce_pod(pod("cni-0", "istio-system", image, container="install-cni",
                           owner=("DaemonSet", "istio-cni-node")), "install-cni")]
    result = judge_inventory(inventory([plane("default", "1.28.6")], group_workloads(ISTIO_CNI, pods, SailResources())))
    (component,) = result.components
    assert component.status == "unknown" and component.minor_skew is None
    assert "pinned by digest" in component.message
    assert result.result == "inconclusive"


def test_sail_ztunnel_cr_supplies_the_version_of_a_digest_pinned_image():
    image = "docker.io/istio/ztunnel@sha256:" + "b" * 64
    sail = SailResources(ztunnels=[{"metadata": {"name": "default"}, "spec": {"version": "v1.28.6", "namespace": "ztunnel"}}])
    (group,) = group_workloads(ZTUNNEL, ztunnel_pods(image, namespace="ztunnel"), sail)
    assert group.version.minor_version == (1, 28)
    assert "Sail ZTunnel default spec.version (v1.28.6)" in group.version_source


def test_revision_resolution_through_tags_and_defaults():
    planes = [plane("1-27-3", "1.27.3"), plane("1-28-6", "1.28.6")]

    def resolve(label, tags):
        return ControlPlaneIndex(planes, tags).resolve(Claim(SELECTOR, label, "test"))

    tags = {"default": "1-27-3", "prod": "1-28-6"}
    assert resolve("prod", tags)[0].revision == "1-28-6"
    assert resolve("1-27-3", tags)[0].revision == "1-27-3"
    assert resolve(None, tags)[0].revision == "1-27-3"
    missing, why = resolve("canary", tags)
    assert missing is None and 'revision "canary" matches no istiod' in why
    none, why = resolve(None, {})
    assert none is None and "no default revision" in why
    dangling, why = resolve("old", {"old": "1-25-0"})
    assert dangling is None and 'points at revision "1-25-0"' in why


def test_waypoint_judged_against_its_own_revision_not_the_newest():
    planes = [plane("1-27-3", "1.27.3"), plane("1-28-6", "1.28.6")]
    raw = pod("waypoint-abc-1", "legacy", "hub/proxyv2:1.28.6", annotations={"istio.io/rev": "1-27-3"},
              labels={"gateway.networking.k8s.io/gateway-name": "waypoint"}, owner=("ReplicaSet", "waypoint-abc"))
    workloads = group_workloads(WAYPOINT, [reduce_pod(raw, "istio-proxy")], SailResources())
    (component,) = judge_inventory(inventory(planes, workloads, {"default": "1-27-3"})).components
    assert component.status == "ahead" and component.control_plane == "istio-system/1-27-3"
    assert component.message.startswith("waypoint legacy/waypoint 1.28 is ahead of control plane 1.27 (revision 1-27-3)")


def test_no_control_plane_is_inconclusive_with_a_hint():
    result = judge_inventory(inventory([], group_workloads(ZTUNNEL, ztunnel_pods("hub/ztunnel:1.28.6"), SailResources())))
    assert result.result == "inconclusive"
    assert "is Istio installed" in result.summary
