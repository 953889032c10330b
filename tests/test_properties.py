"""Bad input never crashes: every parser, and discovery over malformed cluster objects, answers
arbitrary input with a WaypointError (one sentence) or a reported `unknown`, never another exception."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kubectl_waypoint.checks.probe_config import parse_probe_config
from kubectl_waypoint.commands import render_skew_output, skew_result
from kubectl_waypoint.discovery import DATA_PLANE_KINDS, SailResources, group_workloads, reduce_pod
from kubectl_waypoint.errors import WaypointError
from kubectl_waypoint.kube.client import Cluster
from kubectl_waypoint.kube.config import ClusterFlags, parse_duration, resolve_target
from kubectl_waypoint.kube.transport import Transport
from kubectl_waypoint.probe.stats import parse_weights
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sync import parse_proxy_status, parse_syncz
from kubectl_waypoint.versions import parse_version, version_from_image

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def clear_or_error(parse, *args, quoting: str = ""):
    """Run a parser: its result, or None when it said why it refused (a WaypointError, one line).

    `quoting`: text the message may quote besides the arguments (a file's contents).
    """
    try:
        return parse(*args)
    except WaypointError as error:
        assert error.message and "Traceback" not in error.message
        # One line, unless the message quotes an input that itself spans lines.
        assert "\n" not in error.message or any("\n" in str(arg) for arg in (*args, quoting)), error.message
        return None


# -- text parsers ----------------------------------------------------------------------------

version_like = st.from_regex(r"v?[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,4})?(-[a-z0-9.\-]{0,14})?", fullmatch=True)


@FAST
@given(st.one_of(st.text(max_size=40), version_like))
def test_version_strings(text):
    version = parse_version(text)
    if version is not None:
        assert version.raw == text.strip() and version.minor_version[0] >= 0
        version.sort_key()  # comparable, whatever the suffix


@FAST
@given(st.one_of(st.text(max_size=60), st.builds("{}/{}:{}".format, st.text(max_size=15), st.text(max_size=10),
                                                 version_like)))
def test_image_references(image):
    version_from_image(image)


@FAST
@given(st.one_of(st.text(max_size=20), st.from_regex(r"\+?[0-9.]{0,6}(ns|us|µs|ms|s|m|h){0,3}", fullmatch=True)))
def test_durations(text):
    seconds = clear_or_error(parse_duration, text, "--wait")
    assert seconds is None or seconds > 0


@FAST
@given(st.one_of(st.text(max_size=40), st.lists(st.tuples(st.text(max_size=8), st.text(max_size=5)), max_size=4)
                 .map(lambda pairs: ",".join(f"{n}={w}" for n, w in pairs))))
def test_weights(text):
    weights = clear_or_error(parse_weights, text)
    if weights is not None:
        assert all(w is None or w >= 0 for w in weights.values())


table_rows = st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=14),
                               min_size=1, max_size=6).map("   ".join), max_size=5)
proxy_status_text = st.one_of(
    st.text(max_size=200),
    table_rows.map(lambda rows: "\n".join(["NAME     CLUSTER     ISTIOD     VERSION     SUBSCRIBED TYPES", *rows])),
    table_rows.map(lambda rows: "\n".join(["NAME   CDS   LDS   EDS   RDS   ECDS   ISTIOD   VERSION", *rows])),
    json_values.map(json.dumps),
    json_values.map(lambda v: yaml.safe_dump(v)),
)


@FAST
@given(proxy_status_text)
def test_proxy_status_tables(text):
    clear_or_error(parse_proxy_status, text, "ps.txt")


syncz_entry = st.fixed_dictionaries({}, optional={
    "proxy": json_values | st.text(max_size=12), "istio_version": json_values | version_like,
    "cluster_id": json_values, "type_urls": json_values, "proxy_type": json_values,
    "cds_sync_status": json_values, "sync_status": json_values, "watched_resources": json_values})


@FAST
@given(st.one_of(st.binary(max_size=80), json_values.map(json.dumps), st.lists(syncz_entry | json_values,
                                                                                 max_size=4).map(json.dumps)))
def test_syncz_json(payload):
    clear_or_error(parse_syncz, payload, "istiod-0")


probe_config_entry = st.dictionaries(
    st.sampled_from(["route", "policy", "url", "client", "container", "match", "count", "headers",
                     "allowedClient", "deniedClient", "method", "deniedMethod", "bogus"]), json_values, max_size=5)


@FAST
@given(st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "routes": st.lists(probe_config_entry | json_values, max_size=3) | json_values,
    "authorization": st.lists(probe_config_entry | json_values, max_size=3) | json_values})))
def test_probe_config(doc):
    clear_or_error(parse_probe_config, doc, "probes.yaml")


# -- kubeconfig files ------------------------------------------------------------------------

named_entry = lambda inner: st.fixed_dictionaries({}, optional={"name": json_values | st.text(max_size=6),
                                                                inner: json_values | st.fixed_dictionaries(
                                                                    {}, optional=KUBECONFIG_FIELDS)})
KUBECONFIG_FIELDS = {
    "server": st.sampled_from(["https://127.0.0.1:1", "", "not a url", "http://[::1"]) | json_values,
    "cluster": st.text(max_size=6) | json_values, "user": st.text(max_size=6) | json_values,
    "namespace": json_values, "token": json_values, "tokenFile": json_values,
    "certificate-authority-data": st.text(max_size=20) | json_values, "client-key-data": json_values,
    "insecure-skip-tls-verify": json_values, "exec": json_values,
}
kubeconfig_docs = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "current-context": st.text(max_size=6) | json_values,
        "clusters": st.lists(named_entry("cluster"), max_size=2) | json_values,
        "contexts": st.lists(named_entry("context"), max_size=2) | json_values,
        "users": st.lists(named_entry("user"), max_size=2) | json_values,
    }),
)


@FAST
@given(st.one_of(kubeconfig_docs.map(yaml.safe_dump), st.text(max_size=80)))
def test_kubeconfig_files(text):
    with tempfile.TemporaryDirectory() as home:
        path = os.path.join(home, "config")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        # No PATH: a generated exec plugin name must never find a real program to run.
        target = clear_or_error(resolve_target, ClusterFlags(kubeconfig=path), {"PATH": ""}, home, quoting=text)
        if target is not None:  # what the first request does with it: credentials and TLS
            transport = Transport(target.connection, target.environ, user_agent="test")
            clear_or_error(lambda: (transport.headers(), transport.ssl_context()), quoting=text)


# -- malformed cluster objects -------------------------------------------------------------------

odd_text = st.text(max_size=12)
images = st.none() | odd_text | st.builds("{}:{}".format, st.sampled_from(
    ["registry/proxyv2", "localhost:5000/ztunnel", "x/install-cni", "a/pilot"]), version_like | odd_text) \
    | st.builds("registry/proxyv2@sha256:{}".format, odd_text)
env = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["XDS_ADDRESS", "CA_ADDRESS"]) | json_values},
                                     optional={"value": odd_text | json_values}) | json_values,
               max_size=2) | json_values
containers = st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["istio-proxy", "agentgateway", "install-cni", "discovery", "app"]) | odd_text},
    optional={"image": images, "env": env}) | json_values, max_size=3) | json_values
pod_status = st.fixed_dictionaries({}, optional={
    "phase": st.sampled_from(["Running", "Pending", "Failed"]) | json_values,
    "containerStatuses": st.lists(st.fixed_dictionaries({}, optional={
        "name": odd_text, "image": images, "restartCount": json_values}) | json_values, max_size=2) | json_values,
    "conditions": st.lists(json_values | st.fixed_dictionaries({"type": st.just("Ready"),
                                                                "status": st.just("True")}), max_size=2) | json_values,
    "startTime": json_values})
odd_labels = st.dictionaries(st.sampled_from(["istio.io/rev", "istio.io/tag", "gateway.networking.k8s.io/gateway-name",
                                              "pod-template-hash", "app", "x"]),
                             st.text(alphabet="abc-1.", max_size=10), max_size=4)


@st.composite
def pods(draw, index: int = 0, loose: bool = True):
    """A data-plane pod as a careless controller might have written it.

    `loose`: spec and status may be anything at all; otherwise they are mappings (with anything
    inside), as an API server's schema validation guarantees for a Pod.
    """
    kind = draw(st.sampled_from(DATA_PLANE_KINDS))
    key, _, value = kind.selector.partition("=")
    labels = {**draw(odd_labels), key: value}
    metadata = {"name": f"pod-{index}-{draw(st.integers(0, 10**6))}", "namespace": "fuzz", "labels": labels}
    metadata.update(draw(st.fixed_dictionaries({}, optional={
        "annotations": json_values | odd_labels,
        "ownerReferences": st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["ReplicaSet", "DaemonSet"]),
                                                           "name": odd_text}) | json_values, max_size=2)})))
    spec = st.fixed_dictionaries({"containers": containers}, optional={
        "nodeName": json_values, "serviceAccountName": json_values})
    spec, status = (spec | st.none() | json_values, pod_status | st.none() | json_values) if loose else (spec, pod_status)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": draw(spec), "status": draw(status)}


@FAST
@given(pods(), st.sampled_from(DATA_PLANE_KINDS))
def test_reduce_and_group_any_pod(pod, kind):
    record = reduce_pod(pod, kind.container)
    (workload,) = group_workloads(kind, [record], SailResources())
    assert workload.version is not None or workload.version_source  # unknown, and it says why


@FAST
@given(st.dictionaries(st.sampled_from(["metadata", "spec", "status"]), json_values, max_size=3))
def test_reduce_pod_with_any_json(pod):
    reduce_pod(pod, "istio-proxy")


def istiod(draw_image, labels, replicas, status) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod-fuzz", "namespace": "istio-system", "labels": {**labels, "app": "istiod"}},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels},
                                                        "spec": {"containers": [{"name": "discovery",
                                                                                 "image": draw_image}]}}},
            "status": status}


@pytest.fixture(scope="module")
def sail_cluster(tmp_path_factory):
    sim = SimCluster("sail").start()
    kubeconfig = sim.write_kubeconfig(str(tmp_path_factory.mktemp("props") / "kubeconfig"))
    yield sim, kubeconfig
    assert sim.writes() == []
    sim.stop()


@SLOW
@given(data=st.data())
def test_discovery_over_malformed_objects_in_a_cluster(sail_cluster, data):
    sim, kubeconfig = sail_cluster
    objects = data.draw(st.lists(st.builds(lambda i: i, st.integers(0, 10**6)), min_size=1, max_size=4)
                        .flatmap(lambda ids: st.tuples(*[pods(i, loose=False) for i in range(len(ids))])))
    objects = list(objects)
    objects.append(istiod(data.draw(images), data.draw(odd_labels), data.draw(json_values), data.draw(json_values)))
    objects.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "istio-revision-tag-fuzz", "labels": {**data.draw(odd_labels),
                                                                               "istio.io/tag": "fuzz"}}})
    objects.append({"apiVersion": "sailoperator.io/v1", "kind": "ZTunnel", "metadata": {"name": "fuzz"},
                    "spec": data.draw(json_values | st.fixed_dictionaries({"version": json_values | version_like,
                                                                            "namespace": st.just("fuzz")}))})
    objects.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "gw-fuzz", "namespace": "fuzz", "labels": data.draw(odd_labels)},
                    "spec": data.draw(json_values | st.fixed_dictionaries({
                        "gatewayClassName": st.just("istio-waypoint") | json_values, "listeners": json_values})),
                    "status": data.draw(json_values)})
    objects.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                    "metadata": {"name": "class-fuzz"},
                    "spec": data.draw(json_values | st.fixed_dictionaries({
                        "controllerName": st.just("istio.io/mesh-controller") | json_values}))})
    objects.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "istiod-revision-tag-fuzz", "namespace": "fuzz",
                                 "labels": {**data.draw(odd_labels), "istio.io/rev": "fuzz"}},
                    "spec": data.draw(json_values)})
    assume(all(isinstance(o.get("metadata"), dict) for o in objects))
    stored = [sim.store.put(o) for o in objects]
    try:
        cluster = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig)))
        result = skew_result(cluster, None)
        for output in ("table", "json"):
            render_skew_output(result, output, no_colour=True)
        statuses = {c.status for c in result.components}
        assert statuses <= {"ok", "ahead", "too-old", "unknown"}
    finally:
        for obj in stored:
            meta = obj["metadata"]
            sim.store.delete({"Pod": "pods", "Deployment": "deployments", "ZTunnel": "ztunnels", "Gateway": "gateways",
                              "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
                              "GatewayClass": "gatewayclasses", "Service": "services"}[obj["kind"]],
                             meta.get("namespace"), meta["name"])
