"""Which control plane owns what, and which Gateways are waypoints, judged on Istio's own objects.

The objects are Istio 1.28's rendered manifests in tests/fixtures/istio/, loaded as they are; a pod
is its controller's template with a name, as the ReplicaSet or DaemonSet controller makes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubectl_waypoint.discovery import ISTIO_CNI, WAYPOINT, ZTUNNEL, ControlPlane, claim_of, reduce_pod
from kubectl_waypoint.ownership import (ADDRESS, EVERY, REVISION, SELECTOR, Claim, ControlPlaneIndex, revision_tags,
                                        service_host, waypoint_claim, ztunnel_claim)
from kubectl_waypoint.versions import parse_version

FIXTURES = Path(__file__).parent / "fixtures" / "istio"


def load(name: str) -> list[dict]:
    with open(FIXTURES / name, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def find(docs: list[dict], kind: str) -> dict:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def pod_of(controller: dict, name: str = "pod-0") -> dict:
    """A pod as the controller creates it from its template."""
    template = controller["spec"]["template"]
    meta = {**template["metadata"], "name": name, "namespace": controller["metadata"]["namespace"]}
    return {"metadata": meta, "spec": template["spec"], "status": {"phase": "Running"}}


def selects(selector: str, labels: dict) -> bool:
    key, _, value = selector.partition("=")
    return labels.get(key) == value


def plane(revision: str, version: str, namespace: str = "istio-system") -> ControlPlane:
    return ControlPlane(namespace, revision, f"istiod-{revision}", parse_version(version), "test", 1, 1)


# -- waypoints: found by identity ----------------------------------------------------------------

def test_a_rendered_waypoint_pod_is_found_by_label_and_names_its_revision():
    deployment = find(load("waypoint-rendered.yaml"), "Deployment")
    pod = pod_of(deployment)
    assert selects(WAYPOINT.selector, pod["metadata"]["labels"])
    record = reduce_pod(pod, WAYPOINT.containers)
    assert (record.workload, record.image) == ("namespace", "test/proxyv2:test")
    assert claim_of(WAYPOINT, record) == Claim(REVISION, "default",
                                               "pod annotation istio.io/rev (the revision that rendered it)")


def test_a_deployment_is_its_gateways_by_label_not_by_name():
    """custom-class.yaml: Gateway `default` of class `custom` gets a Deployment named `default-custom`."""
    deployment = find(load("waypoint-custom-class-rendered.yaml"), "Deployment")
    assert deployment["metadata"]["name"] == "default-custom"
    record = reduce_pod(pod_of(deployment, "default-custom-abc12-xyz34"), WAYPOINT.containers)
    assert record.workload == "default"
    # ...and it is an ingress gateway (controller istio.io/gateway-controller), not a waypoint.
    assert not selects(WAYPOINT.selector, deployment["spec"]["template"]["metadata"]["labels"])


def test_the_waypoint_gateways_name_the_default_class():
    gateways = load("waypoint-gateways.yaml")
    assert {g["spec"]["gatewayClassName"] for g in gateways} == {"istio-waypoint"}


# -- ztunnel, istio-cni, istiod as rendered --------------------------------------------------------

def test_rendered_ztunnel_belongs_to_the_istiod_service_it_dials():
    daemonset = find(load("ztunnel-rendered.yaml"), "DaemonSet")
    record = reduce_pod(pod_of(daemonset), ZTUNNEL.containers)
    assert selects(ZTUNNEL.selector, record.labels)
    claim = claim_of(ZTUNNEL, record)
    assert claim == Claim(ADDRESS, "istiod.istio-system", "XDS_ADDRESS istiod.istio-system.svc:15012")
    service = find(load("istiod-rendered.yaml"), "Service")
    index = ControlPlaneIndex([plane("1-27-3", "1.27.3"), plane("default", "1.28.0")], {},
                              {("istio-system", service["metadata"]["name"]): service["metadata"]["labels"]["istio.io/rev"]})
    assert index.resolve(claim)[0].revision == "default"


def test_rendered_istio_cni_serves_every_revision():
    daemonset = find(load("istio-cni-rendered.yaml"), "DaemonSet")
    assert daemonset["metadata"]["labels"]["istio.io/rev"] == "default"  # on the DaemonSet only
    record = reduce_pod(pod_of(daemonset), ISTIO_CNI.containers)
    assert selects(ISTIO_CNI.selector, record.labels) and record.image.endswith("install-cni:latest")
    assert claim_of(ISTIO_CNI, record).kind == EVERY


def test_rendered_istiod_is_the_default_revision():
    deployment = find(load("istiod-rendered.yaml"), "Deployment")
    labels = deployment["metadata"]["labels"]
    assert (labels["app"], labels["istio.io/rev"]) == ("istiod", "default")
    webhook = find(load("istiod-rendered.yaml"), "MutatingWebhookConfiguration")
    assert revision_tags([webhook["metadata"]["labels"]], []) == {}  # the injector is not a tag


# -- the rules -------------------------------------------------------------------------------------

def test_the_default_tag_beats_a_revision_named_default():
    index = ControlPlaneIndex([plane("default", "1.27.3"), plane("1-28-6", "1.28.6")], {"default": "1-28-6"})
    for label in (None, "default"):
        assert index.resolve(Claim(SELECTOR, label, "test"))[0].revision == "1-28-6"
    # A pod annotation names the revision that actually rendered it: the revision, not the tag.
    assert index.resolve(Claim(REVISION, "default", "test"))[0].revision == "default"
    assert index.default_plane().revision == "1-28-6"


def test_tags_come_from_webhooks_and_from_tag_services():
    webhooks = [{"istio.io/tag": "prod", "istio.io/rev": "1-28-6"}, {"app": "sidecar-injector", "istio.io/rev": "x"}]
    services = [{"istio.io/tag": "canary", "istio.io/rev": "1-29-0"}, {"istio.io/tag": "prod", "istio.io/rev": "old"}]
    assert revision_tags(webhooks, services) == {"prod": "1-28-6", "canary": "1-29-0"}


def test_the_tag_service_template_carries_the_labels_tags_are_read_from():
    text = (FIXTURES / "revision-tags-svc-template.yaml").read_text()
    assert "name: istiod-revision-tag-{{ $tagName }}" in text
    assert "istio.io/tag: {{ $tagName }}" in text and "istio.io/rev: {{ $.Values.revision | default" in text


def test_a_gateway_belongs_to_its_label_else_its_namespace():
    assert waypoint_claim({}, {"istio.io/rev": "prod"}, {"istio.io/rev": "1-27-3"}) == \
        Claim(SELECTOR, "prod", "Gateway label istio.io/rev")
    assert waypoint_claim({}, {}, {"istio.io/rev": "1-27-3"}).value == "1-27-3"
    assert waypoint_claim({"istio.io/rev": "1-28-6"}, {"istio.io/rev": "prod"}).value == "1-28-6"


@pytest.mark.parametrize("env, revision", [
    ({"XDS_ADDRESS": "istiod-1-28-6.istio-system.svc:15012"}, "1-28-6"),
    ({"CA_ADDRESS": "istiod-1-27-3.istio-system.svc:15012"}, "1-27-3"),
    ({"XDS_ADDRESS": "istiod.istio-system.svc:15012"}, "1-27-3"),  # the default tag's
    ({"XDS_ADDRESS": "istiod-revision-tag-prod.istio-system.svc:15012"}, "1-28-6"),
])
def test_ztunnel_follows_its_address_when_it_has_no_annotation(env, revision):
    index = ControlPlaneIndex([plane("1-27-3", "1.27.3"), plane("1-28-6", "1.28.6")],
                              {"default": "1-27-3", "prod": "1-28-6"})
    assert index.resolve(ztunnel_claim({}, env))[0].revision == revision
    assert index.resolve(ztunnel_claim({"istio.io/rev": "1-28-6"}, env))[0].revision == "1-28-6"


def test_istio_cni_is_held_to_the_newest_control_plane_in_use():
    old, new, unused = plane("1-27-3", "1.27.3"), plane("1-28-6", "1.28.6"), plane("1-29-0", "1.29.0")
    index = ControlPlaneIndex([old, new, unused], {})
    assert index.resolve(Claim(EVERY, None, "cni"), [old, new])[0] is new


@pytest.mark.parametrize("address", ["", "10.0.0.1:15012", "istiod:15012", "[::1]:15012", "a..svc:1"])
def test_an_address_that_is_no_service_host_is_not_guessed(address):
    assert service_host(address) is None
